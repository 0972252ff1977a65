"""docs/model.md's parameter table is generated (docs/param_table.py), never typed: it must
be the registry's and the baseline's, row for row."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("param_table", ROOT / "docs" / "param_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_parameter_table_is_the_registry_and_the_baselines_priors():
    gen = _generator()
    lines = (ROOT / "docs" / "model.md").read_text().split("\n")
    start, end = gen.table_span(lines)
    documented = lines[start:end]
    expected = gen.rows()
    assert len(documented) == len(expected), "rerun: python docs/param_table.py --write"
    for doc, want in zip(documented, expected):
        assert doc == want, f"rerun: python docs/param_table.py --write\n{doc}\n!=\n{want}"
