"""A self-contained HTML report, a folder of figures and a tidy CSV from a results file.

The report embeds its figures as PNG data URIs and its style inline: opening it fetches
nothing from the network.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from forecast.present import plots
from forecast.engine.files import atomic
from forecast.present.findings import findings, shown_band
from forecast.present.headline import CONTEXT, HEADLINES, fmt as _fmt, units_text, years_present
STATS = ("first_low", "first_high", "total_low", "total_high", "first", "total", "variance",  # sensitivity
         "mean", "std", "p_positive", "p_widening", "p_higher", "p_equal")
STYLE = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;
text-align:right;overflow-wrap:anywhere}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}pre{background:#f7f7f7;
padding:.8em;overflow-x:auto;font-size:.85em}img{max-width:100%;margin:1em 0}.note{color:#555;font-size:.9em}"""


def _val(da) -> float:
    return float(np.asarray(da).squeeze())


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def metrics_table(ds: xr.Dataset, scenario=None) -> str:
    """Key metrics at the summary years: median [5%, 95%], mean, P(>0) / P(widening); each
    row has an id (the findings link to it)."""
    years = years_present(ds)
    rows = ["<tr><th>metric</th>" + "".join(f"<th>{y}</th>" for y in years) + "</tr>"]
    pick = {"scenario": scenario} if scenario is not None else {}
    for h in HEADLINES + CONTEXT:
        if not plots.available(ds, h.name, h.sel):
            continue
        units = units_text(ds[h.name].attrs.get("units", ""), h.name)
        cells = []
        for y in years:
            at = dict(h.sel, **pick, time=f"{y}-01")
            band = ds[h.name].sel(at).squeeze()
            q = {float(k): float(v) for k, v in zip(band["quantile"].values, band.values)}
            text = (f"{_fmt(q[0.5])} [{_fmt(q[min(q)])}, {_fmt(q[max(q)])}]<br>mean "
                    f"{_fmt(_val(ds[h.name + '_mean'].sel(at)))}")
            for stat, label in (("p_positive", "P(&gt;0)"), ("p_widening", "P(widening)")):
                if f"{h.name}_{stat}" in ds:
                    text += f"<br>{label} {_val(ds[f'{h.name}_{stat}'].sel(at)):.2f}"
            cells.append(text)
        row_id = f"row-{h.key}" + (f"-{scenario}" if scenario is not None else "")
        rows.append(f"<tr id='{html.escape(row_id)}'><td>{html.escape(h.title)} [{html.escape(units)}]</td>"
                    + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def comparison_table(ds: xr.Dataset) -> str:
    """Per compared scenario and headline metric: P(higher) and P(equal), and the paired
    difference as a reader wants it: "0.28x [0.19, 0.45]" for strictly positive metrics,
    "+3.1 [-2, 5] months" for the others (lags, shares: a point mass at zero)."""
    years = years_present(ds)
    rows = ["<tr><th>metric</th><th>scenario</th>" + "".join(f"<th>{y}</th>" for y in years) + "</tr>"]
    for h in HEADLINES:
        if not plots.available(ds, f"{h.name}_p_higher", h.sel):
            continue
        for other in ds["compared"].values:
            cells = []
            for y in years:
                at = dict(h.sel, compared=other, time=f"{y}-01")
                diff = ds[f"{h.name}_diff"].sel(at).squeeze()
                band = shown_band(ds, h.name, *(_val(diff.sel(quantile=q)) for q in (0.5, 0.05, 0.95)))
                cells.append(f"P(higher) {_val(ds[f'{h.name}_p_higher'].sel(at)):.2f}, "
                             f"P(equal) {_val(ds[f'{h.name}_p_equal'].sel(at)):.2f}<br>paired {html.escape(band)}")
            rows.append(f"<tr id='row-{html.escape(h.key)}-{html.escape(str(other))}'><td>{html.escape(h.title)}</td>"
                        f"<td>{html.escape(str(other))}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _changes(text: str) -> str:
    """The part of a scenario's TOML that changes its base (what follows 'extended by')."""
    parts = text.split("# ---- extended by ")
    return parts[-1].split("\n", 1)[1] if len(parts) > 1 else "(the base scenario itself)"


def sensitivity_section(ds: xr.Dataset) -> str:
    """Tables of the largest total indices per metric (at its default cell) in January of
    the summary years, with first-order indices and intervals."""
    from forecast.analysis.sensitivity import metric_names, top
    from forecast.present.headline import default_cell

    years = years_present(ds)
    conf = float(ds.attrs.get("confidence", 0.95))
    body = [f"<p class='note'>Sobol' indices: the share of a metric's variance (log variance for log-scale "
            f"metrics) due to each group of uncertain inputs alone (first-order) and with all its interactions "
            f"(total), with {conf:.0%} bootstrap intervals; {html.escape(str(ds.attrs.get('n_base_samples')))} base "
            f"samples, {html.escape(str(ds.attrs.get('n_trajectories')))} trajectories; grouping "
            f"{html.escape(str(ds.attrs.get('grouping')))}. See docs/sensitivity.md.</p>"]
    for metric in metric_names(ds):
        cell = default_cell(ds, metric)
        where = f" ({' / '.join(str(v) for v in cell.values())})" if cell else ""
        body.append(f"<h3>{html.escape(metric + where)}</h3>")
        rows = ["<tr><th>rank</th>" + "".join(f"<th>{y}: total [interval]; first-order</th>" for y in years) + "</tr>"]
        tops = [top(ds, metric, dict(cell, time=f"{y}-01"), 8) for y in years]
        for r in range(max((len(t) for t in tops), default=0)):
            cells = []
            for t in tops:
                if r >= len(t):
                    cells.append("")
                    continue
                row = t.iloc[r]
                cells.append(f"{html.escape(str(t.index[r]))}<br>{row.total:.3f} [{row.total_low:.3f}, "
                             f"{row.total_high:.3f}]; {row['first']:.3f}")
            rows.append(f"<tr><td>{r + 1}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        body.append("<table>" + "".join(rows) + "</table>")
    return "\n".join(body)


def changes_table(base_text: str, text: str) -> str:
    """What a scenario changes, as a table: parameter | baseline | scenario | unit | source."""
    import tomllib

    from kernels import SPEC_BY_NAME

    parts = text.split("# ---- extended by ")
    if len(parts) < 2:
        return "<p class='note'>(the base scenario itself)</p>"
    try:
        child = tomllib.loads(parts[-1].split("\n", 1)[1])
        base = tomllib.loads(base_text.split("# ---- extended by ")[0])
    except (tomllib.TOMLDecodeError, IndexError):
        return f"<pre>{html.escape(_changes(text).strip())}</pre>"

    def prior(table: dict) -> str:
        args = ", ".join(f"{k} {v}" for k, v in table.items() if k not in ("doc", "unit", "source", "dist"))
        return f"{table.get('dist', '')}({args})"

    rows = ["<tr><th>parameter</th><th>baseline</th><th>scenario</th><th>unit</th><th>source</th></tr>"]
    for name, table in child.get("params", {}).items():
        was = base.get("params", {}).get(name, {})
        merged = {**was, **table}
        spec = SPEC_BY_NAME.get(name)
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(prior(was))}</td>"
                    f"<td>{html.escape(prior(merged))}</td><td>{html.escape(spec.unit if spec else '')}</td>"
                    f"<td style='text-align:left'>{html.escape(str(table.get('source', was.get('source', ''))))}</td>"
                    "</tr>")
    for key in ("months", "start", "regions", "calibration"):
        if key in child:
            rows.append(f"<tr><td>{key}</td><td>{html.escape(str(base.get(key, '')))}</td>"
                        f"<td>{html.escape(str(child[key]))}</td><td></td><td></td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def findings_html(ds: xr.Dataset) -> str:
    """The findings as a list, each linking to its table row and its figure."""
    items = []
    for f in findings(ds):
        stem = f"fan_{f.headline.key}" if "compared" not in ds.dims else f"diff_{f.scenario}_{f.headline.key}"
        items.append(f"<li>{html.escape(f.text)} <a href='#row-{html.escape(f.anchor)}'>table</a> · "
                     f"<a href='#fig-{html.escape(stem)}'>figure</a></li>")
    if not items:
        return "<p class='note'>No headline metric to state a finding about.</p>"
    return ("<p class='note'>Likelihood terms of the IPCC AR6 scale (virtually certain: P &gt; 0.99; very likely: "
            "&gt; 0.90; likely: &gt; 0.66; about as likely as not: 0.33-0.66; unlikely: &lt; 0.33; very unlikely: "
            "&lt; 0.10), from exact paired probabilities.</p><ul>" + "".join(items) + "</ul>")


def report_html(ds: xr.Dataset) -> str:
    """The page, findings first: findings, key metrics, the comparison, the figures, the
    sensitivity drivers (a sensitivity file), what each scenario changes, and provenance
    last (collapsed)."""
    a = ds.attrs
    names = list(ds["scenario"].values) if "scenario" in ds.dims else [a["scenario"]]
    texts = a.get("scenario_text", "").split("\n# ==== next scenario\n")
    descriptions = a.get("scenario_description", "")
    body = [f"<h1>{html.escape(a.get('title', 'AI access forecast'))}</h1>",
            f"<p class='note'>{html.escape(descriptions)}</p>"]
    if a.get("kind") == "sensitivity":
        body.append("<h2>Sensitivity: what drives each metric</h2>")
        body.append(sensitivity_section(ds))
        names = []  # a sensitivity file has indices, not bands
    else:
        body.append("<h2 id='findings'>Findings</h2>")
        body.append(findings_html(ds))
        body.append("<h2>Key metrics</h2><p class='note'>Median [5%, 95%] over trajectories, the mean, and exact "
                    "probabilities; January of each year.</p>")
    for name in names:
        if len(names) > 1:
            body.append(f"<h3>{html.escape(str(name))}</h3>")
        body.append(metrics_table(ds, name if len(names) > 1 else None))
    if "compared" in ds.dims:
        body.append(f"<h2>Paired comparison against {html.escape(a.get('compared_against', ''))}</h2>"
                    "<p class='note'>The same trajectories under every scenario (common random numbers): "
                    "differences are paired; ratios (\"0.28x\") for metrics above zero in every world, plain "
                    "differences in the metric's units for the others.</p>")
        body.append(comparison_table(ds))
    body.append("<h2>Figures</h2>")
    for stem, fig in plots.all_figures(ds):
        body.append(f"<img id='fig-{html.escape(stem)}' alt='{html.escape(stem)}' src='{_png(fig)}'>")
    body.append("<h2>Scenarios and what they change</h2>")
    for name, text in zip(names or [a.get("scenario", "")], texts + [""] * len(names or [0])):
        body.append(f"<h3>{html.escape(str(name))}</h3>{changes_table(texts[0], text)}")
    body.append("<details><summary><h2 style='display:inline'>Provenance</h2></summary><table>")
    for key in ("engine_version", "scenario", "seed", "n_trajectories", "priors_source", "created", "device",
                "jax_version", "nonfinite_trajectories", "scenario_hash"):
        body.append(f"<tr><td>{key}</td><td style='text-align:left;overflow-wrap:break-word'>"
                    f"{html.escape(str(a.get(key, '')))}</td></tr>")
    body.append("</table></details>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>"
            f"{html.escape(a.get('title', 'AI access forecast'))}</title><style>{STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>")


def _atomic_write(path: Path, write) -> Path:
    with atomic(path) as tmp:
        write(tmp)
    return path


def write_report(ds: xr.Dataset, path) -> Path:
    text = report_html(ds)
    return _atomic_write(Path(path), lambda p: p.write_text(text, encoding="utf-8"))


def write_figures(ds: xr.Dataset, folder, at=None) -> list[Path]:
    """Every standard figure (plots.all_figures; `at`: the distribution views' month) as
    PNG and SVG in `folder`, each written atomically."""
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for stem, fig in plots.all_figures(ds, at):
        for ext in ("png", "svg"):
            out.append(_atomic_write(folder / f"{stem}.{ext}", lambda p: fig.savefig(p, format=ext, dpi=130)))
        plt.close(fig)
    return out


def tidy(ds: xr.Dataset) -> pd.DataFrame:
    """One row per value: variable, statistic (quantile, mean, std, p_...), quantile, the
    variable's own coordinates (scenario, compared, time, region, tier) and value. The
    sample of whole trajectories (`<output>_sample`, `param_<name>`) stays in the netCDF
    file: a table of it would be mostly repeated labels (ds.to_dataframe() reads it)."""
    frames = []
    for name in ds.data_vars:
        if ds[name].dtype.kind not in "fiub" or "sample" in ds[name].dims:
            continue  # labels (a sensitivity file's group members); the sample
        base, stat = name, "quantile"
        for s in STATS:
            if name.endswith("_" + s):
                base, stat = name[: -len(s) - 1], s
                break
        df = ds[name].to_dataframe(name="value").reset_index()
        df["units"] = str(ds[name].attrs.get("units", ""))
        df.insert(0, "statistic", stat)
        df.insert(0, "variable", base)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    cols = ["variable", "statistic", "quantile", "scenario", "compared", "parameter", "time", "region", "tier", "value",
            "units"]
    return out[[c for c in cols if c in out.columns]]


def write_csv(ds: xr.Dataset, path) -> Path:
    df = tidy(ds)
    return _atomic_write(Path(path), lambda p: df.to_csv(p, index=False))


def write_parquet(ds: xr.Dataset, path) -> Path:
    """The tidy table (tidy) as one Parquet file (pyarrow)."""
    df = tidy(ds)
    return _atomic_write(Path(path), lambda p: df.to_parquet(p, index=False))
