"""The parameter table of docs/model.md, generated from the registry (kernels/params.py)
and the baseline's priors and sources (forecast/scenario/builtin/baseline.toml).

    python docs/param_table.py           # say which rows differ
    python docs/param_table.py --write   # rewrite the table in docs/model.md

tests/test_docs.py checks that the table is this script's output.
"""
from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from kernels.params import FLAGS, RANGES, SPECS

ROOT = Path(__file__).resolve().parents[1]
MODEL_MD = ROOT / "docs" / "model.md"
HEADER = "| parameter | dims |"


def _fmt(v) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    if isinstance(v, str):
        return v
    return f"{v:g}"


def _prior(b: dict) -> str:
    d = b["dist"]
    if d == "fixed":
        return f"fixed(value {_fmt(b['value'])})"
    if d in ("lognormal", "logitnormal"):
        return f"{d}(median {_fmt(b['median'])}; sigma {_fmt(b['sigma'])})"
    if d == "normal":
        return f"normal(mean {_fmt(b['mean'])}; sd {_fmt(b['sd'])})"
    raise ValueError(f"{d!r}: no table form for this prior family")


def rows() -> list[str]:
    """One Markdown row per registry entry, in registry order."""
    raw = tomllib.loads((ROOT / "forecast" / "scenario" / "builtin" / "baseline.toml").read_text())["params"]
    out = []
    for spec in SPECS:
        b = raw[spec.name]
        if spec.name in FLAGS:
            rng = "0 or 1 (a flag)"
        elif spec.name in RANGES:
            lo, hi = RANGES[spec.name]
            rng = f"[{lo:g}, {hi:g}]"
        else:
            rng = "any month"
        out.append(f"| `{spec.name}` | {spec.dims or 'scalar'} | {spec.doc} | {spec.unit} | {rng} | {_prior(b)} | "
                   f"{b['source']} |")
    return out


def table_span(lines: list[str]) -> tuple[int, int]:
    """[start, end) of the table's body rows in docs/model.md's lines."""
    start = next(i for i, line in enumerate(lines) if line.startswith(HEADER)) + 2
    end = start
    while end < len(lines) and lines[end].startswith("| `"):
        end += 1
    return start, end


def main(argv: list[str]) -> int:
    lines = MODEL_MD.read_text().split("\n")
    start, end = table_span(lines)
    new = rows()
    if "--write" in argv:
        lines[start:end] = new
        MODEL_MD.write_text("\n".join(lines))
        return 0
    old = {re.match(r"\| `(\w+)`", line).group(1): line for line in lines[start:end]}
    differ = [s.name for s, line in zip(SPECS, new) if old.get(s.name) != line]
    print("\n".join(differ) if differ else "the table is up to date")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
