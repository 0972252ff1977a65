"""AI access inequality forecasts: scenarios in, uncertainty bands (xarray) out."""
from forecast.present.findings import Finding, findings
from forecast.engine.run import DEFAULT_QUANTILES, DEFAULT_SAMPLE, RunError, batch_size, compare, run, save
from forecast.scenario import Scenario, ScenarioError, builtin_names, load
from forecast.analysis.sensitivity import SensitivityError, sensitivity

__all__ = ["DEFAULT_QUANTILES", "DEFAULT_SAMPLE", "Finding", "RunError", "findings", "compare", "Scenario", "batch_size", "ScenarioError", "SensitivityError",
           "builtin_names", "load", "run", "save", "sensitivity"]
