"""A scenario: what a run needs to know (start, months, regions, resolved priors and the
prior arrays), the constants of a scenario file, and the scenario as the table a file
would give (`as_dict`).

Reading files is forecast.scenario.toml, validation forecast.scenario.validate (the one
place where numbers become typed arrays, so that changing a value never changes a shape
or a dtype: no recompiles), copies with changes forecast.scenario.variants.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from forecast.scenario.calendar import month_label
from kernels import N_TIERS, SPECS, Prior

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
