"""Variance-based global sensitivity: Sobol' indices of the engine's outputs, month by month.

    design   : SALib's scrambled Sobol' (Saltelli) design over the scenario's uncertain
               inputs, one column per input, AB matrices swapping whole groups
    evaluate : the engine runs every design row (kernels.run_paths) in fixed-size batches
               and keeps the chosen metrics at every month and every region/tier
    estimate : first-order (Saltelli 2010) and total (Jansen) indices of every series at
               once, with percentile bootstrap intervals (the same resamples for all)

The inputs of a trajectory are its parameter normals (one per uncertain parameter entry),
one posterior row per fitted model (entries drawn jointly from a posterior are dependent,
so each fitted model is one group; the models are fitted separately, so their rows are
independent), and its process noise: the monthly market shocks and the events (whether a
moratorium happens, when restrictions start and end), one group each: the part no
better knowledge of the parameters removes. Parameters are grouped by name by default. See
docs/sensitivity.md.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from forecast.scenario import calendar
from forecast.engine.dataset import provenance
from forecast.engine.options import batch_size, check_seed
from forecast.scenario import Scenario, load
from kernels import OUTPUT_BY_NAME, SeriesLayout, n_entries, run_paths
from kernels.keys import seed_key
from kernels.reduce import TINY
from forecast.analysis.sobol import (DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, Inputs, SensitivityError, check_n, inputs,
                                     sobol)

# Log-scale outputs that are shares in [0, 1] with common exact zeros: analysed as they are.
LINEAR_SHARES = ("unmet_share", "priced_out", "unserved_share")

def _selection(sc: Scenario, metrics) -> tuple[list, tuple[int, ...]]:
    """(metric, dims, offset in the selection, size) and the flattened-output indices."""
    series = SeriesLayout(len(sc.regions))
    layout, select = [], []
    for m in metrics:
        dims = tuple(d for d in OUTPUT_BY_NAME[m].dims.split(",") if d)
        cut = series.slice(m)
        layout.append((m, dims, len(select), cut.stop - cut.start))
        select += range(cut.start, cut.stop)
    return layout, tuple(select)


def analysis_scale(metric: str) -> str:
    """"log" for log-scale outputs spanning orders of magnitude, "linear" for shares."""
    spec = OUTPUT_BY_NAME[metric]
    return "log" if spec.log_scale and metric not in LINEAR_SHARES else "linear"


def engine(sc: Scenario, select: tuple[int, ...], log_cols: np.ndarray, seed: int, inp: Inputs,
           batch: int):
    """evaluate(u) for sobol(): the engine on up to `batch` design rows, (rows, months *
    len(select)), month-major, log-scale columns as log(max(x, TINY))."""
    n_ent = n_entries(sc.prior)
    n_draws = sc.prior.draws[0].shape[0]
    key = jax.random.fold_in(seed_key(seed), 0x5E5)
    months = sc.months

    from scipy.special import ndtri  # imported here: `import forecast` needs no scipy (the GPU box)

    def to_inputs(u):
        u = np.clip(u, 1e-7, 1.0 - 1e-7)
        z = np.zeros((len(u), n_ent), np.float32)
        rows = np.zeros((len(u), n_ent), np.int32)
        noise = np.zeros((len(u), 2), np.int32)
        for col, (kind, what) in enumerate(inp.kind):
            if kind == "normal":
                z[:, what] = ndtri(u[:, col])
            elif kind == "posterior":
                rows[:, list(what)] = np.minimum((u[:, col] * n_draws).astype(np.int64), n_draws - 1)[:, None]
            else:
                noise[:, what] = (u[:, col] * 2.0**31).astype(np.int64).clip(0, 2**31 - 1)
        return z, rows, noise

    def evaluate(u):
        """One block of design rows (at most `batch`), padded to the compiled batch size."""
        real = len(u)
        part = np.concatenate([u, np.repeat(u[:1], batch - real, axis=0)]) if real < batch else u
        z, rows, noise = to_inputs(part)
        ys, finite = run_paths(key, sc.prior, jnp.asarray(z), jnp.asarray(rows), jnp.asarray(noise),
                               n_months=months, select=select)
        ys, finite = jax.device_get((ys, finite))
        ys = np.where(log_cols, np.log(np.maximum(ys, TINY)), ys)
        ys = np.where(finite[None, :, None], ys, np.nan)
        return np.moveaxis(ys, 1, 0)[:real].reshape(real, -1)

    return evaluate


def sensitivity(
    scenario: Scenario | str = "baseline",
    metrics=("north_south_ratio",),
    n: int = 4096,
    seed: int = 0,
    ungroup: bool = False,
    parameters=None,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    progress=None,
) -> xr.Dataset:
    """First-order and total Sobol' indices of `metrics` at every month (and every region
    and tier of each), from n base samples: n * (groups + 2) trajectories.

    Returns a Dataset with dims parameter (the groups), time and the metrics' own dims:
    <metric>_first, <metric>_total and their _low/_high bootstrap bounds, and the metric's
    _variance and _mean on the analysis scale (log for log-scale outputs, except shares).
    See docs/sensitivity.md."""
    sc = scenario if isinstance(scenario, Scenario) else load(scenario)
    metrics, n, seed = _checked(metrics, n, seed, resamples, confidence)
    t0 = time.perf_counter()
    inp = inputs(sc, ungroup=ungroup, parameters=parameters)
    groups = inp.group_names
    layout, select = _selection(sc, metrics)
    log_sel = np.zeros(len(select), bool)
    for m, _, off, size in layout:
        log_sel[off:off + size] = analysis_scale(m) == "log"
    batch = batch_size()
    evaluate = engine(sc, select, log_sel, seed, inp, batch)
    # Blocks of whole base samples (A, every AB, B) that fill one kernel batch.
    res, dropped = sobol(evaluate, inp, n, seed, resamples, confidence, block=max(1, batch // (len(groups) + 2)),
                         progress=progress)

    data, coords = _variables(sc, inp, layout, len(select), res, confidence)
    attrs = provenance([sc], dict(seed=seed, n_trajectories=n * (len(groups) + 2),
                                  wall_seconds=time.perf_counter() - t0))
    attrs.update({
        "title": f"AI access sensitivity: {sc.name}",
        "kind": "sensitivity",
        "metrics": ", ".join(metrics),
        "n_base_samples": n,
        "dropped_base_samples": dropped,
        "grouping": ("named parameters, the rest pooled" if parameters is not None
                     else "per entry" if ungroup else "by parameter name"),
        "method": "Sobol' indices: Saltelli 2010 first-order and Jansen total estimators on a scrambled Sobol' "
                  "(Saltelli) design from SALib; percentile bootstrap intervals over base samples",
        "bootstrap_resamples": resamples,
        "confidence": confidence,
    })
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _checked(metrics, n, seed, resamples, confidence):
    """(metrics, n, seed) of a request, checked: a SensitivityError names what is wrong."""
    metrics = list(dict.fromkeys([metrics] if isinstance(metrics, str) else metrics))
    if not metrics:
        raise SensitivityError("give at least one metric")
    for m in metrics:
        if m not in OUTPUT_BY_NAME:
            import difflib

            close = difflib.get_close_matches(m, OUTPUT_BY_NAME, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SensitivityError(f"metric {m!r} is not an output{hint}; choose from {', '.join(OUTPUT_BY_NAME)}")
    n = check_n(n)
    seed = check_seed(seed, SensitivityError)
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 10:
        raise SensitivityError(f"resamples must be a whole number >= 10, got {resamples!r}")
    if not 0.5 <= confidence < 1.0:
        raise SensitivityError(f"confidence must be in [0.5, 1), got {confidence!r}")
    return metrics, n, seed


def _variables(sc, inp, layout, n_sel, res, confidence) -> tuple[dict, dict]:
    """(data variables, coordinates) of the indices: per metric its first-order and total
    indices with their bootstrap bounds, its variance and its mean on the analysis scale."""
    groups = inp.group_names
    time_index = calendar.time_index(sc.start, sc.months)
    coords = {"parameter": groups, "time": time_index, "region": list(sc.regions), "tier": list(sc.tiers)}
    data = {
        "parameter_members": (("parameter",), np.array([", ".join(inp.members(g)) for g in groups], dtype=object),
                              {"long_name": "the design inputs in each group"}),
    }
    for m, dims, off, size in layout:
        spec = OUTPUT_BY_NAME[m]
        shape = tuple(len(coords[d]) for d in dims)
        scale = analysis_scale(m)
        what = f"log of {spec.long_name}" if scale == "log" else spec.long_name

        def pick(arr, off=off, size=size, shape=shape):  # (..., months * n_sel) -> (..., time, *dims)
            a = arr.reshape(arr.shape[:-1] + (sc.months, n_sel))[..., off:off + size]
            return a.reshape(arr.shape[:-1] + (sc.months,) + shape)

        full = ("parameter", "time") + dims
        common = {"units": "1", "analysis_scale": scale}
        data[f"{m}_first"] = (full, pick(res["first"]), dict(common, long_name=f"first-order Sobol' index of {what}"))
        data[f"{m}_total"] = (full, pick(res["total"]), dict(common, long_name=f"total Sobol' index of {what}"))
        for stat in ("first", "total"):
            for bound in ("low", "high"):
                data[f"{m}_{stat}_{bound}"] = (full, pick(res[f"{stat}_{bound}"]), dict(
                    common, long_name=f"{bound} end of the {confidence:.0%} bootstrap interval of the {stat} index"))
        units = "1 (log)" if scale == "log" else spec.units
        data[f"{m}_variance"] = (("time",) + dims, pick(res["variance"]),
                                 {"units": f"({units})^2", "long_name": f"variance of {what}"})
        data[f"{m}_mean"] = (("time",) + dims, pick(res["mean"]), {"units": units, "long_name": f"mean of {what}"})
    used = {d for _, dims, _, _ in layout for d in dims}
    return data, {k: v for k, v in coords.items() if k in ("parameter", "time") or k in used}


def is_sensitivity(ds: xr.Dataset) -> bool:
    return ds.attrs.get("kind") == "sensitivity"


def metric_names(ds: xr.Dataset) -> list[str]:
    return [v[:-len("_total")] for v in ds.data_vars if v.endswith("_total") and f"{v[:-6]}_first" in ds]


def top(ds: xr.Dataset, metric: str, at: dict, k: int = 8) -> pd.DataFrame:
    """The k groups with the largest total index of metric at a selection (time, region,
    tier): parameter, total, its interval, first-order, its interval."""
    cols = {}
    for stat in ("total", "total_low", "total_high", "first", "first_low", "first_high"):
        cols[stat] = ds[f"{metric}_{stat}"].sel(at).squeeze().values
    df = pd.DataFrame(cols, index=ds["parameter"].values)
    df.index.name = "parameter"
    return df.sort_values("total", ascending=False, na_position="last").head(k)
