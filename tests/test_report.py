"""Figures, the HTML report, the figure folder and the tidy CSV from a small comparison."""
import re
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

import forecast
from forecast import plots, report
from forecast.cli import main
from forecast.scenario import load, with_months

MONTHS = 30  # reaches 2027-01 and 2028

pytestmark = pytest.mark.slow  # compiles and runs whole comparisons


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    scs = [with_months(load(n, calibration="none"), MONTHS) for n in ("baseline", "moratorium")]
    ds = forecast.compare(scs, n_trajectories=400, seed=1)
    path = tmp_path_factory.mktemp("r") / "c.nc"
    forecast.save(ds, path)
    return ds, path


def test_fan_chart_has_bands_labels_and_units(results):
    ds, _ = results
    fig = plots.fan_chart(ds, "price", {"tier": "consumer"})
    ax = fig.axes[0]
    assert "USD per 1M tokens" in ax.get_ylabel() and ax.get_yscale() == "log"
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"baseline", "moratorium"}
    assert len(ax.collections) == 2  # the 50% band per scenario when several are drawn
    single = plots.fan_chart(ds, "price", {"tier": "consumer"}, scenario="moratorium").axes[0]
    assert len(single.collections) == 3  # 50, 80 and 90% bands


def test_small_multiples_and_difference_chart(results):
    ds, _ = results
    fig = plots.small_multiples(ds, "priced_out")
    assert len(fig.axes) == 5 * 3 and "share of adults" in fig._suptitle.get_text()
    fig = plots.difference_chart(ds, "north_south_ratio", "moratorium")
    ax, ax_p = fig.axes
    assert ax.get_ylabel() == "log ratio to baseline [1]" and ax_p.get_ylabel() == "probability [1]"
    assert "P(higher under moratorium)" in [t.get_text() for t in ax_p.get_legend().get_texts()]


def test_report_is_self_contained(results, tmp_path):
    _, path = results
    out = tmp_path / "report.html"
    r = CliRunner().invoke(main, ["report", str(path), "-o", str(out)])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert "Paired comparison against baseline" in text and "P(higher)" in text and "seed" in text
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
    r = CliRunner().invoke(main, ["report", str(tmp_path / "missing.nc")])
    assert r.exit_code == 2 and "does not exist" in " ".join(r.output.split())
