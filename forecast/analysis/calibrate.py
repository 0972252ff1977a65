"""Calibration in the forecast's terms: scenario priors -> fits -> posterior file -> runs.

`calibrate(data, scenario)` fits priors/models to usage data, with the scenario's hand-set
priors where a model uses them, and returns the posterior (arviz InferenceData) and the
fits. (A posterior file's draws reach a run through forecast.scenario.posterior.draw_table.)
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from kernels import SPECS, constrain

# ------------------------------------------------------------------ scenario -> context
def _unconstrained_samples(scenario, names, n=20_000, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for spec, loc, scale in zip(SPECS, scenario.prior.loc, scenario.prior.scale):
        if spec.name in names:
            loc, scale = np.asarray(loc, np.float64), np.asarray(scale, np.float64)
            u = loc + scale * rng.standard_normal((n,) + loc.shape)
            out[spec.name] = np.asarray(constrain(spec.support, u), np.float64)
    return out


def demand_offset(scenario) -> tuple[float, float]:
    """Mean and sd (over the scenario's priors) of the token growth a year, at the start,
    that the forecast adds to enterprise demand growth: the price response
    elasticity x (g_hw + g_serve - g_front) and the agentic shift d log((1-s) + sM)/dt."""
    p = _unconstrained_samples(scenario, {"elasticity", "g_hw", "g_serve", "g_front", "agentic_share0",
                                          "agentic_ceiling", "agentic_rate", "agentic_multiplier"})
    s, ceiling, rate, m = p["agentic_share0"], p["agentic_ceiling"], p["agentic_rate"], p["agentic_multiplier"]
    ds = rate * s * (1 - np.minimum(s / ceiling, 1.0))
    offset = p["elasticity"] * (p["g_hw"] + p["g_serve"] - p["g_front"]) + (m - 1) * ds / (1 - s + s * m)
    return float(np.mean(offset)), float(np.std(offset))


def context(scenario, cutoff=None):
    from priors.models import Context

    hand_set = {s.name: (np.asarray(l, np.float64), np.asarray(c, np.float64))
                for s, l, c in zip(SPECS, scenario.prior.loc, scenario.prior.scale)}
    c0 = np.exp(hand_set["compute0"][0])
    return Context(start=pd.Timestamp(scenario.start + "-01"), regions=tuple(scenario.regions), hand_set=hand_set,
                   compute_share=c0 / c0.sum(), demand_offset=demand_offset(scenario),
                   cutoff=None if cutoff is None else pd.Timestamp(cutoff))


# ------------------------------------------------------------------ fitting
def fittable_models(data: pd.DataFrame, scenario, cutoff, names) -> dict[str, str]:
    """{model: ""} for each named model the rows before `cutoff` can fit, {model: why} for
    the others (a backtest origin before a series begins has nothing to fit)."""
    from priors.models import MODELS, CalibrationError

    ctx = context(scenario, cutoff)
    out = {}
    for n in names:
        try:
            MODELS[n].prepare(data, ctx)
            out[n] = ""
        except CalibrationError as e:
            out[n] = str(e)
    return out


def calibrate(data: pd.DataFrame, scenario, settings=None, cutoff=None, models=None, progress=None):
    """Fit every model (or those named) and return (InferenceData, fits)."""
    from priors.fit import Settings, fit
    from priors.models import MODELS
    from priors.posterior import build, json_attr
    from kernels import SPEC_BY_NAME

    settings = settings or Settings()
    ctx = context(scenario, cutoff)
    names = list(models or MODELS)
    prepared = {n: MODELS[n].prepare(data, ctx) for n in names}  # all data problems before any fit
    fits, kernel = {}, {}
    for i, n in enumerate(names):
        if progress:
            progress(i, len(names), n)
        fits[n] = fit(MODELS[n], prepared[n], settings)
        kernel.update(MODELS[n].kernel(fits[n].samples, prepared[n], ctx))  # disjoint KERNEL_PARAMS
    if progress:
        progress(len(names), len(names), "done")
    problems = [f"{n}: {p}" for n, f in fits.items() for p in f.problems]
    data_blob = pd.util.hash_pandas_object(data[["date", "entity", "metric", "value", "unit"]].astype(str),
                                           index=False).values.tobytes()
    attrs = {
        "kernel_params": json_attr(sorted(kernel)),
        "converged": int(not problems),
        "problems": json_attr(problems),
        "diagnostics": json_attr({n: f.diagnostics for n, f in fits.items()}),
        "seconds": json_attr({n: round(f.seconds, 1) for n, f in fits.items()}),
        "start": scenario.start,
        "regions": json_attr(list(scenario.regions)),
        "scenario": scenario.name,
        "fitted_against": json_attr({n: scenario.params[n] for n in kernel}),
        "cutoff": "" if cutoff is None else str(pd.Timestamp(cutoff).date()),
        "settings": json_attr(vars(settings)),
        "data_files": json_attr(sorted(set(data["file"]))),
        "data_rows": int(len(data)),
        "data_sha256": hashlib.sha256(data_blob).hexdigest(),
        "models": json_attr(names),
        # the published series tokens_observed stands for (its fitted level)
        "tokens_observed_series": prepared["demand"].info["reference"] if "demand" in prepared else "",
    }
    units = {n: (SPEC_BY_NAME[n].unit, SPEC_BY_NAME[n].doc) for n in kernel}
    return build(fits, prepared, kernel, ctx, attrs, units), fits


def moved(posterior, scenario, n_prior: int = 20_000) -> pd.DataFrame:
    """Per calibrated parameter entry: the hand-set prior against the posterior.

    posterior: the posterior group (an xarray Dataset with the kernel_params attribute).
    Columns: model, parameter, entry, unit, prior and posterior median and 5% / 95%
    quantiles (the parameter's own units), shift (posterior median minus prior median in
    prior standard deviations, in the prior's unconstrained space: log for positive
    parameters, logit for shares) and narrowing (posterior 90% width over the prior's, in
    that space). Entries the posterior leaves NaN are not listed."""
    import json

    from kernels import SPEC_BY_NAME, unconstrain
    from priors.models import MODELS

    names = json.loads(posterior.attrs["kernel_params"])
    regions = json.loads(posterior.attrs.get("regions", "[]")) or list(scenario.regions)
    model_of = {p: m for m, mod in MODELS.items() for p in mod.KERNEL_PARAMS}
    prior = _unconstrained_samples(scenario, set(names), n=n_prior)
    rows = []
    for name in names:
        if name not in posterior or name not in prior:
            continue
        spec = SPEC_BY_NAME[name]
        post = posterior[name].values.reshape((-1,) + posterior[name].shape[2:])
        pri = prior[name]
        entries = [(None, post, pri)] if post.ndim == 1 else [
            (r, post[:, i], pri[:, list(scenario.regions).index(r)]) for i, r in enumerate(regions)
            if r in scenario.regions]
        for entry, a, b in entries:
            a = a[np.isfinite(a)]
            if not a.size:
                continue
            ua, ub = (np.asarray(unconstrain(spec.support, x), np.float64) for x in (a, b))
            sd = np.std(ub)
            qa, qb = np.quantile(a, [0.05, 0.5, 0.95]), np.quantile(b, [0.05, 0.5, 0.95])
            wa, wb = np.subtract(*np.quantile(ua, [0.95, 0.05])), np.subtract(*np.quantile(ub, [0.95, 0.05]))
            rows.append({"model": model_of.get(name, ""), "parameter": name, "entry": entry or "", "unit": spec.unit,
                         "prior_median": qb[1], "prior_5": qb[0], "prior_95": qb[2],
                         "posterior_median": qa[1], "posterior_5": qa[0], "posterior_95": qa[2],
                         "shift": (np.median(ua) - np.median(ub)) / sd if sd > 0 else np.nan,
                         "narrowing": wa / wb if wb > 0 else np.nan})
    return pd.DataFrame(rows)
