"""Scenarios: a built-in name or a TOML file -> a validated Scenario with typed prior
arrays (and, where calibrated, its posterior's draw table).

model: the Scenario and its constants; toml: reading and ``extends``; validate: every
field checked, numbers -> arrays; variants: changed copies; posterior: a posterior file ->
the draw table; calendar: months; builtin/: the shipped scenario files."""
from forecast.scenario.model import TIERS, Scenario, ScenarioError, as_dict
from forecast.scenario.toml import builtin_descriptions, builtin_names, load
from forecast.scenario.validate import from_dict
from forecast.scenario.variants import with_calibration, with_months, with_params, with_start

__all__ = ["TIERS", "Scenario", "ScenarioError", "as_dict", "builtin_descriptions", "builtin_names", "from_dict",
           "load", "with_calibration", "with_months", "with_params", "with_start"]
