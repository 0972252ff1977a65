"""Kernel arrays -> a labelled xarray.Dataset with units, long names and provenance."""
from __future__ import annotations

import datetime as _dt
import platform

import jax
import numpy as np
import xarray as xr

from forecast.scenario import calendar
from kernels import CLASSES, OUTPUTS, RATIO_OUTPUTS, SPECS, SeriesLayout

def engine_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-access-forecast")
    except PackageNotFoundError:
        return "unknown"


WIDENING = ("north_south_ratio", "access_gini")  # gap measures: P(value at t > value at the start)


def build_dataset(scs, values, rank_error, mean, std, quantiles, nonfinite, probabilities, info,
                  sample=None) -> xr.Dataset:
    """values, rank_error: (time, series, quantile); mean, std, nonfinite and each of
    probabilities["positive" | "zero" | "above_start"]: (time, series). scs: the scenarios
    (one, or several compared: series laid out as kernels.SeriesLayout says).
    sample: None, or dict(values=(time, series, k) whole trajectories, params=[one dict
    {parameter: (k, ...)} per scenario]), stored as `<output>_sample` and `param_<name>` on a
    `sample` dimension (the trajectories' indices)."""
    sc = scs[0]
    n_scen = len(scs)
    coords = {"time": calendar.time_index(sc.start, sc.months), "region": list(sc.regions),
              "tier": list(sc.tiers), "class": list(CLASSES), "quantile": list(quantiles)}
    if n_scen > 1:
        coords["scenario"] = [s.name for s in scs]
        coords["compared"] = [s.name for s in scs[1:]]
    out = _Variables(SeriesLayout(len(sc.regions), n_scen), sc.months, n_scen, values, rank_error, nonfinite)
    for spec in OUTPUTS:
        _output(out, spec, sc.name, mean, std, probabilities)
        if sample is not None:
            _sample(out, spec, sample["values"])
    if sample is not None:
        coords["sample"] = np.arange(sample["values"].shape[2])
        for spec in SPECS:
            dims = ("sample",) + tuple(d for d in spec.dims.split(",") if d)
            v = np.stack([np.asarray(p[spec.name]) for p in sample["params"]])
            out.data[f"param_{spec.name}"] = (("scenario",) * (n_scen > 1) + dims, v if n_scen > 1 else v[0],
                                              {"units": spec.unit,
                                               "long_name": f"{spec.doc} (the sample's parameters)"})
    attrs = provenance(scs, info)
    attrs.update({
        "chunk_size": info["chunk_size"],
        "batch_size": info["batch_size"],
        "nonfinite_trajectories": info["bad_trajectories"],
        "devices_used": info.get("devices", 1),
        "resumed_from_checkpoint": int(info.get("resumed", False)),
        "quantile_method": "inverted_cdf: exact order statistics x_(ceil(q N)) of every trajectory's values "
                           "(the population advanced in lockstep; rank error 0)",
        "band_passes": ", ".join(info.get("passes", [])),
        "compared_against": sc.name if n_scen > 1 else "",
    })
    ds = xr.Dataset(out.data, coords=coords, attrs=attrs)
    if n_scen > 1:  # how each paired difference reads: "x baseline" or a plain difference in units
        for spec in OUTPUTS:
            ds[f"{spec.name}_diff"].attrs["difference"] = "log_ratio" if spec.name in RATIO_OUTPUTS else "difference"
    ds["tokens_observed"].attrs["series"] = (
        sc.calibration_info.get("tokens_observed_series")
        or "the series whose start level the scenario's tokens_obs_level sets (baseline: Google (all surfaces), "
           "tokens_processed_per_month)")
    return ds


class _Variables:
    """The Dataset's variables as they are built, read from the run's (time, series, ...)
    arrays through the SeriesLayout: one scenario's block of series, or a compared one's."""

    def __init__(self, layout, months, n_scen, values, rank_error, nonfinite):
        self.layout, self.months, self.n_scen = layout, months, n_scen
        self.values, self.rank_error, self.nonfinite = values, rank_error, nonfinite
        self.data: dict = {}

    def blocks(self, arr, name, count, first):
        """(count, time, ...) of output `name` from `count` consecutive series blocks
        starting at `first`."""
        return np.stack([arr[:, self.layout.slice(name, first + b)] for b in range(count)])

    def put(self, spec, name, first, count, dim, stats, units, long):
        """Bands of `count` series blocks from `first` as `name`; stats: (variable name,
        attrs, (time, series) array) read from the same blocks."""
        dims = tuple(d for d in spec.dims.split(",") if d)
        shape = self.layout.shape(spec.name)
        nq = self.values.shape[-1]
        band = self.blocks(self.values, spec.name, count, first)  # (count, time, size, q)
        band = np.moveaxis(band, 3, 1).reshape((count, nq, self.months) + shape)
        attrs = {"units": units, "long_name": long,
                 "nonfinite_values": int(self.blocks(self.nonfinite, spec.name, count, first).sum()),
                 "max_quantile_rank_error": float(np.nanmax(self.blocks(self.rank_error, spec.name, count, first)))}
        lead_dim = (dim,) if self.n_scen > 1 else ()
        cut = (lambda a: a) if self.n_scen > 1 else (lambda a: a[0])
        self.data[name] = (lead_dim + ("quantile", "time") + dims, cut(band).astype(np.float64), attrs)
        for var, var_attrs, arr in stats:
            v = self.blocks(arr, spec.name, count, first).reshape((count, self.months) + shape)
            self.data[var] = (lead_dim + ("time",) + dims, cut(v).astype(np.float64), var_attrs)


def _output(out: _Variables, spec, first_name, mean, std, probabilities):
    """One output's bands, mean, sd and probabilities (and, in a comparison, its paired
    differences against the first scenario, `first_name`)."""
    n, unit, long_name, n_scen = spec.name, spec.units, spec.long_name, out.n_scen
    stats = [(f"{n}_mean", {"units": unit, "long_name": f"mean of {long_name}"}, mean),
             (f"{n}_std", {"units": unit, "long_name": f"standard deviation of {long_name}"}, std)]
    if spec.log_scale:  # non-negative: a point mass at zero is possible
        stats.append((f"{n}_p_positive", {"units": "1", "long_name": f"probability that {long_name} > 0"},
                      probabilities["positive"]))
    if n in WIDENING:
        stats.append((f"{n}_p_widening", {"units": "1", "long_name": f"probability that {long_name} is above "
                                                                      "its value in the first month"},
                      probabilities["above_start"]))
    out.put(spec, n, 0, n_scen, "scenario", stats, unit, long_name)
    if n_scen > 1:
        ratio = n in RATIO_OUTPUTS
        diff_unit = "1 (log ratio)" if ratio else unit
        diff_long = (f"log ratio of {long_name} to {first_name}'s, paired" if ratio
                     else f"difference of {long_name} from {first_name}'s, paired")
        out.put(spec, f"{n}_diff", n_scen, n_scen - 1, "compared",
                [(f"{n}_diff_mean", {"units": diff_unit, "long_name": f"mean {diff_long}"}, mean),
                 (f"{n}_p_higher", {"units": "1", "long_name": f"probability that {long_name} is higher than "
                                                                f"under {first_name}"}, probabilities["positive"]),
                 (f"{n}_p_equal", {"units": "1", "long_name": f"probability that {long_name} equals "
                                                               f"{first_name}'s"}, probabilities["zero"])],
                diff_unit, diff_long)


def _sample(out: _Variables, spec, values):
    """One output's whole trajectories, `<output>_sample` (values: (time, series, k))."""
    n_scen, shape = out.n_scen, out.layout.shape(spec.name)
    dims = tuple(d for d in spec.dims.split(",") if d)
    v = out.blocks(np.transpose(values, (2, 1, 0)), spec.name, n_scen, 0)  # (scen, k, size, time)
    v = np.swapaxes(v, 2, 3).reshape(v.shape[:2] + (out.months,) + shape)
    out.data[f"{spec.name}_sample"] = (("scenario",) * (n_scen > 1) + ("sample", "time") + dims,
                                       v if n_scen > 1 else v[0],
                                       {"units": spec.units, "long_name": f"{spec.long_name}, whole trajectories "
                                                                          f"(the run's first {v.shape[1]}; NaN "
                                                                          "where non-finite)"})


def provenance(scs, info) -> dict:
    """The attrs every results file carries: what was run (scenarios, their text and hash,
    priors, seed, size), with what (engine, jax, device, dtype, PRNG) and when."""
    sc, n_scen = scs[0], len(scs)
    devices = jax.devices()
    return {
        "title": f"AI access forecast: {', '.join(s.name for s in scs)}",
        "engine_version": engine_version(),
        "scenario": sc.name if n_scen == 1 else ", ".join(s.name for s in scs),
        "scenario_description": sc.description if n_scen == 1 else " | ".join(
            f"{s.name}: {s.description}" for s in scs),
        "scenario_text": sc.text if n_scen == 1 else "\n# ==== next scenario\n".join(s.text for s in scs),
        "scenario_hash": sc.hash if n_scen == 1 else ",".join(s.hash for s in scs),
        "seed": info["seed"],
        "n_trajectories": info["n_trajectories"],
        "jax_version": jax.__version__,
        "device": f"{devices[0].platform}:{devices[0].device_kind} x{len(devices)}",
        "dtype": "float32",
        "prng_impl": str(jax.config.jax_default_prng_impl),
        "python_version": platform.python_version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(info["wall_seconds"], 3),
        "priors_source": sc.priors_source if n_scen == 1 else " | ".join(
            f"{s.name}: {s.priors_source}" for s in scs),
        "Conventions": "CF-1.8",
    }
