"""Scenario validation and the CLI: bad input exits non-zero, names the field, writes nothing."""
import pytest
import xarray as xr
from click.testing import CliRunner

from forecast import scenario as sc_mod
from forecast.cli import main

BASE = 'extends = "baseline"\nname = "bad"\n'
CASES = {
    "unknown_field": (BASE + "colour = 3\n", "colour"),
    "unknown_param": (BASE + "[params.growth_zero]\nvalue = 1\n", "params.growth_zero"),
    "wrong_type": (BASE + '[params.g_hw]\nmedian = "fast"\n', "params.g_hw.median"),
    "negative_population": (BASE + "[params.population]\nvalue = { us = -5.0 }\n", "params.population.value.us"),
    "probability_above_one": (BASE + "[params.moratorium_probability]\nvalue = { us = 1.5 }\n",
                              "params.moratorium_probability.value.us"),
    "end_before_start": (BASE + '[params.moratorium_end]\nvalue = "2026-06"\n', "params.moratorium_end"),
    "unknown_region": (BASE + "[params.growth0]\nmedian = { mars = 0.5 }\n", "unknown region 'mars'"),
    "bad_month": (BASE + '[params.buildout_start]\nvalue = "2026-13"\n', "params.buildout_start.value"),
    "wrong_dist": (BASE + '[params.g_hw]\ndist = "normal"\nmean = 0.3\nsd = 0.1\n', "params.g_hw.dist"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_scenario_exits_nonzero_and_writes_nothing(tmp_path, case):
    text, needle = CASES[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(text)
    out = tmp_path / "out.nc"
    result = CliRunner().invoke(main, ["run", str(path), "-n", "10", "-o", str(out)])
    assert result.exit_code != 0
    assert needle in result.output
    assert not out.exists()


def test_every_builtin_loads_and_differs_from_baseline():
    names = sc_mod.builtin_names()
    assert set(names) >= {"baseline", "moratorium", "buildout", "sovereign_compute", "rationed_frontier",
                          "cheap_inference", "agentic_surge"}
    base = sc_mod.load("baseline").hash
    for name in names:
        if name != "baseline":
            assert sc_mod.load(name).hash != base, name


def test_scenarios_command_lists_builtins():
    result = CliRunner().invoke(main, ["scenarios"])
    assert result.exit_code == 0 and "moratorium" in result.output


@pytest.mark.slow
def test_cli_run_writes_readable_dataset(tmp_path):
    out = tmp_path / "b.nc"
    result = CliRunner().invoke(main, ["run", "baseline", "-n", "300", "--seed", "3", "-o", str(out), "--sample", "7"])
    assert result.exit_code == 0, result.output
    ds = xr.open_dataset(out)
    assert ds.sizes["sample"] == 7 and ds["price_sample"].dims == ("sample", "time", "tier")
    assert ds["param_g_alg"].dims == ("sample",) and ds["param_g_alg"].attrs["units"]
    for name in ("compute", "power", "cost_frontier", "cost_fixed_capability", "cost_floor", "price",
                 "demand_tokens", "frontier_tokens", "lagging_tokens", "tokens_per_capita", "north_south_ratio",
                 "access_gini", "unmet_share", "capability_lag", "priced_out", "adoption"):
        assert name in ds and f"{name}_mean" in ds and ds[name].attrs["units"]
    assert ds.attrs["seed"] == 3 and ds.attrs["n_trajectories"] == 300
    assert list(ds["quantile"].values) == [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]


@pytest.mark.parametrize("target", ["missing_dir/out.nc", "out.zarr", "out.csv"])
def test_bad_output_path_is_refused_before_simulating(tmp_path, target):
    out = tmp_path / target
    result = CliRunner().invoke(main, ["run", "baseline", "-n", "10", "-o", str(out)])
    assert result.exit_code == 2 and "error" in result.output and "compiling" not in result.output
    assert not out.exists()


def test_version_did_you_mean_and_quantiles(tmp_path):
    from importlib.metadata import version

    res = CliRunner().invoke(main, ["--version"])
    assert res.exit_code == 0 and version("ai-access-forecast") in res.output
    res = CliRunner().invoke(main, ["run", "baselin", "-n", "10", "-o", str(tmp_path / "x.nc")])
    assert res.exit_code == 2 and "did you mean 'baseline'" in " ".join(res.output.split())
    res = CliRunner().invoke(main, ["sensitivity", "baseline", "--metric", "acces_gini", "-o", str(tmp_path / "s.nc")])
    assert res.exit_code == 2 and "did you mean 'access_gini'" in " ".join(res.output.split())
    res = CliRunner().invoke(main, ["run", "baseline", "-n", "10", "--sample", "-3", "-o", str(tmp_path / "x.nc")])
    assert res.exit_code == 2 and "sample must be a whole number >= 0, got -3" in res.output
    for bad in ("0.05,0.95", "0.5,0.2", "a,b", "0,0.5"):
        res = CliRunner().invoke(main, ["run", "baseline", "-n", "10", "--quantiles", bad, "-o", str(tmp_path / "q.nc")])
        assert res.exit_code == 2 and "--quantiles" in res.output, (bad, res.output)
    assert list(tmp_path.iterdir()) == []
