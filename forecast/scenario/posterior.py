"""A scenario's posterior draws: a posterior file (from `forecast calibrate`, read with
xarray only) -> the kernel's draw table.

`draw_table(scenario, path)` returns Params-shaped (n_draws, *shape) unconstrained values
and a mask per parameter of the entries they supply. A parameter the scenario sets
differently from the priors the posterior was fitted against keeps the scenario's prior
(the scenario wins). Every unusable file raises CalibrationFileError naming the file, the
parameter and why.
"""
from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import numpy as np

from kernels import SPECS, Params

SHIPPED = "shipped"
NONE = "none"


class CalibrationFileError(ValueError):
    """A posterior file that cannot be used: says which file and why."""


def shipped_path() -> Path:
    return Path(str(resources.files("priors") / "data" / "posterior.nc"))


def resolve(ref: str | Path) -> Path:
    return shipped_path() if str(ref) == SHIPPED else Path(ref)


def draw_table(scenario, path, allow_unconverged=False):
    """(draws, masks, info) for the kernel: draws is Params-shaped with (n_draws, *shape)
    float32 leaves (unconstrained), masks Params-shaped with bool leaves of the entries the
    posterior supplies."""
    path = resolve(path)
    ds, names, fitted_against, regions = _open(path, scenario, allow_unconverged)
    n_draws = ds.sizes["chain"] * ds.sizes["draw"]
    draws = [np.zeros((n_draws,) + np.shape(l), np.float32) for l in scenario.prior.loc]
    masks = [np.zeros(np.shape(l), bool) for l in scenario.prior.loc]
    used, kept = [], []
    spec_index = {s.name: i for i, s in enumerate(SPECS)}
    for name in names:
        i = spec_index.get(name)
        if i is None:
            raise CalibrationFileError(f"{path}: unknown parameter {name!r} in the draw table")
        if scenario.params[name] != fitted_against.get(name):
            kept.append(name)  # the scenario sets this parameter itself
            continue
        entry = _entry(path, ds, SPECS[i], scenario.prior.loc[i], scenario, regions, n_draws)
        if entry is None:  # none of the scenario's regions is in the posterior
            continue
        draws[i], masks[i] = entry
        used.append(name)
    table, mask = Params(*draws), Params(*masks)
    attrs = ds.attrs
    info = {"path": str(path), "used": used, "kept_scenario": kept, "n_draws": n_draws,
            "tokens_observed_series": attrs.get("tokens_observed_series", "") if "tokens_obs_level" in used else "",
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return table, mask, info


def _open(path, scenario, allow_unconverged):
    """(posterior group, kernel parameter names, the priors they were fitted against, the
    fit's regions) of a posterior file usable for `scenario`."""
    import xarray as xr

    if not path.is_file():
        raise CalibrationFileError(f"posterior file {str(path)!r} does not exist (`forecast calibrate -o` makes one)")
    try:
        with xr.open_dataset(path, group="posterior", engine="h5netcdf") as ds:
            ds = ds.load()
    except Exception as e:  # not netCDF4, or no posterior group
        raise CalibrationFileError(f"{path}: not a posterior file written by `forecast calibrate` ({e})") from None
    attrs = ds.attrs
    try:
        names = json.loads(attrs["kernel_params"])
        fitted_against = json.loads(attrs["fitted_against"])
        regions = json.loads(attrs["regions"])
    except (KeyError, ValueError):
        raise CalibrationFileError(f"{path}: missing kernel_params/fitted_against/regions attributes; "
                                   "not a posterior file written by `forecast calibrate`") from None
    if not int(attrs.get("converged", 0)) and not allow_unconverged:
        problems = json.loads(attrs.get("problems", "[]"))
        raise CalibrationFileError(f"{path}: the fit did not converge ({'; '.join(problems[:3])}); "
                                   "refit, or pass --allow-unconverged to use it anyway")
    if attrs.get("start") != scenario.start:
        raise CalibrationFileError(f"{path}: fitted for a start of {attrs.get('start')}, but scenario "
                                   f"{scenario.name!r} starts {scenario.start}; parameters 'at the start' would "
                                   "not match (recalibrate with `forecast calibrate --scenario`)")
    return ds, names, fitted_against, regions


def _entry(path, ds, spec, loc, scenario, regions, n_draws):
    """(unconstrained float32 draws, mask of the entries supplied) of one parameter in the
    scenario's shape, or None where the posterior supplies none of the scenario's regions."""
    from kernels import unconstrain

    name = spec.name
    if name not in ds:
        raise CalibrationFileError(f"{path}: the draw table lists {name!r} in kernel_params but has no variable "
                                   "for it; the file is damaged or was not written by `forecast calibrate`")
    values = ds[name].values.reshape((n_draws,) + ds[name].shape[2:])
    nan = np.isnan(values)
    partly = nan.any(axis=0) & ~nan.all(axis=0)  # NaN means "not informed" only in every draw
    if partly.any():
        k = int(np.flatnonzero(np.ravel(partly))[0])
        where = f"[{regions[k]}]" if values.ndim == 2 and k < len(regions) else ""
        raise CalibrationFileError(f"{path}: {name}{where} has NaN in {int(np.ravel(nan.sum(axis=0))[k])} of "
                                   f"{n_draws} draws; a posterior must supply every draw of what it supplies")
    if nan.all():
        raise CalibrationFileError(f"{path}: {name} is listed in kernel_params but every draw is NaN; the file "
                                   "supplies nothing for it (refit, or remove it from kernel_params)")
    if spec.dims == "region":
        cols = []
        for r in scenario.regions:
            cols.append(values[:, regions.index(r)] if r in regions else np.full(n_draws, np.nan))
        values = np.stack(cols, axis=1)
    elif spec.dims == "tier":
        raise CalibrationFileError(f"{path}: per-tier parameter {name!r} cannot come from a draw table")
    values = values.reshape((n_draws,) + np.shape(loc))
    _check_draws(path, name, values, list(scenario.regions), ds.sizes["draw"])
    good = ~np.isnan(values).any(axis=0)
    if not good.any():
        return None
    # 0 and 1 map to -inf and inf in logit space: refused below
    u = np.where(good, np.asarray(unconstrain(spec.support, np.where(good, values, 1.0))), 0.0)
    if not np.isfinite(u).all():
        raise CalibrationFileError(f"{path}: {name} has draws outside its support ({spec.support})")
    return u.astype(np.float32), np.asarray(good)


def _check_draws(path, name, values, regions, per_chain):
    """Refuse a draw table whose values leave the parameter's physical range
    (kernels.params.RANGES), naming the parameter, the first offending draw (chain, draw)
    and its region: a broken or hand-edited file, never a forecast."""
    from kernels.params import RANGES, SPEC_BY_NAME

    low, high = RANGES.get(name, (-np.inf, np.inf))
    with np.errstate(invalid="ignore"):
        bad = (values < low) | (values > high)  # the ranges are finite: infinities fail too
    if not bad.any():
        return
    k = int(np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))[0])
    col = int(np.flatnonzero(bad.reshape(bad.shape[0], -1)[k])[0]) if values.ndim > 1 else None
    where = f"[{regions[col]}]" if col is not None and col < len(regions) else ""
    unit = SPEC_BY_NAME[name].unit
    v = values.reshape(values.shape[0], -1)[k, col or 0]
    raise CalibrationFileError(
        f"{path}: {name}{where} = {v:g} {unit} in draw {k % per_chain} of chain {k // per_chain} (and "
        f"{int(bad.sum()) - 1} more) is outside its physical range [{low:g}, {high:g}] {unit} (docs/model.md); "
        "the file is damaged or was not fitted to these units")
