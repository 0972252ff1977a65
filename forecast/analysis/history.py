"""Published figures beside the forecast: the observed history of each output a published
series measures, for fan charts.

The mapping is the backtest's (forecast.analysis.backtest, SCORED): the same aggregate the scoring
compares with the same output, so a point on a chart is a point the backtest would score.
- `adoption` and `adoption_observed` (region): the population-weighted mean of the region's
  published country shares (Microsoft's AI user share);
- `compute_observed` (world): the chip designers' published cumulative H100e, summed on the
  dates every designer reports (Epoch AI chip counts);
- `chip_power_observed` (world): their cumulative chip power, in GW;
- `list_price_observed` (world): each released model's blended (3:1) list price.
Token volumes are left out: `tokens_observed` stands for one provider series at a time
(its level is that series'), so no single set of points belongs on its chart.
"""
from __future__ import annotations

from functools import lru_cache

import pandas as pd

# output -> (the selection key its figures are per, or None for the world; legend text)
SOURCES: dict[str, tuple[str | None, str]] = {
    "adoption": ("region", "published AI user share (Microsoft; the region's countries, population-weighted)"),
    "adoption_observed": ("region", "published AI user share (Microsoft; the region's countries, population-weighted)"),
    "compute_observed": (None, "published AI compute stock (Epoch AI chip counts, designers summed)"),
    "chip_power_observed": (None, "published installed AI chip power (Epoch AI chip counts, designers summed)"),
    "list_price_observed": (None, "list prices of released models (blended 3:1 input:output)"),
}
COLUMNS = ["date", "observed"]
EARLIEST = pd.Timestamp("1900-01-01")
LATEST = pd.Timestamp("2200-01-01")


@lru_cache(maxsize=1)
def _shipped() -> pd.DataFrame:
    from priors.usage import shipped

    return shipped()


def observed(name: str, sel: dict | None = None, data: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """The published figures of output `name` at selection `sel` (date, observed), from
    `data` (default: the usage data that ships with the package); None where no published
    series measures the output, or not at that selection."""
    from forecast.analysis import backtest
    if name not in SOURCES:
        return None
    key, _ = SOURCES[name]
    sel = dict(sel or {})
    if key is None and sel or key is not None and set(sel) != {key}:
        return None
    data = _shipped() if data is None else data
    if name in ("adoption", "adoption_observed"):
        rows = backtest.adoption_observations(data, [sel["region"]])
    elif name == "compute_observed":
        rows = backtest.compute_observations(data, LATEST, since=EARLIEST)
    elif name == "chip_power_observed":
        rows = backtest.chip_power_observations(data, LATEST, since=EARLIEST)
    else:
        rows = _prices(data)
    return rows[COLUMNS].sort_values("date").reset_index(drop=True)


def _prices(data: pd.DataFrame) -> pd.DataFrame:
    import numpy as np

    from forecast.analysis.backtest import model_rows
    from forecast.scenario import load

    rows = model_rows(data, load("baseline", calibration="none"), None, "prices", "obs_price")
    return pd.DataFrame({"date": pd.to_datetime(rows["date_parsed"]).to_numpy(),
                         "observed": np.exp(rows["y"].to_numpy(np.float64))})


def label(name: str) -> str:
    """The legend text of output `name`'s published figures."""
    return SOURCES[name][1]
