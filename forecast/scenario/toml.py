"""Scenario files: a built-in name or a TOML path -> the merged table (``extends``
resolved) -> `load`, which validates it (forecast.scenario.validate).

A scenario names every parameter's prior (see ``builtin/baseline.toml``); a scenario file
may extend another (``extends = "baseline"``) and override only what it changes. Every
mistake raises ScenarioError naming the file, the field and what is allowed.
"""
from __future__ import annotations

import difflib
import tomllib
from importlib import resources
from pathlib import Path

from forecast.scenario.model import MAX_EXTENDS, META_KEYS, TOP_KEYS, Scenario, ScenarioError
from forecast.scenario.validate import from_dict

BUILTIN = "forecast.scenario.builtin"


def builtin_names() -> list[str]:
    files = resources.files(BUILTIN)
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def builtin_descriptions() -> dict[str, str]:
    return {n: _read(n)[0].get("description", "") for n in builtin_names()}


def _read(ref: str | Path) -> tuple[dict, str, str]:
    """(parsed TOML, its text, where it came from) for a built-in name or a path."""
    path = Path(ref)
    if str(ref) in builtin_names():
        text = resources.files(BUILTIN).joinpath(f"{ref}.toml").read_text()
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
                    params[name] = merge_param(params[name], table)
                else:
                    params[name] = table
            out["params"] = params
        else:
            out[key] = value
    return out


def merge_param(base: dict, child: dict) -> dict:
    """A parameter's table overridden by `child`: a new dist replaces the arguments (the
    documentation carries over); a per-name table updates the names it gives."""
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
