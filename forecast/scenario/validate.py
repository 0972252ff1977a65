"""Validation: a scenario's table (from a file or `as_dict`) -> a Scenario with typed
prior arrays. The one place where numbers become arrays, so that changing a value never
changes a shape or a dtype (no recompiles). Every mistake raises ScenarioError naming the
field, the value and what is allowed."""
from __future__ import annotations

import difflib
import math
from dataclasses import replace
from typing import Any

import numpy as np

from forecast.scenario.calendar import months_between
from forecast.scenario.model import (DIST_ARGS, DISTS_FOR, MAX_MONTHS, META_KEYS, MONTH_RE, PARAM_KEYS, TIERS,
                                     TOP_KEYS, WINDOWS, Scenario, ScenarioError)
from kernels import SPEC_BY_NAME, SPECS, Prior, Params, unconstrain
from kernels.params import FLAGS, RANGES


def _month_index(text: Any, start: tuple[int, int], where: str) -> float:
    m = MONTH_RE.match(text) if isinstance(text, str) else None
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ScenarioError(f"{where}: expected a month as \"YYYY-MM\", got {text!r}")
    return float(months_between(f"{start[0]:04d}-{start[1]:02d}", text))


def _expand(value: Any, names: tuple[str, ...], kind: str, where: str) -> list:
    """One value per region/tier from a scalar or a table by name ("*" is the default)."""
    if not isinstance(value, dict):
        return [value] * len(names)
    unknown = [k for k in value if k != "*" and k not in names]
    if unknown:
        raise ScenarioError(f"{where}: unknown {kind} {unknown[0]!r}; {kind}s are {', '.join(names)}")
    missing = [n for n in names if n not in value and "*" not in value]
    if missing:
        raise ScenarioError(f"{where}: no value for {kind}(s) {', '.join(missing)}")
    return [value.get(n, value.get("*")) for n in names]


def _number(x: Any, where: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ScenarioError(f"{where}: expected a number, got {type(x).__name__} {x!r}")
    if not math.isfinite(x):
        raise ScenarioError(f"{where}: expected a finite number, got {x!r}")
    return float(x)


def _check_support(x: float, support: str, where: str, what: str = "value") -> None:
    if support == "positive" and not x > 0:
        raise ScenarioError(f"{where}: must be > 0 (a positive {what}), got {x:g}")
    if support == "unit" and not 0.0 <= x <= 1.0:
        raise ScenarioError(f"{where}: must be within [0, 1] (a probability or share), got {x:g}")


def _check_range(name: str, x: float, where: str) -> None:
    """A value inside the parameter's physical range (kernels.params.RANGES), and a flag
    exactly 0 or 1."""
    if name in FLAGS and x not in (0.0, 1.0):
        raise ScenarioError(f"{where}: {name} is a yes/no flag: 1 or 0, got {x:g}")
    low, high = RANGES.get(name, (-math.inf, math.inf))
    if not low <= x <= high:
        unit = SPEC_BY_NAME[name].unit
        raise ScenarioError(f"{where}: {x:g} {unit} is outside the physical range of {name}, [{low:g}, {high:g}] "
                            f"{unit} (docs/model.md); check the unit")


def from_dict(raw: dict, text: str = "", where: str = "scenario", allow_unconverged: bool = False) -> Scenario:
    """A scenario's table (what a TOML file gives, `extends` resolved) -> a validated
    Scenario: the top-level fields, every parameter's prior (support, physical range,
    flags), the windows, then the calibration's draw table."""
    start_text, start, months, regions = _check_top(raw, where)
    params_raw = raw["params"]
    _check_names(params_raw)
    names = {"region": tuple(regions), "tier": TIERS}
    resolved, locs, scales = {}, [], []
    for spec in SPECS:
        dist, args = _param(spec, params_raw[spec.name], names, start)
        resolved[spec.name] = {"dist": dist, **args}
        loc, scale = _to_unconstrained(dist, args, spec.support)
        shape = (len(names[spec.dims]),) if spec.dims else ()
        locs.append(np.asarray(loc, np.float32).reshape(shape))
        scales.append(np.asarray(scale, np.float32).reshape(shape))
    for a, b in WINDOWS:
        if resolved[b]["value"][0] < resolved[a]["value"][0]:
            raise ScenarioError(
                f"params.{b}: ends before params.{a} starts; the end must be the same month or later"
            )
    calibration = raw.get("calibration", "none")
    if not isinstance(calibration, str) or not calibration:
        raise ScenarioError(f"calibration: expected \"shipped\", \"none\" or a posterior file path, got {calibration!r}")
    scenario = Scenario(
        name=str(raw.get("name", "scenario")), description=str(raw.get("description", "")),
        start=start_text, months=months, regions=tuple(regions), tiers=TIERS,
        params=resolved, text=text,
        prior=Prior(Params(*locs), Params(*scales), Params(*(np.zeros((1,) + x.shape, np.float32) for x in locs)),
                    Params(*(np.zeros(x.shape, bool) for x in locs))),
        calibration=calibration, allow_unconverged=allow_unconverged,
    )
    if calibration == "none":
        return scenario
    from forecast.scenario.posterior import CalibrationFileError, draw_table

    try:
        draws, mask, info = draw_table(scenario, calibration, allow_unconverged)
    except CalibrationFileError as e:
        raise ScenarioError(f"calibration: {e}") from None
    return replace(scenario, prior=scenario.prior._replace(draws=draws, from_draws=mask), calibration_info=info)


def _check_top(raw: dict, where: str):
    """(start text, (year, month), months, regions) of a table with every top-level field
    known, present and valid."""
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(TOP_KEYS)}")
    for key in ("start", "months", "regions", "params"):
        if key not in raw:
            raise ScenarioError(f"{where}: missing field {key!r} (extend \"baseline\" to inherit it)")
    start_text = raw["start"]
    if not (isinstance(start_text, str) and MONTH_RE.match(start_text)):
        raise ScenarioError(f"start: expected a month as \"YYYY-MM\", got {start_text!r}")
    start = (int(start_text[:4]), int(start_text[5:7]))
    months = raw["months"]
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise ScenarioError(
            f"months: expected a whole number of months in 1..{MAX_MONTHS}, got {months!r}. Longer horizons are "
            "refused: the growth laws are fitted to a few years of data, and after ~60 years exponential token "
            "demand overflows float32 in some trajectories (0.6% of them by 100 years)")
    regions = raw["regions"]
    if (not isinstance(regions, list) or not regions or not all(isinstance(r, str) and r for r in regions)
            or len(set(regions)) != len(regions)):
        raise ScenarioError(f"regions: expected a list of distinct region names, got {regions!r}")
    if sum(1 for _ in regions) < 2:
        raise ScenarioError("regions: need at least 2 regions (North and South)")
    tiers = raw.get("tiers", list(TIERS))
    if list(tiers) != list(TIERS):
        raise ScenarioError(f"tiers: the model's tiers are fixed, in priority order: {list(TIERS)}; got {tiers!r}")
    return start_text, start, months, regions


def _check_names(params_raw) -> None:
    """A params table naming every parameter of the model and nothing else."""
    if not isinstance(params_raw, dict):
        raise ScenarioError("params: expected a table of parameters")
    for name in params_raw:
        if name not in SPEC_BY_NAME:
            close = difflib.get_close_matches(name, SPEC_BY_NAME, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ScenarioError(f"params.{name}: unknown parameter{hint}; see docs/model.md for the list")
    missing = [s.name for s in SPECS if s.name not in params_raw]
    if missing:
        raise ScenarioError(f"params: missing parameter(s) {', '.join(missing)} (extend \"baseline\" to inherit them)")


def _param(spec, table, names, start) -> tuple[str, dict]:
    """(dist, {argument: one value per region/tier}) of one parameter's table, checked."""
    w = f"params.{spec.name}"
    if not isinstance(table, dict):
        raise ScenarioError(f"{w}: expected a table with dist and its arguments, got {table!r}")
    bad = set(table) - PARAM_KEYS
    if bad:
        raise ScenarioError(f"{w}: unknown key(s) {sorted(bad)}; allowed: {sorted(PARAM_KEYS)}")
    if "unit" in table and table["unit"] != spec.unit:
        raise ScenarioError(f"{w}.unit: {table['unit']!r} is not the parameter's unit {spec.unit!r}")
    dist = table.get("dist")
    allowed = DISTS_FOR[spec.support]
    if dist not in allowed:
        raise ScenarioError(f"{w}.dist: {dist!r} is not allowed for a {spec.support} parameter; use one of {list(allowed)}")
    extra = set(table) - META_KEYS - {"dist"} - set(DIST_ARGS[dist])
    if extra:
        raise ScenarioError(f"{w}: {sorted(extra)} do not belong to dist {dist!r}, which takes {list(DIST_ARGS[dist])}")
    args = {}
    for arg in DIST_ARGS[dist]:
        if arg not in table:
            raise ScenarioError(f"{w}: dist {dist!r} needs {arg!r}")
        args[arg] = _values(spec, arg, table[arg], names, start)
    if spec.name in FLAGS and dist != "fixed":
        raise ScenarioError(f"{w}.dist: {spec.name} is a yes/no flag; use dist = \"fixed\" with value 1 or 0")
    if dist == "logitnormal":
        for label, m, s in zip(names.get(spec.dims, ("",)), args["median"], args["sigma"]):
            if m in (0.0, 1.0) and s > 0:
                raise ScenarioError(f"params.{spec.name}.median: {m:g} is only allowed with sigma = 0")
    return dist, args


def _values(spec, arg, value, names, start) -> list[float]:
    """One distribution argument as one checked number per region/tier (a month: its index
    from the start)."""
    w = f"params.{spec.name}"
    dims = spec.dims
    values = _expand(value, names[dims], dims, f"{w}.{arg}") if dims else [value]
    if isinstance(value, dict) and not dims:
        raise ScenarioError(f"{w}.{arg}: this parameter is a single number, not per region or tier")
    labels = names[dims] if dims else ("",)
    out = []
    for label, v in zip(labels, values):
        wl = f"{w}.{arg}" + (f".{label}" if dims else "")
        if spec.support == "month":
            out.append(_month_index(v, start, wl))
            continue
        x = _number(v, wl)
        if arg in ("sigma", "sd") and x < 0:
            raise ScenarioError(f"{wl}: a spread must be >= 0, got {x:g}")
        # A fixed 0 is allowed where the physical range starts at 0 (no release
        # window, no growth): exp(-inf) in unconstrained space, kept finite by scale 0.
        zero_ok = arg == "value" and x == 0.0 and RANGES.get(spec.name, (1.0,))[0] == 0.0
        if arg in ("value", "median", "mean") and not zero_ok:
            _check_support(x, spec.support, wl)
            _check_range(spec.name, x, wl)
        out.append(x)
    return out


def _unconstrain(support: str, x) -> np.ndarray:
    """kernels.params.unconstrain as a host array (0 and 1 map to -inf and inf in logit space)."""
    return np.asarray(unconstrain(support, np.asarray(x, np.float64)), np.float64)


def _to_unconstrained(dist: str, args: dict, support: str) -> tuple[list[float], list[float]]:
    if dist == "fixed":
        return _unconstrain(support, args["value"]), [0.0] * len(args["value"])
    if dist == "normal":
        return args["mean"], args["sd"]
    return _unconstrain(support, args["median"]), args["sigma"]
