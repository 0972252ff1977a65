"""Rolling-origin backtest of the forecast's own outputs.

For each cutoff: the scenario is moved to start at the cutoff's month, the models whose
outputs a published series measures are refitted on the rows dated before the cutoff (the
data then set every parameter "at the start" those outputs depend on), `forecast.run`
runs from that posterior, and each later observation is scored against the run's
observation-level bands (and, to show the difference, its latent bands): inside the 50% and
90% bands, the interval score of the 90% band (Gneiting and Raftery 2007: width plus
2/alpha times the miss; lower is better) and the band's width over its median (sharpness).

Scored series: adoption (`adoption_observed` against the population-weighted regional
aggregate of the published country shares, `ai_user_share`, computed as the model defines
the region: priors.usage.weighted_by_region with the shipped weights; a region of one
country is that country). The other fitted series have no observed counterpart among the
forecast's outputs (docs/model.md: token counts are single providers', prices are list
prices across capabilities, compute estimates are per chip designer since different
dates).
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


def backtest(data: pd.DataFrame, scenario, cutoffs, n_trajectories: int = 4096, seed: int = 0, settings=None,
             progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """One row per scored observation and cutoff (see the module docstring). scenario: a
    Scenario (its hand-set priors; the calibration is redone per cutoff)."""
    import forecast
    from forecast.calibrate import calibrate
    from forecast.scenario import with_calibration, with_start
    from priors.posterior import save

    obs = adoption_observations(data, scenario.regions)
    rows = []
    for cutoff in cutoffs:
        cut = pd.Timestamp(cutoff)
        start = pd.Timestamp(year=cut.year, month=cut.month, day=1)
        later = obs[obs["date"] >= cut].copy()
        if later.empty:
            if progress:
                progress(f"{cut.date()}: no adoption figures after the cutoff; nothing to score")
            continue
        later["month"] = [int(round((d - start).days / 365.25 * 12)) for d in later["date"]]
        sc = with_start(scenario, f"{start.year:04d}-{start.month:02d}", months=int(later["month"].max()) + 1)
        if progress:
            progress(f"{cut.date()}: fitting adoption to the rows before the cutoff")
        idata, fits = calibrate(data, sc, settings, cutoff=cut, models=["adoption"])
        converged = all(f.converged for f in fits.values())
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
            band = ds["adoption_observed"].sel(region=r["region"]).isel(time=r["month"]).values
            latent = ds["adoption"].sel(region=r["region"]).isel(time=r["month"]).values
            y = r["observed"]
            rows.append({
                "cutoff": cut.date(), "model": "adoption", "series": f"adoption[{r['region']}]",
                "date": r["date"].date(), "months_ahead": int(r["month"]), "observed": y,
                "countries": r["countries"], "q05": band[0], "q25": band[1], "median": band[2], "q75": band[3],
                "q95": band[4], "inside50": bool(band[1] <= y <= band[3]), "inside90": bool(band[0] <= y <= band[4]),
                "latent_q05": latent[0], "latent_q95": latent[4],
                "latent_inside90": bool(latent[0] <= y <= latent[4]),
                "interval_score": float(interval_score(y, band[0], band[4])),
                "relative_width": float((band[4] - band[0]) / band[2]), "fit_converged": converged,
            })
    return pd.DataFrame(rows)


def summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Per model and over all: observations, share inside the 50% / 90% observation-level
    bands and the latent 90% band, mean interval score and median relative width."""
    if scores.empty:
        return pd.DataFrame()
    parts = [(m, g) for m, g in scores.groupby("model")] + [("all", scores)]
    return pd.DataFrame([{
        "model": m, "observations": len(g), "inside50": g["inside50"].mean(), "inside90": g["inside90"].mean(),
        "latent_inside90": g["latent_inside90"].mean(), "interval_score": g["interval_score"].mean(),
        "relative_width": g["relative_width"].median(), "fits_converged": bool(g["fit_converged"].all()),
    } for m, g in parts])
