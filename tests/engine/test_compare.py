"""Paired scenario comparisons and the probabilities every run reports, against exact
counts on materialised trajectories."""
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

import forecast
from forecast.cli import main
from forecast.engine.dataset import WIDENING
from forecast.scenario import load, with_months, with_params
from kernels import OUTPUTS
from tests.conftest import materialize, series

MONTHS = 14
N = 1500


@pytest.fixture(scope="module")
def short_baseline():
    return with_months(load("baseline", calibration="none"), MONTHS)


def more_us_compute(sc):
    c0 = dict(zip(sc.regions, sc.params["compute0"]["median"]))
    return replace(with_params(sc, compute0={"median": {**c0, "us": 1.5 * c0["us"]}}), name="more_us")


@pytest.mark.slow
def test_probabilities_equal_exact_fractions(short_baseline):
    sc = short_baseline
    ds = forecast.run(sc, n_trajectories=N, seed=4)
    x = materialize(sc, n=N, seed=4)
    for spec in OUTPUTS:
        v = series(sc, x, spec.name)
        if spec.log_scale:
            want = (v > 0).mean(axis=1)
            got = ds[f"{spec.name}_p_positive"].values
            np.testing.assert_allclose(got, want.reshape(got.shape), atol=1e-12, err_msg=spec.name)
        if spec.name in WIDENING:
            want = (v > v[:1]).mean(axis=1)
            got = ds[f"{spec.name}_p_widening"].values
            np.testing.assert_allclose(got, want.reshape(got.shape), atol=1e-12, err_msg=spec.name)
            assert got[0] == 0.0
    assert 0 < float(ds["unmet_share_p_positive"].isel(time=-1)) < 1  # a real point mass


@pytest.mark.slow
def test_compare_with_itself_is_exactly_equal(short_baseline):
    twin = replace(short_baseline, name="twin")
    ds = forecast.compare([short_baseline, twin], n_trajectories=600, seed=2)
    for spec in OUTPUTS:
        assert np.all(ds[f"{spec.name}_diff"].values == 0), spec.name
        assert np.all(ds[f"{spec.name}_p_equal"].values == 1.0), spec.name
        assert np.all(ds[f"{spec.name}_p_higher"].values == 0.0), spec.name


@pytest.mark.slow
def test_more_us_compute_is_higher_in_every_trajectory(short_baseline):
    ds = forecast.compare([short_baseline, more_us_compute(short_baseline)], n_trajectories=600, seed=3)
    p = ds["compute_p_higher"].sel(compared="more_us", region="us").values
    assert np.all(p == 1.0)
    assert np.all(ds["compute_p_equal"].sel(compared="more_us", region="europe").values == 1.0)


@pytest.mark.slow
def test_compare_matches_separate_runs_and_brute_force(short_baseline):
    other = more_us_compute(short_baseline)
    n = 1200
    ds = forecast.compare([short_baseline, other], n_trajectories=n, seed=5)
    for i, sc in enumerate((short_baseline, other)):
        alone = forecast.run(sc, n_trajectories=n, seed=5)
        for spec in OUTPUTS:
            np.testing.assert_array_equal(ds[spec.name].isel(scenario=i).values, alone[spec.name].values,
                                          err_msg=f"{sc.name} {spec.name}")
            # The paired sample: each scenario's own first trajectories, as its run keeps them.
            np.testing.assert_array_equal(ds[f"{spec.name}_sample"].isel(scenario=i).values,
                                          alone[f"{spec.name}_sample"].values, err_msg=f"{sc.name} {spec.name}")
        np.testing.assert_array_equal(ds["param_compute0"].isel(scenario=i).values, alone["param_compute0"].values)
    # The sample's parameters are the ones its trajectories ran with: more_us's US compute
    # at the start is 1.5x the baseline's in every sampled trajectory (same normals).
    ratio = ds["param_compute0"].sel(region="us").isel(scenario=1) / ds["param_compute0"].sel(region="us").isel(scenario=0)
    np.testing.assert_allclose(ratio.values, 1.5, rtol=1e-5)
    np.testing.assert_allclose(ds["compute_sample"].isel(scenario=0, time=0).sel(region="europe").values,
                               ds["compute_sample"].isel(scenario=1, time=0).sel(region="europe").values)
    a, b = materialize(short_baseline, n=n, seed=5), materialize(other, n=n, seed=5)
    for spec in OUTPUTS:
        va, vb = series(short_baseline, a, spec.name), series(other, b, spec.name)
        got = ds[f"{spec.name}_p_higher"].isel(compared=0).values
        np.testing.assert_allclose(got, (vb > va).mean(axis=1).reshape(got.shape), atol=1e-12, err_msg=spec.name)
        got = ds[f"{spec.name}_p_equal"].isel(compared=0).values
        np.testing.assert_allclose(got, (vb == va).mean(axis=1).reshape(got.shape), atol=1e-12, err_msg=spec.name)


@pytest.mark.slow
def test_compare_cli_writes_paired_dataset(tmp_path):
    out = tmp_path / "c.nc"
    r = CliRunner().invoke(main, ["compare", "baseline", "moratorium", "-n", "300", "--seed", "1", "-o", str(out),
                                  "--detail"])
    assert r.exit_code == 0, r.output
    assert "P(higher than baseline)" in r.output and "P(>0)" in r.output and "mean" in r.output
    import xarray as xr

    ds = xr.open_dataset(out)
    assert list(ds["scenario"].values) == ["baseline", "moratorium"] and list(ds["compared"].values) == ["moratorium"]
    assert "north_south_ratio_p_higher" in ds and "compute_diff" in ds
    r = CliRunner().invoke(main, ["compare", "baseline", "-n", "10", "-o", str(tmp_path / "x.nc")])
    assert r.exit_code == 2 and not (tmp_path / "x.nc").exists()


def test_summary_and_report_tables_skip_rows_for_other_regions(short_baseline):
    from forecast.present.tables import summary_table
    from forecast.present.report import metrics_table

    ds = forecast.run(short_baseline, n_trajectories=300, seed=1)
    renamed = ds.assign_coords(region=["a", "b", "c", "d", "e"])
    full, partial = summary_table(ds), summary_table(renamed)
    from forecast.present.headline import HEADLINES

    naming = sum("region" in h.sel for h in HEADLINES)
    assert naming >= 4 and partial.row_count == full.row_count - naming  # the rows that name a region
    assert "Global South" not in metrics_table(renamed) and "Inequality" in metrics_table(renamed)


@pytest.mark.slow
def test_paired_differences_are_ratios_only_above_zero_and_exact(short_baseline):
    """A metric with a point mass at zero (a lag) is compared by its plain difference (no
    log of a floored zero: the old -72 "log months"), a strictly positive one by its log
    ratio; each band is the exact order statistic of the paired values."""
    from kernels import RATIO_OUTPUTS

    other = more_us_compute(short_baseline)
    n = 1000
    ds = forecast.compare([short_baseline, other], n_trajectories=n, seed=6)
    a, b = materialize(short_baseline, n=n, seed=6), materialize(other, n=n, seed=6)
    for spec in OUTPUTS:
        va, vb = series(short_baseline, a, spec.name), series(other, b, spec.name)
        ratio = spec.name in RATIO_OUTPUTS
        assert ds[f"{spec.name}_diff"].attrs["difference"] == ("log_ratio" if ratio else "difference")
        if ratio:
            assert np.all(va > 0) and np.all(vb > 0), spec.name
            xa, xb = np.log(va.astype(np.float64)), np.log(vb.astype(np.float64))
        else:
            xa, xb = va.astype(np.float64), vb.astype(np.float64)
        d = (xb - xa).reshape(xa.shape[0], n, -1)
        # The engine subtracts in float32: a few ulps of the larger operand.
        ulps = 4 * np.finfo(np.float32).eps * np.maximum(np.abs(xa), np.abs(xb)).reshape(d.shape).max(axis=1)
        med = ds[f"{spec.name}_diff"].sel(quantile=0.5).isel(compared=0).values.reshape(d.shape[0], -1)
        want = np.sort(d, axis=1)[:, int(np.ceil(0.5 * n)) - 1]  # inverted_cdf
        assert np.all(np.abs(med - want) <= ulps + 1e-30), (spec.name, np.max(np.abs(med - want) - ulps))
    lag = ds["capability_lag_diff"].sel(region="global_south", tier="consumer").isel(compared=0)
    assert np.all(np.abs(lag.values) < 240)  # months, not a log of 1e-30
