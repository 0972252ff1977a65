"""Scenario files (TOML) -> validated parameters -> prior arrays for the kernel.

A scenario names every parameter's prior (see ``scenarios/baseline.toml``); a scenario
file may extend another (``extends = "baseline"``) and override only what it changes.
This module is the one place where numbers become typed arrays, so that changing a value
never changes a shape or a dtype (no recompiles). Every mistake raises ScenarioError
naming the field, the value and what is allowed.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from forecast.calendar import month_label, months_between
from kernels import N_TIERS, SPEC_BY_NAME, SPECS, Prior, Params, unconstrain
from kernels.params import FLAGS, RANGES

TIERS = ("trusted", "enterprise", "consumer")
assert len(TIERS) == N_TIERS
MAX_MONTHS = 600  # 50 years; see the months check in from_dict
MAX_EXTENDS = 32  # scenarios in one `extends` chain
TOP_KEYS = {"name", "description", "extends", "start", "months", "regions", "tiers", "params", "calibration"}
PARAM_KEYS = {"doc", "unit", "source", "dist", "value", "median", "sigma", "mean", "sd"}
META_KEYS = {"doc", "unit", "source"}
DIST_ARGS = {"fixed": ("value",), "lognormal": ("median", "sigma"),
             "logitnormal": ("median", "sigma"), "normal": ("mean", "sd")}
DISTS_FOR = {"positive": ("lognormal", "fixed"), "unit": ("logitnormal", "fixed"),
             "real": ("normal", "fixed"), "month": ("fixed",)}
MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
# Pairs of (start, end) parameters whose end must not come before their start.
WINDOWS = (("moratorium_start", "moratorium_end"), ("buildout_start", "buildout_end"))


class ScenarioError(ValueError):
    """A scenario that cannot be run: the message names the field and what is allowed."""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    start: str  # "YYYY-MM", the first simulated month
    months: int
    regions: tuple[str, ...]
    tiers: tuple[str, ...]
    params: dict[str, dict[str, Any]]  # resolved: dist and per-element arguments
    text: str  # the TOML source(s), base first
    prior: Prior = field(repr=False)
    calibration: str = "none"  # posterior file the draws come from: "none", "shipped" or a path
    calibration_info: dict = field(default_factory=dict, repr=False)
    allow_unconverged: bool = False

    @property
    def hash(self) -> str:
        """SHA-256 of what determines a run (dimensions, resolved priors, posterior file)."""
        blob = json.dumps([self.start, self.months, self.regions, self.params,
                           self.calibration_info.get("sha256", "")], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def priors_source(self) -> str:
        info = self.calibration_info
        if not info:
            return "scenario priors (hand-set, docs/model.md)"
        kept = f"; scenario's own priors kept for {', '.join(info['kept_scenario'])}" if info["kept_scenario"] else ""
        return (f"posterior {self.calibration} ({info['n_draws']} draws, sha256 {info['sha256'][:12]}) for "
                f"{', '.join(info['used'])}; hand-set priors for the rest{kept}")


def builtin_names() -> list[str]:
    files = resources.files("forecast.scenarios")
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def builtin_descriptions() -> dict[str, str]:
    return {n: _read(n)[0].get("description", "") for n in builtin_names()}


def _read(ref: str | Path) -> tuple[dict, str, str]:
    """(parsed TOML, its text, where it came from) for a built-in name or a path."""
    path = Path(ref)
    if str(ref) in builtin_names():
        text = resources.files("forecast.scenarios").joinpath(f"{ref}.toml").read_text()
        where = f"built-in scenario '{ref}'"
    elif path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ScenarioError(f"scenario file {str(path)!r} does not exist")
        try:
            text, where = path.read_text(encoding="utf-8"), str(path)
        except UnicodeDecodeError as e:
            raise ScenarioError(f"{path}: not a scenario file (TOML text): bytes that are not UTF-8 at byte "
                                f"{e.start}") from None
        except OSError as e:
            raise ScenarioError(f"{path}: cannot be read ({e.strerror or e})") from None
    else:
        close = difflib.get_close_matches(str(ref), builtin_names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ScenarioError(
            f"unknown scenario {str(ref)!r}{hint}: give a TOML file path or one of {', '.join(builtin_names())}"
        )
    try:
        return tomllib.loads(text), text, where
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{where}: not valid TOML: {e}") from None


def load(ref: str | Path = "baseline", calibration: str | None = None, allow_unconverged: bool = False) -> Scenario:
    """Read, merge (``extends``), validate and convert a scenario to prior arrays.

    calibration: a posterior file, "shipped" or "none", instead of the scenario's own
    ``calibration`` field (built-in scenarios use the shipped posterior)."""
    raw, text, where = _resolve_extends(ref, seen=())
    if calibration is not None:
        raw["calibration"] = str(calibration)
    return from_dict(raw, text=text, where=where, allow_unconverged=allow_unconverged)


def _identity(ref) -> str:
    """What a scenario reference names, however it is spelled: a built-in's name, or the
    file's resolved path (so that "a.toml", "./a.toml" and "../x/a.toml" are one file)."""
    if str(ref) in builtin_names():
        return f"builtin:{ref}"
    try:
        return f"file:{Path(ref).resolve()}"
    except (OSError, RuntimeError):
        return f"file:{ref}"


def _resolve_extends(ref, seen) -> tuple[dict, str, str]:
    seen = seen + (_identity(ref),)
    data, text, where = _read(ref)
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(TOP_KEYS)}")
    parent = data.pop("extends", None)
    if parent is None:
        return data, text, where
    if not isinstance(parent, str):
        raise ScenarioError(f"{where}: extends must be a scenario name or path, got {parent!r}")
    named = parent
    if not Path(str(parent)).is_absolute() and isinstance(ref, (str, Path)) and Path(ref).exists():
        candidate = Path(ref).parent / parent
        parent = candidate if candidate.exists() else parent
    if _identity(parent) in seen:
        raise ScenarioError(f"{where}: circular extends: {named!r} is already one of the scenarios it extends "
                            "(directly or through others)")
    if len(seen) > MAX_EXTENDS:
        raise ScenarioError(f"{where}: more than {MAX_EXTENDS} scenarios extend one another; is the chain circular?")
    base, base_text, _ = _resolve_extends(parent, seen)
    return _merge(base, data), base_text + "\n# ---- extended by " + where + "\n" + text, where


def _merge(base: dict, child: dict) -> dict:
    out = dict(base)
    for key, value in child.items():
        if key == "params" and isinstance(value, dict) and isinstance(base.get("params"), dict):
            params = dict(base["params"])
            for name, table in value.items():
                if isinstance(table, dict) and isinstance(params.get(name), dict):
                    params[name] = _merge_param(params[name], table)
                else:
                    params[name] = table
            out["params"] = params
        else:
            out[key] = value
    return out


def _merge_param(base: dict, child: dict) -> dict:
    if "dist" in child and child["dist"] != base.get("dist"):
        # A new family replaces the old arguments; documentation carries over.
        return {**{k: v for k, v in base.items() if k in META_KEYS}, **child}
    out = dict(base)
    for key, value in child.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            out[key] = {**old, **value}
        elif isinstance(value, dict) and old is not None and not isinstance(old, dict):
            out[key] = {"*": old, **value}  # a scalar default under per-name overrides
        else:
            out[key] = value
    return out


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
    params_raw = raw["params"]
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

    names = {"region": tuple(regions), "tier": TIERS}
    resolved, locs, scales = {}, [], []
    for spec in SPECS:
        w = f"params.{spec.name}"
        table = params_raw[spec.name]
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
            dims = spec.dims
            values = _expand(table[arg], names[dims], dims, f"{w}.{arg}") if dims else [table[arg]]
            if isinstance(table[arg], dict) and not dims:
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
            args[arg] = out
        if spec.name in FLAGS and dist != "fixed":
            raise ScenarioError(f"{w}.dist: {spec.name} is a yes/no flag; use dist = \"fixed\" with value 1 or 0")
        if dist == "logitnormal":
            for label, m, s in zip(names.get(spec.dims, ("",)), args["median"], args["sigma"]):
                if m in (0.0, 1.0) and s > 0:
                    raise ScenarioError(f"params.{spec.name}.median: {m:g} is only allowed with sigma = 0")
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
    from forecast.calibrate import CalibrationFileError, draw_table

    try:
        draws, mask, info = draw_table(scenario, calibration, allow_unconverged)
    except CalibrationFileError as e:
        raise ScenarioError(f"calibration: {e}") from None
    return replace(scenario, prior=scenario.prior._replace(draws=draws, from_draws=mask), calibration_info=info)


def _unconstrain(support: str, x) -> np.ndarray:
    """kernels.params.unconstrain as a host array (0 and 1 map to -inf and inf in logit space)."""
    return np.asarray(unconstrain(support, np.asarray(x, np.float64)), np.float64)


def _to_unconstrained(dist: str, args: dict, support: str) -> tuple[list[float], list[float]]:
    if dist == "fixed":
        return _unconstrain(support, args["value"]), [0.0] * len(args["value"])
    if dist == "normal":
        return args["mean"], args["sd"]
    return _unconstrain(support, args["median"]), args["sigma"]


def with_params(scenario: Scenario, **overrides: dict) -> Scenario:
    """A copy with some parameters' tables overridden, validated like a file."""
    raw = as_dict(scenario)
    for name, table in overrides.items():
        raw["params"][name] = _merge_param(raw["params"].get(name, {}), table) if name in raw["params"] else table
    return from_dict(raw, text=scenario.text, where=f"{scenario.name} (overridden)",
                     allow_unconverged=scenario.allow_unconverged)


def with_months(scenario: Scenario, months: int) -> Scenario:
    """A copy simulating `months` months from the same start, validated like a file."""
    return from_dict({**as_dict(scenario), "months": months}, text=scenario.text,
                     where=f"{scenario.name} (months overridden)", allow_unconverged=scenario.allow_unconverged)


def with_start(scenario: Scenario, start: str, months: int | None = None) -> Scenario:
    """A copy starting at another month ("YYYY-MM"); dated parameters keep their calendar
    months. Parameters "at the start" keep their values: the caller recalibrates them."""
    return from_dict({**as_dict(scenario), "start": start, "months": months or scenario.months}, text=scenario.text,
                     where=f"{scenario.name} (start {start})", allow_unconverged=scenario.allow_unconverged)


def with_calibration(scenario: Scenario, calibration: str, allow_unconverged: bool = False) -> Scenario:
    """A copy whose parameter draws come from another posterior file ("none": hand-set)."""
    return from_dict({**as_dict(scenario), "calibration": str(calibration)}, text=scenario.text,
                     where=scenario.name, allow_unconverged=allow_unconverged)


def as_dict(scenario: Scenario) -> dict:
    """The scenario as the table a TOML file would give (what from_dict validates)."""
    return {"name": scenario.name, "description": scenario.description, "start": scenario.start,
            "months": scenario.months, "regions": list(scenario.regions), "params": _params_as_tables(scenario),
            "calibration": scenario.calibration}


def _params_as_tables(scenario: Scenario) -> dict:
    tables = {}
    for spec in SPECS:
        r = scenario.params[spec.name]
        names = {"region": scenario.regions, "tier": scenario.tiers}.get(spec.dims)
        table = {"dist": r["dist"]}
        for arg in DIST_ARGS[r["dist"]]:
            vals = r[arg]
            if spec.support == "month":
                vals = [month_label(scenario.start, v) for v in vals]
            table[arg] = dict(zip(names, vals)) if names else vals[0]
        tables[spec.name] = table
    return tables
