"""One numpyro model per concern. Each module has the same four parts:

    NAME, KERNEL_PARAMS       its name and the forecast parameters it informs
    prepare(data, ctx)        usage rows -> Prepared (arrays for the model, observed sites)
    model(inputs, observed)   the numpyro model; observed sites are masked to training rows
    kernel(samples, inputs, ctx)
                              posterior samples -> {parameter: (draws,) or (draws, region)}
                              in the parameter's own units; NaN where it says nothing

Every model measures time `t` in years from the context's start (the scenario's first
month), so "at the start" means t = 0. The likelihoods and priors are written up in
docs/calibration.md.
"""
from __future__ import annotations

from priors.models.base import CalibrationError, Context, Prepared, Site, hand_set, lognormal, rows_of
from priors.models import adoption, adoption_noise, choice, compute, demand, power, prices

MODELS = {m.NAME: m for m in (adoption, adoption_noise, demand, prices, compute, power, choice)}
__all__ = ["MODELS", "CalibrationError", "Context", "Prepared", "Site", "hand_set", "lognormal", "rows_of"]
