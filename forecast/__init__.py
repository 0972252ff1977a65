"""AI access inequality forecasts: scenarios in, uncertainty bands (xarray) out.

The public API: `load` a scenario (forecast.scenario), `run` or `compare` it (the engine,
forecast.engine; `RunOptions` documents a run's keywords), `save` the Dataset, read its
`findings` (forecast.present) or its `sensitivity` (forecast.analysis)."""
from forecast.analysis.sensitivity import SensitivityError, sensitivity
from forecast.engine.options import DEFAULT_QUANTILES, DEFAULT_SAMPLE, RunError, RunOptions, batch_size
from forecast.engine.run import compare, run, save
from forecast.present.findings import Finding, findings
from forecast.scenario import Scenario, ScenarioError, builtin_names, load

__all__ = ["DEFAULT_QUANTILES", "DEFAULT_SAMPLE", "Finding", "RunError", "RunOptions", "Scenario", "ScenarioError",
           "SensitivityError", "batch_size", "builtin_names", "compare", "findings", "load", "run", "save",
           "sensitivity"]
