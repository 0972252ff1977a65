"""Population weights: each country's working-age population (from the Anthropic
Economic Index release's usage share and usage index), the region table's weights, and
per-region weighted means of country values. `python -m priors.population` writes the
shipped table (priors/data/population.csv) from the shipped data."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from priors.usage import canonical, data_dir, regions, shipped

POPULATION_RELEASE = "2026-04"  # first month of the Anthropic Economic Index release used
POPULATION_METRICS = ("claude_ai_usage_share", "anthropic_ai_usage_index")


def derive_population(data: pd.DataFrame) -> pd.DataFrame:
    """Each country's share of the working-age (15-64) population, from the AI Usage Index.

    The Anthropic Economic Index defines a country's index as its share of Claude.ai usage
    over its share of the working-age population of the countries it publishes, so
    share / index is that population share (%). Both are published to two decimals; the
    relative rounding error of one month's ratio is at most 0.005 / share + 0.005 / index.
    Months of the release from POPULATION_RELEASE on (one definition of the baseline) are
    averaged. Columns: country (canonical spelling), region, north, working_age_share (%),
    months, rounding_error (relative bound of the mean), source_url, source_title."""
    rows = data[data["metric"].isin(POPULATION_METRICS) & (data["date"].astype(str) >= POPULATION_RELEASE)]
    rows = rows.assign(country=canonical(rows["entity"]).to_numpy())
    wide = rows.pivot_table(index=["country", "date"], columns="metric", values="value_num", aggfunc="first")
    wide = wide.dropna()
    wide = wide[(wide[POPULATION_METRICS[0]] > 0) & (wide[POPULATION_METRICS[1]] > 0)]
    share, index = wide[POPULATION_METRICS[0]], wide[POPULATION_METRICS[1]]
    wide = wide.assign(ratio=share / index, error=0.005 / share + 0.005 / index)
    grouped = wide.groupby(level="country")
    out = pd.DataFrame({
        "working_age_share": grouped["ratio"].mean(),
        "months": grouped.apply(lambda g: ";".join(sorted(g.index.get_level_values("date").astype(str)))),
        "rounding_error": grouped["error"].mean(),
    }).reset_index()
    table = regions().drop_duplicates("country").set_index("country")
    out["region"] = out["country"].map(table["region"])
    out["north"] = out["country"].map(table["north"])
    src = rows.drop_duplicates("metric").set_index("metric")
    out["source_url"] = src.loc[POPULATION_METRICS[1], "source_url"] if "source_url" in src else ""
    out["source_title"] = src.loc[POPULATION_METRICS[1], "source_title"] if "source_title" in src else ""
    out["working_age_share"] = out["working_age_share"].round(6)
    out["rounding_error"] = out["rounding_error"].round(4)
    cols = ["country", "region", "north", "working_age_share", "rounding_error", "months", "source_url", "source_title"]
    return out[cols].sort_values("country").reset_index(drop=True)


@lru_cache(maxsize=1)
def population() -> pd.DataFrame:
    """The shipped population table (priors/data/population.csv, made by derive_population
    from the shipped AI Usage Index rows: `python -m priors.population`)."""
    return pd.read_csv(data_dir() / "population.csv", keep_default_na=False,
                       dtype={"country": str, "region": str, "months": str})


def region_weights(weights) -> np.ndarray:
    """A region's country weights, 0 (or NaN) for a country without one; where no country
    has a weight (China, a region of one country) every country counts equally."""
    w = np.nan_to_num(np.asarray(weights, np.float64))
    return w if (w > 0).any() else np.ones_like(w)


def weighted_by_region(values: pd.Series, weights: pd.Series) -> pd.DataFrame:
    """Population-weighted mean of country values per region, as the published regional
    aggregates are computed.

    values: indexed by country (any spelling regions.csv knows); weights: working-age
    population (any unit) indexed by canonical country name. Countries without a weight
    are left out and counted; a region where no country has a weight (China, a region of
    one country) takes the plain mean. Columns: region, value, countries (in the mean),
    unweighted (countries left out), weighting ("population" or "equal")."""
    table = regions()
    names = canonical(values.index)
    region = pd.Series(dict(zip(table["country"], table["region"])))
    frame = pd.DataFrame({"country": names.to_numpy(), "value": values.to_numpy(np.float64)})
    frame["region"] = frame["country"].map(region)
    frame["w"] = frame["country"].map(weights).astype(float)
    unknown = frame["region"].isna()
    if unknown.any():
        raise KeyError(f"unknown country {frame.loc[unknown, 'country'].iloc[0]!r}; add it to priors/data/regions.csv")
    out = []
    for r, g in frame.groupby("region", sort=False):
        w = region_weights(g["w"])
        weighted = bool((np.nan_to_num(g["w"].to_numpy()) > 0).any())
        out.append({"region": r, "value": float(np.average(g["value"], weights=w)), "countries": int((w > 0).sum()),
                    "unweighted": int((w == 0).sum()), "weighting": "population" if weighted else "equal"})
    return pd.DataFrame(out)


if __name__ == "__main__":  # python -m priors.population > priors/data/population.csv
    import sys

    if not sys.argv[1:]:
        derive_population(shipped()).to_csv(sys.stdout, index=False)
    else:
        sys.exit("usage: python -m priors.population > priors/data/population.csv")
