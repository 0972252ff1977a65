"""The distribution view (forecast.present.plots.distribution) draws exactly the sample and the bands
of a results file: checked on a small hand-made Dataset, so that every number is known."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from forecast.present import plots  # noqa: E402

Q = (0.05, 0.25, 0.5, 0.75, 0.95)


def results(sample, scenarios=None, start="2029-01", months=24):
    """A results-like Dataset of one scalar output, unmet_share (log scale, with zeros)."""
    time = pd.date_range(start, periods=months, freq="MS")
    lead = ("scenario",) if scenarios else ()
    shape = (len(scenarios),) if scenarios else ()
    rng = np.random.default_rng(0)
    bands = np.sort(rng.uniform(0.01, 0.5, shape + (len(Q), months)), axis=-2)
    coords = {"time": time, "quantile": list(Q), "sample": np.arange(sample.shape[-2])}
    if scenarios:
        coords["scenario"] = scenarios
    attrs = {"units": "1", "long_name": "share of wanted tokens not served"}
    return xr.Dataset({
        "unmet_share": (lead + ("quantile", "time"), bands, attrs),
        "unmet_share_sample": (lead + ("sample", "time"), sample, attrs),
    }, coords=coords, attrs={"n_trajectories": 5000, "engine_version": "test"})


def test_the_cdf_steps_through_every_sampled_value_from_the_point_mass_at_zero():
    rng = np.random.default_rng(1)
    x = rng.lognormal(-2.0, 1.0, (40, 24)).astype(np.float32)
    x[:7, 12] = 0.0  # a point mass at zero in January 2030
    x[7, 12] = np.nan  # a non-finite trajectory: left out
    ds = results(x)
    fig = plots.distribution(ds, "unmet_share", 2030)
    ax = fig.axes[0]
    (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("39 whole")]
    assert "(7 at zero)" in line.get_label()
    got_x, got_y = line.get_xdata(), line.get_ydata()
    positive = np.sort(x[8:, 12])
    np.testing.assert_array_equal(got_x, np.concatenate([positive[:1], positive]))
    # Starts at the zeros' share (7 of the 39 finite values), ends at 1, one step a value.
    np.testing.assert_allclose(got_y, np.concatenate([[7 / 39], (7 + np.arange(1, 33)) / 39]))
    assert ax.get_xscale() == "log"
    # The spans are the bands of all trajectories that month; the dashed line their median.
    spans = sorted((p.get_x(), p.get_x() + p.get_width()) for p in ax.patches)
    month = ds["unmet_share"].isel(time=12)
    want = sorted([(float(month.sel(quantile=0.05)), float(month.sel(quantile=0.95))),
                   (float(month.sel(quantile=0.25)), float(month.sel(quantile=0.75)))])
    np.testing.assert_allclose(spans, want)
    (median,) = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert median.get_xdata()[0] == pytest.approx(float(month.sel(quantile=0.5)))
    assert "5,000 trajectories" in " ".join(t.get_text() for t in ax.get_legend().get_texts())


def test_one_cdf_per_scenario_and_nearest_month():
    x = np.stack([np.full((10, 24), 0.1), np.full((10, 24), 0.2)]).astype(np.float32)
    x[1, :, 5] = np.linspace(0.3, 0.4, 10)
    ds = results(x, scenarios=["baseline", "other"])
    fig = plots.distribution(ds, "unmet_share", "2029-06-10")  # nearest month: 2029-06
    lines = [ln for ln in fig.axes[0].get_lines() if "whole" in ln.get_label()]
    assert [ln.get_label().split(":")[0] for ln in lines] == ["baseline", "other"]
    np.testing.assert_allclose(lines[1].get_xdata()[1:], np.linspace(0.3, 0.4, 10), rtol=1e-6)
    assert "2029-06" in fig.axes[0].get_title()


def test_a_file_without_a_sample_and_a_date_outside_the_run_are_clear_errors():
    ds = results(np.ones((5, 24), np.float32) * 0.1)
    with pytest.raises(plots.NoSample, match="--sample N"):
        plots.distribution(ds.drop_vars("unmet_share_sample"), "unmet_share", 2030)
    with pytest.raises(ValueError, match=r"2035 is outside the run \(2029-01 to 2030-12\)"):
        plots.distribution(ds, "unmet_share", 2035)
    stems = [s for s, _ in plots.all_figures(ds)]
    assert "distribution_unmet_share_2030" in stems
    assert not any(s.startswith("distribution") for s, _ in plots.all_figures(ds.drop_vars("unmet_share_sample")))


def test_plot_draws_the_distributions_at_the_month_asked(tmp_path):
    from click.testing import CliRunner

    from forecast.cli import main

    path = tmp_path / "r.nc"
    results(np.full((5, 24), 0.1, np.float32)).to_netcdf(path)
    r = CliRunner().invoke(main, ["plot", str(path), "-o", str(tmp_path / "f"), "--at", "2029-07"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "f" / "distribution_unmet_share_2029-07.png").exists()
    r = CliRunner().invoke(main, ["plot", str(path), "-o", str(tmp_path / "g"), "--at", "2040"])
    assert r.exit_code == 2 and "--at: 2040 is outside the run (2029-01 to 2030-12)" in " ".join(r.output.split())
    r = CliRunner().invoke(main, ["plot", str(path), "-o", str(tmp_path / "g"), "--at", "soon"])
    assert r.exit_code == 2 and "'soon' is not a year or YYYY-MM" in r.output
    assert not (tmp_path / "g").exists()
