"""The terminal's tables (rich): the headline summary and the paired comparison, the
Sobol' indices, a fit's diagnostics and what it moved, the backtests. Metrics, years and
number formats come from the headline registry (forecast.present.headline)."""
from __future__ import annotations

from rich import box
from rich.table import Table

from forecast.present.headline import HEADLINES, fmt, years_present
from forecast.present.plots import available

SUMMARY = tuple((h.name, h.sel, h.label) for h in HEADLINES)  # (variable, selection, label)


CELL = 18  # characters of a summary cell: a 14-character label and three cells fit 80 columns


def band_cell(ds, var, at) -> str:
    """"median [lowest, highest quantile]" of one cell, in at most CELL characters: two
    significant digits, or one for the band's ends (then for the median too) where two
    would not fit ("2.9e5 [7e4, 1e6]", "1e15 [5e13, 8e16]")."""
    da = ds[var].sel(at).squeeze()
    q = {float(k): float(v) for k, v in zip(da["quantile"].values, da.values)}
    for mid, ends in ((2, 2), (2, 1), (1, 1)):
        text = f"{fmt(q[0.5], mid)} [{fmt(q[min(q)], ends)}, {fmt(q[max(q)], ends)}]"
        if len(text) <= CELL:
            break
    return text


def summary_table(ds, scenario=None, detail=False) -> Table:
    """Medians and bands of the headline metrics in January of the summary years, one
    "median [5%, 95%]" per cell (fits 80 columns); detail: the mean and, where zero is
    possible, P(>0) on a second line of each cell. scenario: which one, in a comparison."""
    name = scenario or ds.attrs["scenario"]
    qs = [float(q) for q in ds["quantile"].values]
    title = f"{name}: median [{min(qs):.0%}, {max(qs):.0%}]" + ("; mean; P(>0)" if detail else "")
    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    table.add_column("metric", no_wrap=True)  # headline labels are at most 14 characters
    years = years_present(ds)
    for y in years:
        table.add_column(str(y), justify="right", no_wrap=True)
    pick = {"scenario": scenario} if scenario is not None and "scenario" in ds.dims else {}
    for var, sel, label in SUMMARY:
        if not available(ds, var, sel):
            continue
        cells = []
        for y in years:
            at = dict(sel, **pick, time=f"{y}-01")
            cell = band_cell(ds, var, at)
            if detail:
                cell += f"\nmean {fmt(float(ds[f'{var}_mean'].sel(at).squeeze()))}"
                if f"{var}_p_positive" in ds:
                    cell += f"; P(>0) {float(ds[f'{var}_p_positive'].sel(at).squeeze()):.2f}"
            cells.append(cell)
        table.add_row(label, *cells)
    return table


def compare_table(ds) -> Table:
    """P(higher than the first scenario) of the summary metrics, per compared scenario."""
    first = ds.attrs["compared_against"]
    table = Table(title=f"P(higher than {first}) [P(equal)], paired", box=box.SIMPLE_HEAD, padding=(0, 1),
                  pad_edge=False)
    table.add_column("metric", no_wrap=True)
    table.add_column("scenario", no_wrap=True)
    years = years_present(ds)
    for y in years:
        table.add_column(str(y), justify="right", no_wrap=True)
    for var, sel, label in SUMMARY:
        if not available(ds, f"{var}_p_higher", sel):
            continue
        for other in ds["compared"].values:
            cells = []
            for y in years:
                at = dict(sel, compared=other, time=f"{y}-01")
                hi = float(ds[f"{var}_p_higher"].sel(at).squeeze())
                eq = float(ds[f"{var}_p_equal"].sel(at).squeeze())
                cells.append(f"{hi:.2f} [{eq:.2f}]")
            table.add_row(label, str(other), *cells)
    return table


def sensitivity_tables(ds, year, k=8):
    """Per metric (at its default cell): the k largest total indices in January of `year`
    (or the nearest year simulated), with first-order indices and intervals."""
    from rich.markup import escape

    from forecast.analysis.sensitivity import metric_names, top
    from forecast.present.headline import default_cell

    years = sorted(set(ds["time"].dt.year.values.tolist()))
    year = min(years, key=lambda y: abs(y - year))
    conf = float(ds.attrs.get("confidence", 0.95))
    for metric in metric_names(ds):
        cell = default_cell(ds, metric)
        where = "".join(f" {v}" for v in cell.values())
        table = Table(title=f"{metric}{where}, January {year}: Sobol' indices [{conf:.0%} bootstrap interval]")
        for col in ("parameter", "total", "first-order"):
            table.add_column(col, justify="left" if col == "parameter" else "right")
        for name, row in top(ds, metric, dict(cell, time=f"{year}-01"), k).iterrows():
            table.add_row(escape(str(name)), f"{row.total:.3f} [{row.total_low:.3f}, {row.total_high:.3f}]",
                          f"{row['first']:.3f} [{row.first_low:.3f}, {row.first_high:.3f}]")
        yield table


def moved_table(idata, scenario_name) -> Table:
    """What the fit moved: each calibrated entry's hand-set prior against its posterior."""
    from rich.markup import escape

    from forecast.analysis.calibrate import moved
    from forecast.scenario import load

    frame = moved(idata.posterior, load(scenario_name, calibration="none"))
    table = Table(title="what the data moved: median [5%, 95%], hand-set prior -> posterior; shift in prior "
                        "sds; posterior width / prior width")
    for col in ("model", "parameter", "prior", "posterior", "shift", "width"):
        table.add_column(col, justify="left" if col in ("model", "parameter") else "right")
    for _, r in frame.iterrows():
        name = r.parameter + (f"[{r.entry}]" if r.entry else "")
        table.add_row(r.model, escape(name), f"{fmt(r.prior_median)} [{fmt(r.prior_5)}, {fmt(r.prior_95)}]",
                      f"{fmt(r.posterior_median)} [{fmt(r.posterior_5)}, {fmt(r.posterior_95)}]",
                      f"{r['shift']:+.1f}", f"{r.narrowing:.2f}")
    return table


def diagnostics_table(fits) -> Table:
    table = Table(title="NUTS diagnostics (worst over every quantity)")
    for col in ("model", "max r_hat", "min bulk ESS", "min tail ESS", "divergences", "seconds", "verdict"):
        table.add_column(col, justify="right" if col not in ("model", "verdict") else "left")
    for name, f in fits.items():
        d = f.diagnostics
        verdict = "[green]converged[/green]" if f.converged else "[red]" + "; ".join(f.problems[:2]) + "[/red]"
        table.add_row(name, f"{d['max_rhat']:.4f}", f"{d['min_ess_bulk']:.0f}", f"{d['min_ess_tail']:.0f}",
                      str(d["divergences"]), f"{f.seconds:.1f}", verdict)
    return table


def model_backtest_table(idata, cut) -> Table:
    """The model backtest at one cutoff: per model and site, the later observations inside
    the posterior predictive bands."""
    from priors.posterior import coverage, sites

    table = Table(title=f"model backtest: fitted before {cut.date()}, later observations inside the "
                        "posterior predictive bands")
    for col in ("model", "site", "later obs", "inside 50%", "inside 90%", "median 90% width"):
        table.add_column(col, justify="left" if col in ("model", "site") else "right")
    for model, site in sites(idata):
        c = coverage(idata, model, site)
        if c["n"]:
            inverse = idata.observed_data[f"{model}__{site}"].attrs.get("inverse")
            width = f"x{c['width90']:.3g}" if inverse == "exp" else f"{c['width90']:.3g}"
            table.add_row(model, site, str(c["n"]), f"{c['in50']:.0%}", f"{c['in90']:.0%}", width)
    return table


def scores_table(scores) -> Table:
    """One row per scored published figure (forecast.analysis.backtest.backtest's rows)."""
    import pandas as pd

    table = Table(title="forecast backtest: later published figures against the forecast's observation-level "
                        "bands (adoption_observed, compute_observed, chip_power_observed, tokens_observed, list_price_observed); "
                        "'latent': inside the latent band")
    for col in ("cutoff", "series", "figure", "90% band", "50%", "90%", "latent", "score"):
        table.add_column(col, justify="left" if col in ("cutoff", "series") else "right")
    for _, r in scores.iterrows():
        latent = "-" if pd.isna(r.latent_inside90) else ("in" if r.latent_inside90 else "out")
        table.add_row(f"{r.cutoff}", f"{r.series} {r.date}", f"{r.observed:.3g}", f"{r.q05:.3g}-{r.q95:.3g}",
                      "in" if r.inside50 else "out", "in" if r.inside90 else "out", latent, f"{r.interval_score:.3g}")
    return table


def scores_summary_table(scores) -> Table:
    """The forecast backtest's summary per series, against its coverage targets."""
    import pandas as pd

    from forecast.analysis.backtest import summary

    summ = Table(title="forecast backtest summary (targets: 90% band 85-95%, 50% band 40-60%)")
    for col in ("model", "figures", "in 50%", "in 90%", "in latent 90%", "interval score", "score/figure",
                "width/median", "fits converged"):
        summ.add_column(col, justify="left" if col == "model" else "right")
    for _, r in summary(scores).iterrows():
        summ.add_row(r.model, str(r.observations), f"{r.inside50:.0%}", f"{r.inside90:.0%}",
                     "-" if pd.isna(r.latent_inside90) else f"{r.latent_inside90:.0%}",
                     "-" if pd.isna(r.interval_score) else f"{r.interval_score:.3g}",
                     f"{r.interval_score_relative:.2f}", f"{r.relative_width:.2f}",
                     "yes" if r.fits_converged else "[yellow]no[/yellow]")
    return summ
