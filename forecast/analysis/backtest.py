"""Rolling-origin backtest of the forecast's own outputs.

For each cutoff: the scenario is moved to start at the cutoff's month, the models whose
outputs a published series measures are refitted on the rows dated before the cutoff (the
data then set every parameter "at the start" those outputs depend on), `forecast.engine.run`
runs from that posterior, and each later observation is scored against the run's
observation-level bands (and, to show the difference, its latent bands): inside the 50% and
90% bands, the interval score of the 90% band (Gneiting and Raftery 2007: width plus
2/alpha times the miss; lower is better) and the band's width over its median (sharpness).

Scored series (SCORED):
- adoption: `adoption_observed` against the population-weighted regional aggregate of the
  published country shares, `ai_user_share`, computed as the model defines the region
  (priors.usage.weighted_by_region with the shipped weights; a region of one country is
  that country), refitting the adoption curve and its noise (adoption, adoption_noise);
  and each other published adoption series fitted before the cutoff (Pew, Gallup, CNNIC:
  priors.models.adoption.SURVEYS) against its later figures, from a run whose posterior
  carries that series' level and drift over its country's curve (`adoption_obs_level`,
  `adoption_obs_drift`), as tokens do below;
- compute: the world's stock, `compute_observed` against the sum of the chip designers'
  published cumulative H100e, as the compute model defines the stock;
- chip_power: the world's installed chip power, `chip_power_observed` against the sum of
  the designers' published cumulative chip power (GW), as the power model reads it;
- tokens: each provider series fitted before the cutoff (the demand model's series: one
  entity and metric, in tokens a month), `tokens_observed` against its later figures. The
  output stands for one series, whose fitted start level is the trajectory's
  `tokens_obs_level`: each series is scored from a run whose posterior carries that
  series' level draws (the same rows as every other parameter, so the join is exact);
- prices: each model released after the cutoff (blended 3:1 list price, as the price model
  reads it), `list_price_observed` against its price.
A series is scored at a cutoff only if every model behind it can be fitted to the rows
before the cutoff (forecast.analysis.calibrate.fittable_models).
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Callable

import numpy as np
import pandas as pd

from forecast.scenario import calendar

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
ALPHA = 0.1  # the 90% band's interval score


def adoption_observations(data: pd.DataFrame, regions) -> pd.DataFrame:
    """Published adoption per (date, region): the population-weighted mean of the
    region's country shares on that date (fraction). Columns: date, region, observed,
    countries."""
    from priors.models.adoption_noise import aggregates

    return aggregates(data, regions)


def interval_score(y, lower, upper, alpha=ALPHA):
    """Interval score of a central (1 - alpha) band: width plus 2/alpha times the miss."""
    y, lower, upper = (np.asarray(a, np.float64) for a in (y, lower, upper))
    return (upper - lower) + 2.0 / alpha * (np.maximum(lower - y, 0.0) + np.maximum(y - upper, 0.0))


def compute_observations(data: pd.DataFrame, cutoff, metric: str | None = None, scale: float = 1.0,
                         since=None) -> pd.DataFrame:
    """The world's compute stock as the compute model defines it (the sum of the chip
    designers' published cumulative H100e, each since its own start), on each date from
    `cutoff` (or `since`) on where every designer fitted before the cutoff reports. metric,
    scale: another cumulative designer series (the power model's cumulative_power, MW) and a
    factor on its sum (1e-3: GW). Columns: date, observed, countries (designers summed)."""
    from priors.models.compute import METRIC, designer_rows

    rows = designer_rows(data, [metric or METRIC])
    cut = pd.Timestamp(cutoff)
    fitted = sorted(set(rows.loc[rows["date_parsed"] < cut, "entity"]))
    wide = rows[rows["entity"].isin(fitted)].pivot_table(index="date_parsed", columns="entity", values="value_num",
                                                          aggfunc="first")
    wide = wide[(wide.index >= (cut if since is None else pd.Timestamp(since)))].dropna()
    return pd.DataFrame({"date": pd.to_datetime(wide.index), "region": "world",
                         "observed": wide.sum(axis=1).to_numpy() * scale, "countries": len(fitted)})


def chip_power_observations(data: pd.DataFrame, cutoff, since=None) -> pd.DataFrame:
    """The world's installed AI chip power as the power model reads it: the sum of the
    designers' published cumulative_power, in GW (compute_observations' dates and rule)."""
    from priors.models.power import POWER

    return compute_observations(data, cutoff, metric=POWER, scale=1e-3, since=since)


def model_rows(data: pd.DataFrame, scenario, cutoff, model: str, site: str) -> pd.DataFrame:
    """A model's rows as its fit reads them (series, label, y in model space, train)."""
    from forecast.analysis.calibrate import context
    from priors.models import MODELS

    return MODELS[model].prepare(data, context(scenario, cutoff)).sites[site].rows


def survey_observations(data: pd.DataFrame, scenario, cutoff) -> pd.DataFrame:
    """Each other published adoption series (priors.models.adoption.SURVEYS) fitted before
    `cutoff`: its later figures (fraction). Columns: date, region (its country's), key (the
    series), observed, countries (the series' figures before the cutoff)."""
    from forecast.analysis.calibrate import context
    from priors.models import MODELS
    from priors.usage import region_of

    sites = MODELS["adoption"].prepare(data, context(scenario, cutoff)).sites
    if "obs_survey" not in sites:
        return pd.DataFrame(columns=["date", "region", "key", "observed", "countries"])
    rows = sites["obs_survey"].rows
    before = rows[rows["train"]].groupby("series").size()
    later = rows[~rows["train"]]
    return pd.DataFrame({"date": pd.to_datetime(later["date_parsed"]).to_numpy(),
                         "region": [region_of(c) for c in later["entity"]], "key": later["series"].to_numpy(),
                         "observed": 1.0 / (1.0 + np.exp(-later["y"].to_numpy(np.float64))),
                         "countries": before.reindex(later["series"]).to_numpy()})


def token_observations(data: pd.DataFrame, scenario, cutoff) -> pd.DataFrame:
    """Each provider token series' figures from `cutoff` on, in tokens a month, for the
    series with at least one figure before it (a fitted level). Columns: date, region
    ("world"), key (the series), observed, countries (the series' figures before the
    cutoff)."""
    rows = model_rows(data, scenario, cutoff, "demand", "obs")
    before = rows[rows["train"]].groupby("series").size()
    later = rows[~rows["train"] & rows["series"].isin(before.index)]
    return pd.DataFrame({"date": pd.to_datetime(later["date_parsed"]).to_numpy(), "region": "world",
                         "key": later["series"].to_numpy(), "observed": np.exp(later["y"].to_numpy(np.float64)),
                         "countries": before.reindex(later["series"]).to_numpy()})


def price_observations(data: pd.DataFrame, scenario, cutoff) -> pd.DataFrame:
    """Each model released from `cutoff` on: its blended (3:1) list price in USD per 1M
    tokens. Columns: date, region ("world"), key (the model), observed, countries (1)."""
    rows = model_rows(data, scenario, cutoff, "prices", "obs_price")
    later = rows[~rows["train"]]
    return pd.DataFrame({"date": pd.to_datetime(later["date_parsed"]).to_numpy(), "region": "world",
                         "key": later["label"].astype(str).to_numpy(), "observed": np.exp(later["y"].to_numpy()),
                         "countries": 1})


# Scored series: the models refitted for them, the forecast output (observation-level) and
# its latent counterpart (None: the forecast has no latent band of that quantity), and the
# months between the run's start and the output's time index (adoption, token flows and
# prices at the start of the month, stocks at its end).
SCORED = {
    "adoption": dict(models=("adoption", "adoption_noise"), output="adoption_observed", latent="adoption",
                     end_of_month=False),
    "compute": dict(models=("compute", "power"), output="compute_observed", latent=None, end_of_month=True),
    "chip_power": dict(models=("compute", "power"), output="chip_power_observed", latent=None, end_of_month=True),
    "tokens": dict(models=("demand",), output="tokens_observed", latent=None, end_of_month=False),
    "prices": dict(models=("prices",), output="list_price_observed", latent=None, end_of_month=False),
}


# Each scored series' published figures: (data, scenario, cutoff) -> date, region, key (the
# figure's series within the output), observed, countries.
OBSERVATIONS = {
    "adoption": lambda data, sc, cut: pd.concat(
        [adoption_observations(data, sc.regions).pipe(lambda f: f.assign(key=f["region"])),
         survey_observations(data, sc, cut)], ignore_index=True),
    "compute": lambda data, sc, cut: compute_observations(data, cut).assign(key="world"),
    "chip_power": lambda data, sc, cut: chip_power_observations(data, cut).assign(key="world"),
    "tokens": token_observations,
    "prices": price_observations,
}


def with_token_series(idata, data, scenario, cutoff, series: str):
    """The posterior with tokens_obs_level set to `series`' fitted start level, draw by draw."""
    from forecast.analysis.calibrate import context
    from priors.models import MODELS

    names = MODELS["demand"].prepare(data, context(scenario, cutoff)).info["series"]
    out = idata.copy()  # deep: the fitted file keeps the reference series
    level = out.posterior["demand__level"]
    out.posterior["tokens_obs_level"] = (("chain", "draw"), level.values[..., names.index(series)])
    return out


def with_adoption_series(idata, scenario, series: str):
    """The posterior with adoption_obs_level and adoption_obs_drift set to survey `series`'
    fitted level and drift over its country's curve, draw by draw (the same rows as the
    curve's: the join is exact), listed among the parameters the posterior supplies."""
    from priors.posterior import json_attr

    out = idata.copy()
    post = out.posterior
    i = list(post["adoption__survey"].values).index(series)
    for name, latent in (("adoption_obs_level", "adoption__level"), ("adoption_obs_drift", "adoption__drift")):
        post[name] = (("chain", "draw"), post[latent].values[..., i])
    names = sorted(set(json.loads(post.attrs["kernel_params"])) | {"adoption_obs_level", "adoption_obs_drift"})
    against = dict(json.loads(post.attrs["fitted_against"]),
                   **{n: scenario.params[n] for n in ("adoption_obs_level", "adoption_obs_drift")})
    post.attrs.update(kernel_params=json_attr(names), fitted_against=json_attr(against))
    return out


def _run_key(r):
    """Which run scores observation r: None (the reference series), or (model, series) for
    a token series or an adoption series other than Microsoft's (a key that is not a region)."""
    if r["model"] == "tokens":
        return ("tokens", r["key"])
    if r["model"] == "adoption" and r["key"] != r["region"]:
        return ("adoption", r["key"])
    return None


def backtest(data: pd.DataFrame, scenario, cutoffs, n_trajectories: int = 4096, seed: int = 0, settings=None,
             progress: Callable[[str], None] | None = None, series=tuple(SCORED)) -> pd.DataFrame:
    """One row per scored observation and cutoff (see the module docstring). scenario: a
    Scenario (its hand-set priors; the calibration is redone per cutoff)."""
    from forecast.analysis.calibrate import calibrate
    from forecast.scenario import with_start

    import jax

    say = progress or (lambda message: None)
    rows = []
    for cutoff in cutoffs:
        # Each origin compiles its own programs (other shapes, other months); dropping the
        # last origin's keeps a long rolling origin within the process's memory maps (a
        # five-origin backtest once ran out of them: "LLVM ERROR: Unable to allocate
        # section memory").
        jax.clear_caches()
        cut = pd.Timestamp(cutoff)
        start = pd.Timestamp(year=cut.year, month=cut.month, day=1)
        later = _later(data, scenario, cut, start, series, say)
        if later.empty:
            say(f"{cut.date()}: no published figure after the cutoff maps to a forecast output")
            continue
        models = sorted({m for name in set(later["model"]) for m in SCORED[name]["models"]})
        sc = with_start(scenario, f"{start.year:04d}-{start.month:02d}", months=int(later["month"].max()) + 1)
        say(f"{cut.date()}: fitting {', '.join(models)} to the rows before the cutoff")
        idata, fits = calibrate(data, sc, settings, cutoff=cut, models=models)
        # one run for every output but the other series', one per token series and one per
        # other adoption series (each sets the level its output stands for)
        later["run"] = [_run_key(r) for _, r in later.iterrows()]
        runs = _runs(data, sc, idata, cut, sorted(set(later["run"]), key=lambda k: (k is not None, k or ("", ""))),
                     n_trajectories, seed, say)
        rows += [_row(r, runs[r["run"]], cut, fits) for _, r in later.iterrows()]
    return pd.DataFrame(rows)


def _later(data, scenario, cut, start, series, say) -> pd.DataFrame:
    """The published figures dated on or after the cutoff of every series whose models can
    be fitted before it, each with its forecast month (from `start`)."""
    from forecast.analysis.calibrate import fittable_models

    needed = sorted({m for name in series for m in SCORED[name]["models"]})
    fittable = fittable_models(data, scenario, cut, needed)
    later = []
    for name in series:
        why = [fittable[m] for m in SCORED[name]["models"] if fittable[m]]
        if why:  # nothing to fit before the cutoff: not scored there
            say(f"{cut.date()}: {name} not scored: {why[0]}")
            continue
        obs = OBSERVATIONS[name](data, scenario, cut)
        obs = obs[obs["date"] >= cut].assign(model=name)
        shift = 1 if SCORED[name]["end_of_month"] else 0
        first = f"{start.year:04d}-{start.month:02d}"
        obs["month"] = [calendar.month_of(first, d) - shift for d in obs["date"]]
        later.append(obs[obs["month"] >= 0])
    return pd.concat(later, ignore_index=True) if later else pd.DataFrame()


def _runs(data, sc, idata, cut, run_keys, n_trajectories, seed, say) -> dict:
    """{run key: Dataset}: the forecast from the cutoff's posterior, one run per key (None:
    the fitted posterior; a token or adoption series: the posterior at that series' level)."""
    from forecast.engine.run import run
    from forecast.scenario import with_calibration
    from priors.posterior import save

    runs = {}
    for run_key in run_keys:
        post = (idata if run_key is None else with_token_series(idata, data, sc, cut, run_key[1])
                if run_key[0] == "tokens" else with_adoption_series(idata, sc, run_key[1]))
        fd, path = tempfile.mkstemp(suffix=".nc")
        os.close(fd)
        try:
            save(post, path)
            what = "" if run_key is None else f" ({SCORED[run_key[0]]['output']}: {run_key[1]})"
            say(f"{cut.date()}: running {n_trajectories} trajectories from {sc.start}{what}")
            runs[run_key] = run(with_calibration(sc, path, allow_unconverged=True),
                                n_trajectories=n_trajectories, seed=seed, quantiles=QUANTILES)
        finally:
            os.remove(path)
    return runs


def _row(r, ds, cut, fits) -> dict:
    """One scored figure: its observation-level (and latent) band, inside or not, scores."""
    spec = SCORED[r["model"]]
    pick = (lambda v: v.sel(region=r["region"])) if r["region"] != "world" else (lambda v: v)
    month = int(r["month"])  # a row of mixed columns may carry it as a float
    band = pick(ds[spec["output"]]).isel(time=month).values
    latent = (pick(ds[spec["latent"]]).isel(time=month).values if spec["latent"]
              else np.full(len(QUANTILES), np.nan))
    y = r["observed"]
    return {
        "cutoff": cut.date(), "model": r["model"], "series": f"{r['model']}[{r['key']}]",
        "date": r["date"].date(), "months_ahead": int(r["month"]), "observed": y,
        "countries": r["countries"], "q05": band[0], "q25": band[1], "median": band[2], "q75": band[3],
        "q95": band[4], "inside50": bool(band[1] <= y <= band[3]), "inside90": bool(band[0] <= y <= band[4]),
        "latent_q05": latent[0], "latent_q95": latent[4],
        "latent_inside90": (bool(latent[0] <= y <= latent[4]) if spec["latent"] else np.nan),
        "interval_score": float(interval_score(y, band[0], band[4])),
        "relative_width": float((band[4] - band[0]) / band[2]),
        "fit_converged": all(fits[m].converged for m in spec["models"]),  # the fits behind this output
    }


def summary(scores: pd.DataFrame, by: str = "model") -> pd.DataFrame:
    """Per model (or per `by`: "series") and over all: observations, share inside the 50% /
    90% observation-level bands and the latent 90% band, mean interval score and median
    relative width."""
    if scores.empty:
        return pd.DataFrame()
    parts = [(m, g) for m, g in scores.groupby(by)] + [("all", scores)]
    out = pd.DataFrame([{
        "model": m, "observations": len(g), "inside50": g["inside50"].mean(), "inside90": g["inside90"].mean(),
        "latent_inside90": g["latent_inside90"].astype(float).mean(), "interval_score": g["interval_score"].mean(),
        "relative_width": g["relative_width"].median(), "fits_converged": bool(g["fit_converged"].all()),
        "interval_score_relative": (g["interval_score"] / g["observed"].abs()).mean(),
    } for m, g in parts])
    if scores["model"].nunique() > 1:  # interval scores in different units do not add up
        out.loc[out["model"] == "all", "interval_score"] = np.nan
    return out


def _short(x: float) -> str:
    """A figure as the docs print it: T (1e12) and M (1e6) suffixes, 3 significant digits."""
    if abs(x) >= 1e11:
        v = x / 1e12
        return f"{v:,.0f}T" if v >= 1000 else f"{v:.3g}T"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.3g}M"
    return f"{x:.3g}"


def figure_name(r) -> str:
    """'compute', 'chip power', 'adoption us', 'tokens Google (all surfaces), <metric>'."""
    model = str(r["model"]).replace("_", " ")
    key = str(r["series"])[len(r["model"]) + 1:-1].replace(" / ", ", ")
    return model if key == "world" else f"{model} {key}"


def markdown(scores: pd.DataFrame) -> str:
    """The tables docs/calibration.md shows (`forecast backtest --markdown`): every figure
    but prices (cutoff, figure and months ahead, published, 90% band, inside 50% / 90%),
    prices by cutoff (count, shares inside, the figures outside the 90% band against its
    top or bottom), and the summary per series."""
    yes = {True: "yes", False: "no"}
    out = ["| cutoff | figure | published | 90% observation band | in 50% | in 90% |", "|---|---|---|---|---|---|"]
    for _, r in scores[scores["model"] != "prices"].iterrows():
        out.append(f"| {r['cutoff']} | {figure_name(r)} {str(r['date'])[:7]} ({int(r['months_ahead'])}) | "
                   f"{_short(r['observed'])} | {_short(r['q05'])}-{_short(r['q95'])} | {yes[bool(r['inside50'])]} | "
                   f"{yes[bool(r['inside90'])]} |")
    prices = scores[scores["model"] == "prices"]
    if not prices.empty:
        out += ["", "| cutoff | prices scored | in 50% | in 90% | outside the 90% band (published vs band edge) |",
                "|---|---|---|---|---|"]
        for cutoff, g in prices.groupby("cutoff", sort=True):
            miss = "; ".join(
                f"{str(r['series'])[len('prices['):-1]} {str(r['date'])[:7]} {r['observed']:.3g} vs "
                f"{(r['q95'] if r['observed'] > r['q95'] else r['q05']):.3g}" for _, r in g[~g["inside90"]].iterrows())
            out.append(f"| {cutoff} | {len(g)} | {g['inside50'].mean():.0%} | {g['inside90'].mean():.0%} | {miss} |")
    head = ["| series | figures | in 50% | in 90% | interval score / figure | band width / median | "
            "fits converged |", "|---|---|---|---|---|---|---|"]

    def rows(table):
        return [f"| {r['model']} | {r['observations']} | {r['inside50']:.0%} | {r['inside90']:.0%} | "
                f"{r['interval_score_relative']:.2f} | {r['relative_width']:.2f} | {yes[bool(r['fits_converged'])]} |"
                for _, r in table.iterrows()]

    out += [""] + head + rows(summary(scores))
    adoption = scores[scores["model"] == "adoption"]
    if not adoption.empty:  # each published adoption series apart: Microsoft's regions, each survey
        per = summary(adoption.assign(series=[figure_name(r)[len("adoption "):] for _, r in adoption.iterrows()]),
                      by="series")
        out += ["", "Adoption, series by series:", ""] + head + rows(per.assign(
            model=per["model"].replace({"all": "all adoption"})))
    return "\n".join(out) + "\n"
