"""Copies of a scenario with something changed (parameters, months, start, posterior),
each validated like a file."""
from __future__ import annotations

from forecast.scenario.model import Scenario, as_dict
from forecast.scenario.toml import merge_param
from forecast.scenario.validate import from_dict


def with_params(scenario: Scenario, **overrides: dict) -> Scenario:
    """A copy with some parameters' tables overridden, validated like a file."""
    raw = as_dict(scenario)
    for name, table in overrides.items():
        raw["params"][name] = merge_param(raw["params"].get(name, {}), table) if name in raw["params"] else table
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
