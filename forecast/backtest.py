"""Rolling-origin backtest of the forecast's own outputs.

For each cutoff: the scenario is moved to start at the cutoff's month, the models whose
outputs a published series measures are refitted on the rows dated before the cutoff (the
data then set every parameter "at the start" those outputs depend on), `forecast.run`
runs from that posterior, and each later observation is scored against the run's
observation-level bands (and, to show the difference, its latent bands): inside the 50% and
90% bands, the interval score of the 90% band (Gneiting and Raftery 2007: width plus
2/alpha times the miss; lower is better) and the band's width over its median (sharpness).

Scored series (SCORED): adoption (`adoption_observed` against the population-weighted
regional aggregate of the published country shares, `ai_user_share`, computed as the model
defines the region: priors.usage.weighted_by_region with the shipped weights; a region of
one country is that country) and the world's compute stock (`compute_observed` against the
sum of the chip designers' published cumulative H100e, as the compute model defines the
stock). Token volumes and prices have no observed counterpart among the forecast's outputs
(docs/model.md: token counts are single providers', prices are list prices across
capabilities).
"""
from __future__ import annotations

import os
import tempfile
from typing import Callable

import numpy as np
import pandas as pd

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
ALPHA = 0.1  # the 90% band's interval score


def adoption_observations(data: pd.DataFrame, regions) -> pd.DataFrame:
    """Published adoption per (date, region): the population-weighted mean of the
    region's country shares on that date (fraction). Columns: date, region, observed,
    countries."""
    from priors.models import rows_of
    from priors.models.adoption import METRIC
    from priors.usage import population, weighted_by_region
    from priors.usage import regions as region_table

    rows = rows_of(data, [METRIC])
    rows = rows[rows["entity"].isin(set(region_table()["country"]))]
    weights = population().set_index("country")["working_age_share"]
    out = []
    for date, g in rows.groupby("date_parsed"):
        values = pd.Series(g["value_num"].to_numpy(np.float64) / 100.0, index=g["entity"].to_numpy())
        for _, r in weighted_by_region(values, weights).iterrows():
            if r["region"] in regions:
                out.append({"date": pd.Timestamp(date), "region": r["region"], "observed": r["value"],
                            "countries": int(r["countries"])})
    return pd.DataFrame(out, columns=["date", "region", "observed", "countries"])


def interval_score(y, lower, upper, alpha=ALPHA):
    """Interval score of a central (1 - alpha) band: width plus 2/alpha times the miss."""
    y, lower, upper = (np.asarray(a, np.float64) for a in (y, lower, upper))
    return (upper - lower) + 2.0 / alpha * (np.maximum(lower - y, 0.0) + np.maximum(y - upper, 0.0))


def compute_observations(data: pd.DataFrame, cutoff) -> pd.DataFrame:
    """The world's compute stock as the compute model defines it (the sum of the chip
    designers' published cumulative H100e, each since its own start), on each date from
    `cutoff` on where every designer fitted before the cutoff reports. Columns: date,
    observed, countries (designers summed)."""
    from priors.models.compute import METRIC, designer_rows

    rows = designer_rows(data, [METRIC])
    cut = pd.Timestamp(cutoff)
    fitted = sorted(set(rows.loc[rows["date_parsed"] < cut, "entity"]))
    wide = rows[rows["entity"].isin(fitted)].pivot_table(index="date_parsed", columns="entity", values="value_num",
                                                          aggfunc="first")
    wide = wide[(wide.index >= cut)].dropna()
    return pd.DataFrame({"date": pd.to_datetime(wide.index), "region": "world", "observed": wide.sum(axis=1).to_numpy(),
                         "countries": len(fitted)})


# Scored series: the models refitted for them, the forecast output (observation-level) and
# its latent counterpart (None: the forecast has no latent band of that quantity), and the
# months between the run's start and the output's time index (adoption is at the start of
# the month, stocks at its end).
SCORED = {
    "adoption": dict(models=("adoption",), output="adoption_observed", latent="adoption", end_of_month=False),
    "compute": dict(models=("compute", "power"), output="compute_observed", latent=None, end_of_month=True),
}


def backtest(data: pd.DataFrame, scenario, cutoffs, n_trajectories: int = 4096, seed: int = 0, settings=None,
             progress: Callable[[str], None] | None = None, series=tuple(SCORED)) -> pd.DataFrame:
    """One row per scored observation and cutoff (see the module docstring). scenario: a
    Scenario (its hand-set priors; the calibration is redone per cutoff)."""
    import forecast
    from forecast.calibrate import calibrate
    from forecast.scenario import with_calibration, with_start
    from priors.posterior import save

    adoption = adoption_observations(data, scenario.regions) if "adoption" in series else None
    rows = []
    for cutoff in cutoffs:
        cut = pd.Timestamp(cutoff)
        start = pd.Timestamp(year=cut.year, month=cut.month, day=1)
        later = []
        for name in series:
            if name == "adoption":
                obs = adoption
                if not (obs["date"] < cut).any():  # nothing to fit a level to: not scored
                    continue
            else:
                obs = compute_observations(data, cut)
            obs = obs[obs["date"] >= cut].assign(model=name)
            shift = 1 if SCORED[name]["end_of_month"] else 0
            obs["month"] = [int(round((d - start).days / 365.25 * 12)) - shift for d in obs["date"]]
            later.append(obs[obs["month"] >= 0])
        later = pd.concat(later, ignore_index=True) if later else pd.DataFrame()
        if later.empty:
            if progress:
                progress(f"{cut.date()}: no published figure after the cutoff maps to a forecast output")
            continue
        models = sorted({m for name in set(later["model"]) for m in SCORED[name]["models"]})
        sc = with_start(scenario, f"{start.year:04d}-{start.month:02d}", months=int(later["month"].max()) + 1)
        if progress:
            progress(f"{cut.date()}: fitting {', '.join(models)} to the rows before the cutoff")
        idata, fits = calibrate(data, sc, settings, cutoff=cut, models=models)
        fd, path = tempfile.mkstemp(suffix=".nc")
        os.close(fd)
        try:
            save(idata, path)
            if progress:
                progress(f"{cut.date()}: running {n_trajectories} trajectories from {sc.start}")
            ds = forecast.run(with_calibration(sc, path, allow_unconverged=True), n_trajectories=n_trajectories,
                              seed=seed, quantiles=QUANTILES)
        finally:
            os.remove(path)
        for _, r in later.iterrows():
            spec = SCORED[r["model"]]
            pick = (lambda v: v.sel(region=r["region"])) if r["region"] != "world" else (lambda v: v)
            band = pick(ds[spec["output"]]).isel(time=r["month"]).values
            latent = (pick(ds[spec["latent"]]).isel(time=r["month"]).values if spec["latent"]
                      else np.full(len(QUANTILES), np.nan))
            y = r["observed"]
            rows.append({
                "cutoff": cut.date(), "model": r["model"], "series": f"{r['model']}[{r['region']}]",
                "date": r["date"].date(), "months_ahead": int(r["month"]), "observed": y,
                "countries": r["countries"], "q05": band[0], "q25": band[1], "median": band[2], "q75": band[3],
                "q95": band[4], "inside50": bool(band[1] <= y <= band[3]), "inside90": bool(band[0] <= y <= band[4]),
                "latent_q05": latent[0], "latent_q95": latent[4],
                "latent_inside90": (bool(latent[0] <= y <= latent[4]) if spec["latent"] else np.nan),
                "interval_score": float(interval_score(y, band[0], band[4])),
                "relative_width": float((band[4] - band[0]) / band[2]),
                "fit_converged": all(fits[m].converged for m in spec["models"]),  # the fits behind this output
            })
    return pd.DataFrame(rows)


def summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Per model and over all: observations, share inside the 50% / 90% observation-level
    bands and the latent 90% band, mean interval score and median relative width."""
    if scores.empty:
        return pd.DataFrame()
    parts = [(m, g) for m, g in scores.groupby("model")] + [("all", scores)]
    out = pd.DataFrame([{
        "model": m, "observations": len(g), "inside50": g["inside50"].mean(), "inside90": g["inside90"].mean(),
        "latent_inside90": g["latent_inside90"].astype(float).mean(), "interval_score": g["interval_score"].mean(),
        "relative_width": g["relative_width"].median(), "fits_converged": bool(g["fit_converged"].all()),
        "interval_score_relative": (g["interval_score"] / g["observed"].abs()).mean(),
    } for m, g in parts])
    if scores["model"].nunique() > 1:  # interval scores in different units do not add up
        out.loc[out["model"] == "all", "interval_score"] = np.nan
    return out
