"""Expected effects of the built-in scenarios, and whether the paired runs bear them out.

`expected.toml` (beside this file) holds, for every built-in scenario, the direction each
headline metric is expected to move against `baseline` and why. `check` turns a paired
P(higher) and P(equal) into a verdict by the rules written at the top of that file; the
tests and `forecast answers` (forecast.present.effects.answers) apply the same rules.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

EXPECTED = Path(__file__).with_name("expected.toml")
DIRECTIONS = ("higher", "lower", "not higher", "not lower", "equal", "none")
THRESHOLD = 0.8  # P(direction | moved) for "higher"/"lower", P(equal) for "equal"
SLACK = 0.2  # the largest P(higher) ("not higher") or P(lower) ("not lower") allowed


@dataclass(frozen=True)
class Expectation:
    scenario: str
    metric: str
    select: dict = field(default_factory=dict)
    direction: str = "none"
    why: str = ""

    @property
    def where(self) -> str:
        """"price (consumer)", "north_south_ratio": the metric and its selected labels."""
        labels = ", ".join(str(v) for v in self.select.values())
        return f"{self.metric} ({labels})" if labels else self.metric


def expectations(path: Path = EXPECTED) -> list[Expectation]:
    """Every expectation in the file, validated: a known output, dims it has, a direction
    among DIRECTIONS and a reason."""
    from kernels import OUTPUT_BY_NAME

    with open(path, "rb") as f:
        raw = tomllib.load(f)
    out = []
    for scenario, rows in raw.items():
        for i, row in enumerate(rows):
            where = f"{path.name}: {scenario}[{i}]"
            unknown = set(row) - {"metric", "select", "direction", "why"}
            if unknown:
                raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}")
            spec = OUTPUT_BY_NAME.get(row.get("metric", ""))
            if spec is None:
                raise ValueError(f"{where}: metric {row.get('metric')!r} is not an output")
            select = dict(row.get("select", {}))
            dims = [d for d in spec.dims.split(",") if d]
            if sorted(select) != sorted(dims):
                raise ValueError(f"{where}: select must name one label of each of {dims}, got {sorted(select)}")
            if row.get("direction") not in DIRECTIONS:
                raise ValueError(f"{where}: direction must be one of {list(DIRECTIONS)}, got {row.get('direction')!r}")
            if not str(row.get("why", "")).strip():
                raise ValueError(f"{where}: say why")
            out.append(Expectation(scenario, row["metric"], select, row["direction"], row["why"]))
    return out


def check(direction: str, p_higher: float, p_equal: float) -> tuple[bool | None, float]:
    """(holds, the probability the verdict rests on) for paired P(higher) and P(equal);
    holds is None for "none" (no direction expected)."""
    p_lower = max(0.0, 1.0 - p_higher - p_equal)
    moved = 1.0 - p_equal
    if direction == "higher":
        p = p_higher / moved if moved > 0 else 0.0
        return p >= THRESHOLD, p
    if direction == "lower":
        p = p_lower / moved if moved > 0 else 0.0
        return p >= THRESHOLD, p
    if direction == "not higher":
        return p_higher <= SLACK, p_higher
    if direction == "not lower":
        return p_lower <= SLACK, p_lower
    if direction == "equal":
        return p_equal >= THRESHOLD, p_equal
    return None, p_higher
