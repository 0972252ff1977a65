"""Kernel arrays -> a labelled xarray.Dataset with units, long names and provenance."""
from __future__ import annotations

import datetime as _dt
import platform

import jax
import numpy as np
import pandas as pd
import xarray as xr

from kernels import OUTPUTS, output_sizes

def engine_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-access-forecast")
    except PackageNotFoundError:
        return "unknown"


def build_dataset(sc, values, rank_error, mean, std, quantiles, nonfinite, info) -> xr.Dataset:
    """values, rank_error: (time, series, quantile); mean, std, nonfinite: (time, series)."""
    time = pd.date_range(pd.Timestamp(sc.start + "-01"), periods=sc.months, freq="MS")
    coords = {"time": time, "region": list(sc.regions), "tier": list(sc.tiers), "quantile": list(quantiles)}
    data, offset = {}, 0
    for spec, size in zip(OUTPUTS, output_sizes(len(sc.regions))):
        dims = tuple(d for d in spec.dims.split(",") if d)
        shape = tuple(len(coords[d]) for d in dims)
        sl = slice(offset, offset + size)
        offset += size
        unit, long_name = spec.units, spec.long_name
        band = np.moveaxis(values[:, sl, :], 2, 0).reshape((len(quantiles), sc.months) + shape)
        attrs = {"units": unit, "long_name": long_name,
                 "nonfinite_values": int(nonfinite[:, sl].sum()),
                 "max_quantile_rank_error": float(np.nanmax(rank_error[:, sl, :]))}
        data[spec.name] = (("quantile", "time") + dims, band.astype(np.float64), attrs)
        for stat, arr in (("mean", mean), ("std", std)):
            data[f"{spec.name}_{stat}"] = (("time",) + dims, arr[:, sl].reshape((sc.months,) + shape),
                                           {"units": unit, "long_name": f"{stat} of {long_name}"})
    devices = jax.devices()
    attrs = {
        "title": f"AI access forecast: {sc.name}",
        "engine_version": engine_version(),
        "scenario": sc.name,
        "scenario_description": sc.description,
        "scenario_text": sc.text,
        "scenario_hash": sc.hash,
        "seed": info["seed"],
        "n_trajectories": info["n_trajectories"],
        "chunk_size": info["chunk_size"],
        "batch_size": info["batch_size"],
        "nonfinite_trajectories": info["bad_trajectories"],
        "quantile_method": "inverted_cdf: simulated values of known rank from exact multi-pass counts; "
                           "worst rank error per variable in its max_quantile_rank_error attribute",
        "jax_version": jax.__version__,
        "device": f"{devices[0].platform}:{devices[0].device_kind} x{len(devices)}",
        "dtype": "float32",
        "prng_impl": str(jax.config.jax_default_prng_impl),
        "python_version": platform.python_version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(info["wall_seconds"], 3),
        "priors_source": sc.priors_source,
        "Conventions": "CF-1.8",
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)
