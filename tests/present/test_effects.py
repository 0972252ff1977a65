"""Every built-in scenario's documented expected effects (forecast/present/effects/expected.toml)
hold in paired runs in 2030, and `forecast answers` writes docs/answers.md from the runs."""
import numpy as np
import pytest
from click.testing import CliRunner

from forecast.cli import main
from forecast.present.effects import DIRECTIONS, Expectation, check, expectations
from forecast.present.headline import HEADLINES
from forecast.scenario import builtin_names, load, with_months
from tests.conftest import materialize, series

T2030 = 48  # January 2030
N = 512
# The directions are read at the size docs/answers.md is written at (forecast answers' -n
# default, seed 0): a probability near the 0.8 line (the ratio under buildout and
# cheap_inference, ~0.82) has a Monte Carlo error of 0.007 there, 0.018 at 512.
N_DIRECTIONS = 3000


def test_every_scenario_documents_every_headline_metric():
    got = expectations()
    assert all(e.direction in DIRECTIONS and e.why for e in got)
    for name in builtin_names():
        if name == "baseline":
            continue
        mine = [(e.metric, e.select) for e in got if e.scenario == name]
        for h in HEADLINES:
            assert (h.name, dict(h.sel)) in mine, (name, h.name, h.sel)


def test_bad_expectations_are_refused_by_name(tmp_path):
    cases = {'metric = "nope"\ndirection = "higher"\nwhy = "x"': "not an output",
             'metric = "price"\ndirection = "higher"\nwhy = "x"': "select must name",
             'metric = "access_gini"\ndirection = "up"\nwhy = "x"': "direction must be one of",
             'metric = "access_gini"\ndirection = "higher"\nwhy = ""': "say why"}
    for body, message in cases.items():
        path = tmp_path / "e.toml"
        path.write_text("[[moratorium]]\n" + body + "\n")
        with pytest.raises(ValueError, match=message):
            expectations(path)


def test_check_rules():
    assert check("higher", 0.81, 0.1) == (True, pytest.approx(0.9))  # 0.81 of the 0.9 that moved
    assert check("higher", 0.7, 0.1)[0] is False  # 0.78
    assert check("lower", 0.0, 0.2) == (True, 1.0)
    assert check("not higher", 0.2, 0.3)[0] and not check("not higher", 0.21, 0.3)[0]
    assert check("not lower", 0.5, 0.3)[0] and not check("not lower", 0.4, 0.3)[0]  # P(lower) 0.2 / 0.3
    assert check("equal", 0.1, 0.8)[0] and not check("equal", 0.0, 0.79)[0]
    assert check("none", 0.5, 0.0)[0] is None


def _sel(sc, e: Expectation):
    index = {"region": sc.regions, "tier": sc.tiers, "class": ("frontier", "mid", "open")}
    return tuple(index[d].index(e.select[d]) for d in ("region", "tier", "class") if d in e.select)


@pytest.mark.slow
def test_documented_directions_hold_in_2030():
    """Paired (same seed), shipped posterior, January 2030: every direction but "none"."""
    base = with_months(load("baseline"), T2030 + 1)
    bx = materialize(base, n=N_DIRECTIONS)
    failed = []
    for name in sorted({e.scenario for e in expectations()}):
        sc = with_months(load(name), T2030 + 1)
        x = materialize(sc, n=N_DIRECTIONS)
        for e in expectations():
            if e.scenario != name or e.direction == "none":
                continue
            b = series(base, bx, e.metric)[T2030][(slice(None),) + _sel(base, e)].reshape(-1)
            s = series(sc, x, e.metric)[T2030][(slice(None),) + _sel(sc, e)].reshape(-1)
            holds, p = check(e.direction, float(np.mean(s > b)), float(np.mean(s == b)))
            if not holds:
                failed.append((name, e.where, e.direction, round(p, 3)))
    assert not failed, failed


@pytest.mark.slow
def test_answers_command_writes_the_answers_from_the_runs(tmp_path):
    out = tmp_path / "answers.md"
    args = ["answers", "-n", "64", "--scenario", "rationed_frontier", "-o", str(out)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    text = out.read_text()
    for heading in ("## 1. Does scarcity", "## 2. How much", "## 3. What do policies", "## 4. Is the North/South",
                    "## Expected effects"):
        assert heading in text
    assert "forecast answers -n 64 --seed 0" in text and "| rationed_frontier | trusted_gap (us) | higher |" in text
    # The numbers are the run's: the baseline's 2030 North/South median, as a direct run gives it.
    import forecast
    from forecast.present.headline import fmt

    ds = forecast.compare([load("baseline"), load("rationed_frontier")], n_trajectories=64, seed=0)
    med = float(ds["north_south_ratio"].sel(scenario="baseline", time="2030-01", quantile=0.5).squeeze())
    assert f"and {fmt(med)} [" in text
    res = CliRunner().invoke(main, args)  # an existing output is kept without --force
    assert res.exit_code == 2 and out.read_text() == text
    res = CliRunner().invoke(main, ["answers", "--scenario", "nope", "-o", str(tmp_path / "x.md")])
    assert res.exit_code == 2 and "not a built-in scenario" in res.output and not (tmp_path / "x.md").exists()
