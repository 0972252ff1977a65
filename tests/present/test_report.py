"""Figures, the HTML report, the figure folder and the tidy CSV from a small comparison."""
import re
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

import forecast
from forecast.present import plots, report
from forecast.cli import main
from forecast.scenario import load, with_months

MONTHS = 30  # reaches 2027-01 and 2028

pytestmark = pytest.mark.slow  # compiles and runs whole comparisons


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    scs = [with_months(load(n, calibration="none"), MONTHS) for n in ("baseline", "moratorium", "sovereign_compute")]
    ds = forecast.compare(scs, n_trajectories=400, seed=1)
    path = tmp_path_factory.mktemp("r") / "c.nc"
    forecast.save(ds, path)
    return ds, path


def test_fan_chart_has_bands_labels_and_units(results):
    ds, _ = results
    fig = plots.fan_chart(ds, "price", {"tier": "consumer"})
    ax = fig.axes[0]
    assert "USD per 1M tokens" in ax.get_ylabel() and ax.get_yscale() == "log"
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"baseline", "moratorium", "sovereign_compute"}
    assert len(ax.collections) == 6  # the 90% and 50% bands per scenario when several are drawn
    # The figure's bands are the table's: each fill runs between the dataset's quantiles.
    for k, (name, (lo, hi)) in enumerate((s, b) for s in ds["scenario"].values for b in ((0.05, 0.95), (0.25, 0.75))):
        y = ax.collections[k].get_paths()[0].vertices[:, 1]
        da = ds["price"].sel(tier="consumer", scenario=name)
        for q in (lo, hi):
            assert np.isin(da.sel(quantile=q).values.astype(np.float64), y).all(), (name, q)
    single = plots.fan_chart(ds, "price", {"tier": "consumer"}, scenario="moratorium").axes[0]
    assert len(single.collections) == 3  # 50, 80 and 90% bands


def test_small_multiples_and_difference_chart(results):
    ds, _ = results
    fig = plots.small_multiples(ds, "priced_out", "moratorium")
    title = fig._suptitle.get_text()
    assert len(fig.axes) == 5 * 3 and "share of adults" in title and "[share]" in title and "moratorium" in title
    fig = plots.difference_chart(ds, "north_south_ratio", "moratorium")
    ax, ax_p = fig.axes
    assert ax.get_ylabel() == "ratio to baseline [x]" and ax.get_yscale() == "log"
    assert ax_p.get_ylabel() == "probability [1]"
    lag = plots.difference_chart(ds, "capability_lag", "moratorium", {"region": "global_south", "tier": "consumer"})
    assert lag.axes[0].get_ylabel() == "difference from baseline [months]"
    assert "P(higher under moratorium)" in [t.get_text() for t in ax_p.get_legend().get_texts()]


def test_report_is_self_contained(results, tmp_path):
    _, path = results
    out = tmp_path / "report.html"
    r = CliRunner().invoke(main, ["report", str(path), "-o", str(out)])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert "Paired comparison against baseline" in text and "P(higher)" in text and "seed" in text
    order = [text.index(h) for h in ("id='findings'", "Key metrics", "Paired comparison", "<h2>Figures",
                                      "Scenarios and what they change", "Provenance")]
    assert order == sorted(order)  # findings first, provenance last (collapsed)
    assert "<details><summary>" in text and "<td>moratorium_probability</td>" in text
    findings = re.findall(r"<li>(Under .*?)</li>", text)
    assert len(findings) >= 3 and all(re.search(r"it is (virtually certain|extremely likely|very likely|likely|"
                                                r"about as likely as not|unlikely|very unlikely|extremely unlikely|"
                                                r"exceptionally unlikely) that", f) for f in findings)
    for anchor in re.findall(r"href='#(row-[^']+)'", text):
        assert f"id='{anchor}'" in text, anchor
    for anchor in re.findall(r"href='#(fig-[^']+)'", text):
        assert f"id='{anchor}'" in text, anchor
    # Nothing is fetched: no external src/href (figures are data: URIs, the style is inline).
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", text)
    assert text.count("data:image/png;base64,") >= 6


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (.ci/run does)")
def test_report_renders_in_headless_chromium(results, tmp_path):
    _, path = results
    out = tmp_path / "report.html"
    report.write_report(forecast.run(with_months(load("baseline", calibration="none"), MONTHS),
                                     n_trajectories=300, seed=2), out)
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", "--window-size=1200,1600",
         out.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.exists(), proc.stderr[-2000:]
    log = proc.stderr
    assert "Uncaught" not in log and "CONSOLE" not in log, log[-2000:]
    assert "net::ERR" not in log, log[-2000:]  # no request left the page
    from matplotlib.image import imread

    img = imread(shot)
    assert img.std() > 0.05  # not blank


def test_plot_folder_and_tidy_csv(results, tmp_path):
    ds, path = results
    r = CliRunner().invoke(main, ["plot", str(path), "-o", str(tmp_path / "figs")])
    assert r.exit_code == 0, r.output
    pngs = sorted(p.name for p in (tmp_path / "figs").glob("*.png"))
    assert "fan_north_south_ratio.png" in pngs and any(n.startswith("diff_moratorium_") for n in pngs)
    assert "distribution_north_south_ratio_2028.png" in pngs  # the run's nearest year to 2030
    assert len(list((tmp_path / "figs").glob("*.svg"))) == len(pngs)
    csv = tmp_path / "t.csv"
    r = CliRunner().invoke(main, ["export", str(path), "--csv", str(csv)])
    assert r.exit_code == 0, r.output
    import pandas as pd

    df = pd.read_csv(csv)
    row = df[(df.variable == "access_gini") & (df.statistic == "quantile") & (df.scenario == "moratorium")
             & (df["quantile"] == 0.5)].sort_values("time")
    np.testing.assert_allclose(row["value"].to_numpy(), ds["access_gini"].sel(scenario="moratorium", quantile=0.5))
    assert set(df.statistic) >= {"quantile", "mean", "std", "p_positive", "p_widening", "p_higher", "p_equal"}
    assert not df.variable.str.endswith("_sample").any() and not df.variable.str.startswith("param_").any()
    r = CliRunner().invoke(main, ["report", str(tmp_path / "missing.nc")])
    assert r.exit_code == 2 and "does not exist" in " ".join(r.output.split())


def test_findings_state_the_datasets_probabilities_and_medians(results):
    """Every sentence's probability and paired median are the dataset's, in its words."""
    import math

    from forecast.present.findings import findings, likelihood

    ds, _ = results
    found = findings(ds)
    assert {f.scenario for f in found} == {"moratorium", "sovereign_compute"}
    for f in found:
        at = dict(f.headline.sel, compared=f.scenario, time=f"{f.year}-01")
        p_hi = float(ds[f"{f.headline.name}_p_higher"].sel(at).squeeze())
        p_eq = float(ds[f"{f.headline.name}_p_equal"].sel(at).squeeze())
        p_lo = 1 - p_hi - p_eq
        want = p_eq if p_eq >= 0.5 else max(p_hi, p_lo)
        assert math.isclose(f.probability, want, abs_tol=1e-12) and f"P = {want:.2f}" in f.text, f.text
        assert f"it is {likelihood(want)} that" in f.text
        diff = float(ds[f"{f.headline.name}_diff"].sel(at).sel(quantile=0.5).squeeze())
        shown = math.exp(diff) if ds[f"{f.headline.name}_diff"].attrs["difference"] == "log_ratio" else diff
        assert math.isclose(f.median, shown, rel_tol=1e-12, abs_tol=1e-12)
        if p_eq < 0.5:
            assert ("lower" in f.text or "narrower" in f.text or "shorter" in f.text) == (p_lo > p_hi), f.text
    res = CliRunner().invoke(main, ["report", str(results[1]), "--findings"])
    assert res.exit_code == 0 and res.output.count("\n- ") + res.output.startswith("- ") == len(found)


def test_terminal_summary_fits_80_columns():
    from rich.console import Console

    from forecast.present.tables import compare_table, summary_table

    scs = [load(n, calibration="none") for n in ("baseline", "sovereign_compute")]  # 2027, 2030 and 2035
    ds = forecast.compare(scs, n_trajectories=256, seed=3)
    console = Console(width=80, record=True, force_terminal=False)
    for name in ds["scenario"].values:
        console.print(summary_table(ds, str(name)))
    console.print(compare_table(ds))
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    for name in ds["scenario"].values:
        assert f"{name}: median [5%, 95%]" in text  # names never truncated
    # The widest cells a real run writes (capability-weighted access, 2035) fit too.
    import xarray as xr

    from forecast.present.tables import CELL, band_cell
    from forecast.present.headline import fmt

    for values in ((2.9e5, 6.6e4, 1.2e6), (1.23e15, 4.56e13, 7.89e16), (0.123, 0.0456, 0.789)):  # outputs are >= 0
        da = xr.DataArray([values[1], values[0], values[2]], dims="quantile", coords={"quantile": [0.05, 0.5, 0.95]})
        cell = band_cell(xr.Dataset({"v": da}), "v", {})
        assert len(cell) <= CELL and cell.split(" [")[0] in (fmt(values[0], 2), fmt(values[0], 1)), cell


def test_fan_charts_carry_the_published_figures_that_measure_them(results):
    """History points are the shipped data's own figures (the backtest's aggregates),
    filled before the run's start and hollow after it; outputs no series measures get none."""
    import matplotlib.dates as mdates
    import pandas as pd

    from forecast.analysis import history
    from priors.usage import shipped

    ds, _ = results
    data = shipped()
    # The world's compute: the four designers' cumulative H100e summed where all report,
    # computed here from the raw rows.
    raw = data[(data["metric"] == "cumulative_compute_h100e")
               & data["entity"].isin(["Nvidia", "Google TPU", "AMD", "Amazon Trainium"])]
    wide = raw.pivot_table(index="date_parsed", columns="entity", values="value_num", aggfunc="first").dropna()
    got = history.observed("compute_observed", {}, data)
    np.testing.assert_allclose(got["observed"].to_numpy(), wide.sum(axis=1).to_numpy())
    assert list(pd.to_datetime(got["date"])) == list(pd.to_datetime(wide.index))
    # US adoption: one country, its published shares.
    us = data[(data["metric"] == "ai_user_share") & (data["entity"] == "United States")].sort_values("date_parsed")
    got = history.observed("adoption_observed", {"region": "us"}, data)
    np.testing.assert_allclose(got["observed"].to_numpy(), us["value_num"].to_numpy() / 100.0)
    assert history.observed("power", {"region": "us"}, data) is None
    assert history.observed("compute_observed", {"region": "us"}, data) is None

    # The chart: points at the figures' dates and values, filled before the start.
    start = pd.Timestamp(ds["time"].values[0])
    rows = pd.DataFrame({"date": [start - pd.DateOffset(months=6), start - pd.DateOffset(months=3),
                                  start + pd.DateOffset(months=2)], "observed": [1e6, 2e6, 4e6]})
    rows.attrs["label"] = "published"
    ax = plots.fan_chart(ds, "compute_observed", {}, scenario="baseline", history=rows).axes[0]
    points = [c for c in ax.collections if c.get_offsets().shape[0] and type(c).__name__ == "PathCollection"]
    filled, hollow = points
    np.testing.assert_allclose(filled.get_offsets()[:, 0], mdates.date2num(rows["date"][:2]))
    np.testing.assert_allclose(filled.get_offsets()[:, 1], [1e6, 2e6])
    np.testing.assert_allclose(hollow.get_offsets(), [[mdates.date2num(rows["date"][2]), 4e6]])
    assert hollow.get_facecolors().shape[0] == 0 or hollow.get_facecolors()[0, 3] == 0
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "published" in labels and "published, after the run's start (out of sample)" in labels
    stems = [stem for stem, fig in plots.all_figures(ds) if stem.startswith("history_")]
    assert stems == ["history_adoption_observed_us", "history_adoption_observed_global_south",
                     "history_compute_observed", "history_chip_power_observed", "history_list_price_observed"]
