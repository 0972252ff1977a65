"""Figures from a results Dataset (matplotlib). Each function takes a Dataset and returns a
Figure; nothing is shown or saved here (`forecast plot` and `forecast report` do that).

One style everywhere: the Okabe-Ito colour-blind-safe palette, fan charts with the 50%,
80% and 90% bands and the median, axes labelled with the variable's long name and units,
log scale for the outputs whose bands are resolved in log space. Fan charts of the outputs
a published series measures carry its figures (forecast.analysis.history): filled before the run's
start (the history the calibration saw), hollow after it (out of sample).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from forecast.present.headline import HEADLINES, units_text
from kernels import OUTPUT_BY_NAME

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
BANDS = ((0.05, 0.95, 0.18), (0.1, 0.9, 0.28), (0.25, 0.75, 0.45))  # (low, high, alpha): 90%, 80%, 50%
COMPARE_BANDS = ((0.05, 0.95, 0.10), (0.25, 0.75, 0.30))  # several scenarios: 90% and 50%, lighter
# (variable, selection, title) drawn by `forecast plot` and `forecast report`: the headlines
KEY_FIGURES = tuple((h.name, h.sel, h.title) for h in HEADLINES)
DISTRIBUTION_YEAR = 2030  # the distribution views' month: January of this year (or of the run's nearest year)
SMALL_MULTIPLES = ("compute", "power", "tokens_per_capita", "priced_out")
# Fan charts with the published figures beside the bands (forecast.analysis.history.SOURCES)
HISTORY_FIGURES = (
    ("adoption_observed", {"region": "us"}, "US adoption: a published figure's band"),
    ("adoption_observed", {"region": "global_south"}, "Global South adoption: a published figure's band"),
    ("compute_observed", {}, "World AI compute stock: a published estimate's band"),
    ("chip_power_observed", {}, "World installed AI chip power: a published estimate's band"),
    ("list_price_observed", {}, "List price of a model released that month"),
)


def available(ds: xr.Dataset, var: str, sel: dict) -> bool:
    """Whether a variable and the labels of a selection exist (custom scenarios may name
    other regions than the built-in figures and tables use)."""
    return var in ds and all(k in ds.coords and v in ds.coords[k].values for k, v in sel.items())


def _plt():
    import matplotlib.pyplot as plt  # the backend is the caller's (Agg when there is no display)

    return plt


def _label(da: xr.DataArray, width: int = 45) -> str:
    import textwrap

    units = units_text(da.attrs.get("units", ""), str(da.name))
    return textwrap.fill(f"{da.attrs.get('long_name', da.name)} [{units}]", width)


def _log(name: str) -> bool:
    base = name[:-5] if name.endswith("_diff") else name
    spec = OUTPUT_BY_NAME.get(base)
    return bool(spec and spec.log_scale and not name.endswith("_diff"))


def _fan(ax, da: xr.DataArray, colour, label=None, bands=BANDS):
    """Draw the bands and median of a (quantile, time) DataArray on ax."""
    t = da["time"].values
    qs = [float(q) for q in da["quantile"].values]
    for lo, hi, alpha in bands:
        if lo in qs and hi in qs:
            ax.fill_between(t, da.sel(quantile=lo).values, da.sel(quantile=hi).values, color=colour, alpha=alpha,
                            linewidth=0, label=f"{int(round((hi - lo) * 100))}% band" if label is None else None)
    ax.plot(t, da.sel(quantile=0.5).values, color=colour, linewidth=1.8, label=label or "median")


def _style(ax, da, name, shown=None):
    """Label, grid and scale; shown: the values drawn (a series zero in every world says
    so instead of zooming into rounding noise)."""
    ax.set_ylabel(_label(da))
    ax.grid(True, alpha=0.3)
    values = (da if shown is None else shown).values
    values = values[np.isfinite(values)]
    if values.size and np.all(values == 0):
        ax.set_ylim(-0.05, 1.0)
        ax.text(0.5, 0.5, "zero in every world", transform=ax.transAxes, ha="center", va="center", fontsize=9,
                color="#555")
    elif _log(name) and values.size and values.min() > 0:
        ax.set_yscale("log")


def fan_chart(ds: xr.Dataset, name: str, sel: dict | None = None, title: str | None = None, scenario=None,
              history=None):
    """Bands (50/80/90%) and median of one variable over time; with a `scenario` dimension,
    one fan per scenario (or only `scenario`). history: published figures to draw beside
    them, a DataFrame (date, observed) as forecast.analysis.history.observed returns, with a
    `label` in its attrs (None: none)."""
    plt = _plt()
    sel = dict(sel or {})
    fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
    da = ds[name].sel(sel)
    if "scenario" in da.dims:
        names = [scenario] if scenario is not None else list(da["scenario"].values)
        # Several scenarios: the 90% and 50% bands (as in the tables) and median of each.
        for i, s in enumerate(names):
            _fan(ax, da.sel(scenario=s), OKABE_ITO[i % len(OKABE_ITO)], label=str(s),
                 bands=COMPARE_BANDS if len(names) > 1 else BANDS)
    else:
        _fan(ax, da, OKABE_ITO[0])
    _style(ax, ds[name], name, da)
    if history is not None and len(history):
        _history(ax, history, np.datetime64(da["time"].values[0]))
    ax.set_xlabel("time")
    ax.set_title(title or _label(ds[name], 70))
    if "scenario" in da.dims and len(da["scenario"]) > 1:
        ax.text(0.99, 0.01, "bands: 90% (light), 50% (dark)", transform=ax.transAxes, ha="right", va="bottom",
                fontsize=7)
    ax.legend(loc="best", fontsize=8)
    return fig


def _history(ax, history, start):
    """Published figures: filled before the run's start, hollow from it on."""
    dates = history["date"].to_numpy("datetime64[ns]")
    values = history["observed"].to_numpy(float)
    before = dates < start
    text = history.attrs.get("label", "published figures")
    if before.any():
        ax.scatter(dates[before], values[before], s=16, color="#000000", zorder=5, label=text)
    if (~before).any():
        ax.scatter(dates[~before], values[~before], s=22, facecolors="none", edgecolors="#000000", zorder=5,
                   label=f"{text}, after the run's start (out of sample)")


def history_chart(ds: xr.Dataset, name: str, sel: dict | None = None, title: str | None = None, data=None):
    """fan_chart of `name` with the published figures that measure it (forecast.analysis.history),
    from `data` (default: the shipped usage data); None where none does."""
    from forecast.analysis import history
    rows = history.observed(name, sel, data)
    if rows is None:
        return None
    rows.attrs["label"] = history.label(name)
    if title is None:
        where = ", ".join(str(v) for v in (sel or {}).values())
        title = f"{ds[name].attrs.get('long_name', name)}{' (' + where + ')' if where else ''}"
    return fan_chart(ds, name, sel, _wrap_title(title + ", with the published figures"), history=rows)


def _wrap_title(text: str, width: int = 70) -> str:
    import textwrap

    return textwrap.fill(text, width)


def small_multiples(ds: xr.Dataset, name: str, scenario=None):
    """One fan chart per region (rows) and tier (columns) of a variable."""
    plt = _plt()
    da = ds[name]
    if "scenario" in da.dims:
        scenario = scenario if scenario is not None else str(da["scenario"].values[0])
        da = da.sel(scenario=scenario)
    rows = list(da["region"].values) if "region" in da.dims else [None]
    cols = list(da["tier"].values) if "tier" in da.dims else [None]
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(3.2 * len(cols) + 1, 2.1 * len(rows) + 0.8),
                             sharex=True, squeeze=False, layout="constrained")
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            sel = {k: v for k, v in (("region", r), ("tier", c)) if v is not None}
            ax = axes[i, j]
            _fan(ax, da.sel(sel), OKABE_ITO[0])
            _style(ax, ds[name], name, da.sel(sel))
            ax.set_ylabel("")
            ax.set_title(" / ".join(str(v) for v in sel.values()), fontsize=9)
            ax.tick_params(labelsize=7)
    fig.suptitle(_label(ds[name]) + (f": {scenario}" if scenario is not None else ""))
    return fig


def difference_chart(ds: xr.Dataset, name: str, compared, sel: dict | None = None):
    """Paired difference against the first scenario (bands) and P(higher) over time."""
    plt = _plt()
    sel = dict(sel or {})
    fig, (ax, ax_p) = plt.subplots(2, 1, figsize=(7.5, 5.6), sharex=True, height_ratios=(2, 1),
                                   layout="constrained")
    diff = ds[f"{name}_diff"].sel(sel).sel(compared=compared)
    against = ds.attrs.get("compared_against", "first")
    if ds[f"{name}_diff"].attrs.get("difference") == "log_ratio":  # read as "x baseline", on a log axis
        _fan(ax, np.exp(diff), OKABE_ITO[1])
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_ylabel(f"ratio to {against} [x]")
    else:
        _fan(ax, diff, OKABE_ITO[1])
        ax.axhline(0.0, color="black", linewidth=0.8)
        units = units_text(ds[name].attrs.get("units", ""), name)
        ax.set_ylabel(f"difference from {against} [{units}]")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    import textwrap

    ax.set_title(textwrap.fill(f"{ds[name].attrs.get('long_name', name)}: {compared} vs {against} (paired)", 70),
                 fontsize=10)
    t = ds["time"].values
    ax_p.plot(t, ds[f"{name}_p_higher"].sel(sel).sel(compared=compared).values, color=OKABE_ITO[0],
              label=f"P(higher under {compared})")
    ax_p.plot(t, ds[f"{name}_p_equal"].sel(sel).sel(compared=compared).values, color=OKABE_ITO[7],
              linestyle="--", label="P(equal)")
    ax_p.set_ylim(-0.02, 1.02)
    ax_p.set_ylabel("probability [1]")
    ax_p.set_xlabel("time")
    ax_p.grid(True, alpha=0.3)
    ax_p.legend(loc="best", fontsize=8)
    return fig


class NoSample(ValueError):
    """A distribution view of a results file that keeps no whole trajectories."""


def month_at(ds: xr.Dataset, when) -> np.datetime64:
    """The run's month nearest to `when` (a year, "YYYY-MM" or a date); a date outside the
    run is a ValueError naming the run's span."""
    import pandas as pd

    t = pd.Timestamp(f"{int(when)}-01-01") if isinstance(when, (int, np.integer)) else pd.Timestamp(str(when))
    times = pd.DatetimeIndex(ds["time"].values)
    if not times[0] - pd.Timedelta(days=31) <= t <= times[-1] + pd.Timedelta(days=31):
        raise ValueError(f"{when} is outside the run ({times[0]:%Y-%m} to {times[-1]:%Y-%m})")
    return np.datetime64(times[np.abs((times - t).days).argmin()], "ns")


def distribution(ds: xr.Dataset, name: str, when=2030, sel: dict | None = None):
    """The distribution of one output at one month: the empirical CDF of the run's sample
    (its first trajectories, kept whole: `--sample`), one step per trajectory, over the
    bands of all the run's trajectories (exact order statistics) as shaded spans, so that
    the two can be read together. With a `scenario` dimension, one CDF per scenario.
    Zeros of a log-scale output (a point mass) are not on the log axis: the CDF starts at
    their share, which the legend states."""
    plt = _plt()
    if f"{name}_sample" not in ds:
        raise NoSample(f"this results file keeps no sample of whole trajectories, so {name}'s distribution cannot "
                       "be drawn; run with --sample N (N > 0)")
    sel = dict(sel or {})
    t = month_at(ds, when)
    da = ds[f"{name}_sample"].sel(sel).sel(time=t)
    bands = ds[name].sel(sel).sel(time=t)
    names = list(da["scenario"].values) if "scenario" in da.dims else [None]
    fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
    log = _log(name) and bool(np.nanmax(da.values) > 0)
    qs = [float(q) for q in bands["quantile"].values]
    for i, s in enumerate(names):
        colour = OKABE_ITO[i % len(OKABE_ITO)]
        x = (da if s is None else da.sel(scenario=s)).values
        x = np.sort(x[np.isfinite(x)])
        b = bands if s is None else bands.sel(scenario=s)
        for lo, hi, alpha in COMPARE_BANDS:
            if lo in qs and hi in qs:
                ax.axvspan(float(b.sel(quantile=lo)), float(b.sel(quantile=hi)), color=colour, alpha=alpha, linewidth=0,
                           label=f"{int(round((hi - lo) * 100))}% band of all {int(ds.attrs['n_trajectories']):,} "
                           "trajectories" if i == 0 else None)
        ax.axvline(float(b.sel(quantile=0.5)), color=colour, linestyle="--", linewidth=1.0)
        zeros = int(np.sum(x == 0)) if log else 0
        shown = x[x > 0] if log else x
        if shown.size:
            cdf = (zeros + np.arange(1, shown.size + 1)) / x.size
            ax.step(np.concatenate([shown[:1], shown]), np.concatenate([[zeros / x.size], cdf]), where="post",
                    color=colour, linewidth=1.6,
                    label=(f"{s}: " if s is not None else "") + f"{x.size} whole trajectories"
                    + (f" ({zeros} at zero)" if zeros else ""))
    if log:
        ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of trajectories at or below")
    ax.set_xlabel(_label(ds[name], 70))
    ax.grid(True, alpha=0.3)
    where = f" ({_cell_text(sel)})" if sel else ""
    ax.set_title(_wrap_title(f"{ds[name].attrs.get('long_name', name)}{where}, {str(t)[:7]}: the sample's CDF "
                             "over all trajectories' bands (dashed: median)"), fontsize=10)
    ax.legend(loc="best", fontsize=8)
    return fig


def _nearest_year(ds: xr.Dataset, year: int) -> int:
    years = sorted(set(ds["time"].dt.year.values.tolist()))
    return min(years, key=lambda y: abs(y - year))


def _cell_text(sel: dict) -> str:
    return " / ".join(str(v) for v in sel.values())


def tornado(ds: xr.Dataset, metric: str, year: int = 2030, sel: dict | None = None, k: int = 10):
    """Total Sobol' indices of a sensitivity file's metric in January of `year`, largest
    first, with their bootstrap intervals; first-order indices as inner bars."""
    from forecast.analysis.sensitivity import top
    from forecast.present.headline import default_cell

    plt = _plt()
    sel = default_cell(ds, metric) if sel is None else dict(sel)
    year = _nearest_year(ds, year)
    df = top(ds, metric, dict(sel, time=f"{year}-01"), k).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(df) + 1.6), layout="constrained")
    y = np.arange(len(df))
    err = np.vstack([df.total - df.total_low, df.total_high - df.total]).clip(0)
    ax.barh(y, df.total, color=OKABE_ITO[0], alpha=0.85, label="total index", xerr=err,
            error_kw={"ecolor": "black", "capsize": 3, "linewidth": 0.9})
    ax.barh(y, df["first"].clip(lower=0), height=0.4, color=OKABE_ITO[1], label="first-order index")
    ax.set_yticks(y, [str(p) for p in df.index])
    ax.set_xlim(0, max(1.0, float(np.nanmax(df.total_high.values)) * 1.05) if len(df) else 1.0)
    ax.set_xlabel("share of the variance [1]")
    ax.grid(True, axis="x", alpha=0.3)
    conf = float(ds.attrs.get("confidence", 0.95))
    scale = ds[f"{metric}_total"].attrs.get("analysis_scale", "")
    where = f" ({_cell_text(sel)})" if sel else ""
    ax.set_title(f"What drives {'log ' if scale == 'log' else ''}{metric}{where}, January {year}\n"
                 f"Sobol' indices, {conf:.0%} bootstrap intervals", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def indices_over_time(ds: xr.Dataset, metric: str, sel: dict | None = None, k: int = 6):
    """Total Sobol' indices of a sensitivity file's metric at every month for the k groups
    with the largest mean total index, with their bootstrap intervals."""
    from forecast.present.headline import default_cell

    plt = _plt()
    sel = default_cell(ds, metric) if sel is None else dict(sel)
    total = ds[f"{metric}_total"].sel(sel)
    order = total.mean("time", skipna=True).fillna(-1.0).values.argsort()[::-1][:k]
    fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
    t = ds["time"].values
    for i, j in enumerate(order):
        name = str(ds["parameter"].values[j])
        colour = OKABE_ITO[i % len(OKABE_ITO)]
        ax.fill_between(t, ds[f"{metric}_total_low"].sel(sel).values[j], ds[f"{metric}_total_high"].sel(sel).values[j],
                        color=colour, alpha=0.2, linewidth=0)
        ax.plot(t, total.values[j], color=colour, linewidth=1.6, label=name)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("total Sobol' index [1]")
    ax.set_xlabel("time")
    ax.grid(True, alpha=0.3)
    where = f" ({_cell_text(sel)})" if sel else ""
    ax.set_title(f"Drivers of {metric}{where} over time (top {len(order)} by mean total index)", fontsize=10)
    ax.legend(loc="best", fontsize=8)
    return fig


def all_figures(ds: xr.Dataset, at=None):
    """(file stem, Figure) for every standard figure of a results file, one at a time (a
    generator: close each figure when done with it). at: the month of the distribution
    views (a year or "YYYY-MM"; default: January of DISTRIBUTION_YEAR, or of the run's
    nearest year)."""
    if ds.attrs.get("kind") == "sensitivity":
        from forecast.analysis.sensitivity import metric_names
        from forecast.present.headline import default_cell

        for metric in metric_names(ds):
            stem = "_".join([metric] + [str(v) for v in default_cell(ds, metric).values()])
            yield f"tornado_{stem}", tornado(ds, metric)
            yield f"indices_{stem}", indices_over_time(ds, metric)
        return
    for name, sel, title in KEY_FIGURES:
        if available(ds, name, sel):
            stem = "_".join([name] + [str(v) for v in sel.values()])
            yield f"fan_{stem}", fan_chart(ds, name, sel, title)
    for name, sel, title in HISTORY_FIGURES:
        if available(ds, name, sel):
            fig = history_chart(ds, name, sel, title)
            if fig is not None:
                yield "history_" + "_".join([name] + [str(v) for v in sel.values()]), fig
    for name in SMALL_MULTIPLES:
        if name in ds:
            for s in (ds["scenario"].values if "scenario" in ds.dims else [None]):
                yield f"regions_{name}" + (f"_{s}" if s is not None else ""), small_multiples(ds, name, s)
    if any(v.endswith("_sample") for v in ds.data_vars):
        when = _nearest_year(ds, DISTRIBUTION_YEAR) if at is None else at
        month = str(month_at(ds, when))[:7]
        for name, sel, _ in KEY_FIGURES:
            if available(ds, f"{name}_sample", sel):
                stem = "_".join([name] + [str(v) for v in sel.values()])
                yield f"distribution_{stem}_{month if at is not None else when}", distribution(ds, name, when, sel)
    if "compared" in ds.dims:
        for other in ds["compared"].values:
            for name, sel, _ in KEY_FIGURES:
                if available(ds, f"{name}_diff", sel):
                    stem = "_".join([name] + [str(v) for v in sel.values()])
                    yield f"diff_{other}_{stem}", difference_chart(ds, name, str(other), sel)
