"""Findings: short sentences in calibrated-likelihood language, generated from a results
file's exact paired probabilities and bands (never typed by hand).

The vocabulary is the IPCC AR6 likelihood scale (Mastrandrea et al. 2010, the IPCC's
guidance note on consistent treatment of uncertainties):

    virtually certain       P > 0.99          exceptionally unlikely   P < 0.01
    extremely likely        P > 0.95          extremely unlikely       P < 0.05
    very likely             P > 0.90          very unlikely            P < 0.10
    likely                  P > 0.66          unlikely                 P < 0.33
    about as likely as not  0.33 <= P <= 0.66

A comparison's sentence says how the compared scenario's value relates to the first's in
the same worlds (common random numbers): "Under sovereign_compute, it is very likely that
the North/South gap in 2030 is narrower than under baseline (P = 0.90; paired median 0.28x
[0.2x, 1x])". The likelihood is of the more probable direction; where the scenarios are
equal in most worlds it says so with P(equal). A single run's
sentences say whether a gap widens from the first month (P(widening)) and where the
headline metrics stand, with P(>0) where zero is possible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

from forecast.present.headline import FINDING_YEARS, HEADLINES, Headline, fmt, units_text, years_present

# (lower bound of P, term): the first whose bound P exceeds; "about as likely as not" between.
SCALE = ((0.99, "virtually certain"), (0.95, "extremely likely"), (0.90, "very likely"), (0.66, "likely"))
UNLIKELY = ((0.01, "exceptionally unlikely"), (0.05, "extremely unlikely"), (0.10, "very unlikely"),
            (0.33, "unlikely"))


def likelihood(p: float) -> str:
    """The IPCC AR6 term for a probability."""
    for bound, term in SCALE:
        if p > bound:
            return term
    for bound, term in UNLIKELY:
        if p < bound:
            return term
    return "about as likely as not"


@dataclass(frozen=True)
class Finding:
    """One sentence and the numbers it states, read from the dataset.

    probability: the probability the likelihood term describes; median, low, high: the
    stated value and its 90% band (for a comparison: the paired ratio or difference, in
    `shown` form); anchor: the id of its table row and figure in the report."""

    text: str
    headline: Headline
    year: int
    scenario: str
    probability: float
    median: float
    low: float
    high: float
    anchor: str


def at(da: xr.DataArray, sel: dict) -> float:
    """One value of a results variable at a selection (labels by dimension)."""
    return float(np.asarray(da.sel(sel)).squeeze())


def band(da: xr.DataArray, sel: dict):
    """(median, 5%, 95%) of a results variable at a selection."""
    return tuple(at(da, dict(sel, quantile=q)) for q in (0.5, 0.05, 0.95))


def is_ratio(ds: xr.Dataset, name: str) -> bool:
    """Whether a paired difference is stored as a log ratio (strictly positive metrics)."""
    return ds[f"{name}_diff"].attrs.get("difference") == "log_ratio"


def shown_difference(ds: xr.Dataset, name: str, value: float) -> str:
    """A paired difference as a reader wants it: "0.28x" for a ratio, "+3.1" for a
    difference (its units: shown_band)."""
    if is_ratio(ds, name):
        return f"{fmt(math.exp(value))}x"
    return f"{'+' if value > 0 else ''}{fmt(value)}"


def shown_band(ds: xr.Dataset, name: str, median: float, low: float, high: float) -> str:
    """"0.28x [0.19x, 0.45x]" for a ratio, "+3.1 [0, +5.2] months" for a difference."""
    text = (f"{shown_difference(ds, name, median)} [{shown_difference(ds, name, low)}, "
            f"{shown_difference(ds, name, high)}]")
    return text if is_ratio(ds, name) else f"{text} {units_text(ds[name].attrs.get('units', ''), name)}"


def _comparison(ds: xr.Dataset, h: Headline, year: int, other: str) -> Finding | None:
    sel = dict(h.sel, compared=other, time=f"{year}-01")
    if f"{h.name}_p_higher" not in ds:
        return None
    p_hi, p_eq = at(ds[f"{h.name}_p_higher"], sel), at(ds[f"{h.name}_p_equal"], sel)
    p_lo = max(0.0, 1.0 - p_hi - p_eq)
    first = ds.attrs.get("compared_against", "the first scenario")
    med, lo, hi = band(ds[f"{h.name}_diff"], sel)
    ratio = is_ratio(ds, h.name)
    shown = [math.exp(v) if ratio else v for v in (med, lo, hi)]
    stated = shown_band(ds, h.name, med, lo, hi)
    anchor = f"{h.key}-{other}"
    if p_eq >= 0.5:
        text = (f"Under {other}, it is {likelihood(p_eq)} that {h.phrase} in {year} is the same as under {first} "
                f"(P = {p_eq:.2f}; {h.higher} with P = {p_hi:.2f}, {h.lower} with P = {p_lo:.2f}).")
        return Finding(text, h, year, other, p_eq, *shown, anchor)
    up = p_hi >= p_lo
    p = p_hi if up else p_lo
    word = h.higher if up else h.lower
    text = (f"Under {other}, it is {likelihood(p)} that {h.phrase} in {year} is {word} than under {first} "
            f"(P = {p:.2f}; paired median {stated}).")
    return Finding(text, h, year, other, p, *shown, anchor)


def _single(ds: xr.Dataset, h: Headline, year: int, scenario: str, pick: dict) -> Finding | None:
    sel = dict(h.sel, **pick, time=f"{year}-01")
    med, lo, hi = band(ds[h.name], sel)
    units = units_text(ds[h.name].attrs.get("units", ""), h.name)
    stated = f"median {fmt(med)} [{fmt(lo)}, {fmt(hi)}] {units}"
    start = str(np.datetime_as_string(ds["time"].values[0], unit="M"))
    if f"{h.name}_p_widening" in ds:
        p = at(ds[f"{h.name}_p_widening"], sel)
        text = (f"In {scenario}, it is {likelihood(p)} that {h.phrase} in {year} is {h.higher} than in {start} "
                f"(P = {p:.2f}; {stated}).")
        return Finding(text, h, year, scenario, p, med, lo, hi, f"{h.key}-{scenario}")
    if f"{h.name}_p_positive" in ds:
        p = at(ds[f"{h.name}_p_positive"], sel)
        if p < 1.0:
            text = (f"In {scenario}, it is {likelihood(p)} that {h.phrase} in {year} is above zero (P(>0) = "
                    f"{p:.2f}; {stated}).")
            return Finding(text, h, year, scenario, p, med, lo, hi, f"{h.key}-{scenario}")
    return None


def findings(ds: xr.Dataset, years=FINDING_YEARS) -> list[Finding]:
    """The findings of a results file: for a comparison, one sentence per compared scenario,
    headline metric and year, strongest first; for a single run (or each scenario of a
    comparison without paired differences) the gaps' widening and the point masses."""
    from forecast.present.plots import available

    out = []
    # The years asked for, or (a short run) the last January simulated.
    years = years_present(ds, years) or years_present(ds, range(1900, 2200))[-1:]
    if "compared" in ds.dims:
        for other in ds["compared"].values:
            found = [f for h in HEADLINES for y in years if available(ds, h.name, h.sel)
                     for f in [_comparison(ds, h, y, str(other))] if f is not None]
            out.extend(sorted(found, key=lambda f: -abs(f.probability - 0.5)))
        return out
    scenario = ds.attrs.get("scenario", "the scenario")
    for h in HEADLINES:
        for y in years:
            if available(ds, h.name, h.sel):
                f = _single(ds, h, y, scenario, {})
                if f is not None:
                    out.append(f)
    return out
