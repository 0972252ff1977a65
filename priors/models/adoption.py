"""(a) Adoption diffusion per region, hierarchical over countries.

Data: `ai_user_share` (Microsoft AI Diffusion Report: share of the working-age population
using generative AI in a half-year) for every country that priors/data/regions.csv maps to
one of the scenario's regions; aggregates (World, Global North/South) are left out.

Country c in region r follows a logistic with a ceiling, written (like the forecast's
demand.adoption) by its position at the start x_c = logit(a_c(0) / A_c) = -k_c m_c, which
the data pin down far better than the midpoint m_c itself:
    a_c(t) = A_c sigmoid(x_c + k_c t),
    logit A_c = mu_A[r] + tau_A z_A[c],   x_c = mu_x[r] + tau_x z_x[c],
    log k_c = mu_k[r] + tau_k z_k[c]                 (non-centred: z ~ N(0, 1)),
mu_x ~ N(-1.5, 1.5), mu_k ~ N(log 0.4, 0.75), tau_A ~ HalfNormal(0.5),
tau_x ~ HalfNormal(1.5), tau_k ~ HalfNormal(0.5); the typical midpoint is -mu_x / exp(mu_k).
with the deviations switched off in regions of one country (the region is the country).
Ceilings are informed by internet access: mu_A[r] ~ N(logit(internet_r), 0.5), internet_r
from ITU's shares for high-income economies (North), CNNIC's penetration for China and a
wide South value between ITU's low-income share and the world's (INTERNET below).
Likelihood: logit(share) ~ Normal(logit a_c(t), sigma), sigma ~ HalfNormal(0.15).

Other published adoption series (SURVEYS: Pew's US adults who ever used ChatGPT, Gallup's
US employees using AI at work, CNNIC's generative-AI penetration in China) measure the same
diffusion by another definition. Each series s of country c, with a figure before the
cutoff, reads its country's curve shifted by a level and a drift of its own:
    logit(y) ~ Normal(logit a_c(t) + level_s + drift_s t, sigma_survey),
level_s ~ N(0, 1.5), drift_s ~ N(0, 0.5) (logit a year: an "ever used" or "at work" share
need not grow as the monthly-use share does), sigma_survey ~ HalfNormal(0.3). The forecast's
adoption_observed stands for Microsoft's share (adoption_obs_level = adoption_obs_drift =
0); a backtest scores each other series from a run whose posterior carries its level and
drift (forecast.backtest).

For the forecast, region r's curve is the working-age-population-weighted mean of its
countries' curves (priors/data/population.csv), as published regional aggregates are
computed, summarised per draw by a logistic (kernel_curve): adoption0 = the weighted share at
the start, adoption_ceiling = the weighted ceiling (the limit of the weighted mean), and
adoption_rate matched to the weighted mean's level MATCH_YEARS after the start.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import expit, logit

from priors.models.base import CalibrationError, Prepared, Site, rows_of
from priors.population import population, region_weights
from priors.usage import canonical
from priors.usage import regions as region_table

NAME = "adoption"
KERNEL_PARAMS = ("adoption0", "adoption_ceiling", "adoption_rate", "adoption_obs_sd")
METRIC = "ai_user_share"
# Other published adoption series: metric -> what it counts.
SURVEYS = {
    "adults_ever_used_chatgpt": "Pew: US adults who have ever used ChatGPT",
    "employees_using_ai_at_work": "Gallup: US employees using AI at work",
    "genai_user_penetration": "CNNIC: generative-AI users in China (share of the population)",
}
# Internet use (share of population) that centres each region's adoption ceiling.
INTERNET = {
    "us": 0.94, "europe": 0.94, "other_north": 0.94,  # ITU 2025, high-income economies: 94%
    "china": 0.80,  # CNNIC Dec 2025: internet penetration 80.1%
    "global_south": 0.65,  # between ITU low-income (23%) and world (~75%); assumption, wide
}
DEFAULT_INTERNET = 0.75  # ITU 2025 world: "about three-quarters"
TYPICAL = 0.2  # a typical country's share at the start, for centring the ceiling prior
MATCH_YEARS = 5.0  # the regional logistic meets the weighted mean of countries here (2031)


# The latents the posterior file keeps: units and meaning (priors.posterior.build), the
# names of dims without a plate, and the labels of every dim.
LATENTS = {
    "mu_share0": ("1 (logit)", "regional mean of the countries' logit adoption share at the start"),
    "mu_headroom": ("1 (logit)", "regional mean logit of the headroom (ceiling - share) / (1 - share)"),
    "mu_log_rate": ("log(1/yr)", "regional log diffusion rate"),
    "tau_share0": ("1 (logit)", "spread of the countries' logit start shares around their region's mean"),
    "tau_headroom": ("1 (logit)", "spread of the countries' logit headroom around their region's mean"),
    "sigma": ("1 (logit)", "scatter of a country's logit share around its curve"),
    "level": ("1 (logit)", "a survey series' logit level over its country's curve at the start"),
    "drift": ("1/yr (logit)", "a survey series' logit drift over its country's curve"),
    "sigma_survey": ("1 (logit)", "scatter of a survey figure around its series' line"),
    "ceiling": ("share", "regional adoption ceiling (share of the working-age population)"),
}
DIM_NAMES = {"ceiling_dim_0": "region"}


def labels(prepared) -> dict:
    return {"region": list(prepared.info["regions"]), "survey": list(prepared.info["series"])}


def survey_rows(data, countries, ctx):
    """The SURVEYS' rows of the fitted countries whose series has a figure before the
    cutoff: series "<country> / <metric>", y the logit of the share."""
    rows = rows_of(data, list(SURVEYS))
    rows = rows[rows["entity"].isin(countries)].copy()
    share = rows["value_num"].to_numpy(np.float64) / 100.0
    bad = (share <= 0) | (share >= 1)
    if bad.any():
        r = rows[bad].iloc[0]
        raise CalibrationError(f"adoption: {r['file']}, row {r['row']}: share {r['value_num']} % is not within (0, 100)")
    rows = rows.assign(t=ctx.years(rows["date_parsed"]), series=rows["entity"] + " / " + rows["metric"],
                       y=np.log(share) - np.log1p(-share), train=ctx.train(rows["date_parsed"]))
    rows["label"] = rows["series"]
    fitted = set(rows.loc[rows["train"], "series"])
    return rows[rows["series"].isin(fitted)].reset_index(drop=True)


def prepare(data, ctx) -> Prepared:
    table = region_table().set_index("country")["region"]
    rows = rows_of(data, [METRIC])
    rows = rows[rows["entity"].isin(table.index)].copy()
    rows["region"] = rows["entity"].map(table)
    rows = rows[rows["region"].isin(ctx.regions)]
    if rows.empty:
        raise CalibrationError(f"adoption: no {METRIC!r} rows for countries in regions {list(ctx.regions)}")
    share = rows["value_num"].to_numpy(np.float64) / 100.0
    bad = (share <= 0) | (share >= 1)
    if bad.any():
        r = rows[bad].iloc[0]
        raise CalibrationError(f"adoption: {r['file']}, row {r['row']}: share {r['value_num']} % is not within (0, 100)")
    regions = [r for r in ctx.regions if r in set(rows["region"])]
    countries = sorted(set(rows["entity"]))
    c_index = {c: i for i, c in enumerate(countries)}
    r_index = {r: i for i, r in enumerate(regions)}
    region_of_c = np.array([r_index[table[c]] for c in countries])
    n_in_region = np.bincount(region_of_c, minlength=len(regions))
    internet = np.array([INTERNET.get(r, DEFAULT_INTERNET) for r in regions])
    rows = rows.assign(t=ctx.years(rows["date_parsed"]), series=rows["entity"], label=rows["entity"],
                       y=np.log(share) - np.log1p(-share), train=ctx.train(rows["date_parsed"]))
    if not rows["train"].any():
        raise CalibrationError(f"adoption: no {METRIC!r} rows dated before the cutoff {ctx.cutoff.date()} "
                               f"(the first is for {rows['date_parsed'].min().date()})")
    inputs = {
        "t": jnp.asarray(rows["t"].to_numpy(), jnp.float32),
        "country": jnp.asarray(rows["entity"].map(c_index).to_numpy()),
        "region_of_c": jnp.asarray(region_of_c),
        "multi": jnp.asarray((n_in_region[region_of_c] > 1).astype(np.float32)),
        # logit of the headroom (A - s) / (1 - s) that puts a country at share s = TYPICAL
        # at its ceiling A = internet access
        "headroom": jnp.asarray(np.log(internet - TYPICAL) - np.log1p(-internet), jnp.float32),
        "y": jnp.asarray(rows["y"].to_numpy(), jnp.float32),
        "train": jnp.asarray(rows["train"].to_numpy()),
    }
    surveys = survey_rows(data, countries, ctx)
    series = sorted(set(surveys["series"]))
    inputs.update({
        "s_t": jnp.asarray(surveys["t"].to_numpy(), jnp.float32),
        "s_country": jnp.asarray(surveys["entity"].map(c_index).to_numpy(np.int32)),
        "s_series": jnp.asarray(surveys["series"].map({n: i for i, n in enumerate(series)}).to_numpy(np.int32)),
        "y_survey": jnp.asarray(surveys["y"].to_numpy(), jnp.float32),
        "s_train": jnp.asarray(surveys["train"].to_numpy(bool)),
        "s_slots": jnp.zeros(len(series)),  # one per survey series (its shape sizes the plate)
    })
    weights = population().set_index("country")["working_age_share"]
    info = {"regions": regions, "countries": countries, "region_of_c": region_of_c, "series": series,
            "weights": canonical(countries).map(weights).fillna(0.0).to_numpy(np.float64)}
    sites = {"obs": Site(rows, "sigmoid", "share of working-age population")}
    if series:
        sites["obs_survey"] = Site(surveys, "sigmoid", "share (the series' own definition)", key="y_survey")
    return Prepared(inputs, sites, info)


def model(inputs, observed=True):
    n_r = inputs["headroom"].shape[0]
    n_c = inputs["region_of_c"].shape[0]
    with numpyro.plate("region", n_r):
        mu_s = numpyro.sample("mu_share0", dist.Normal(logit(0.2), 1.5))
        mu_v = numpyro.sample("mu_headroom", dist.Normal(inputs["headroom"], 0.7))
        mu_k = numpyro.sample("mu_log_rate", dist.Normal(jnp.log(0.4), 0.75))
    tau_s = numpyro.sample("tau_share0", dist.HalfNormal(1.5))
    tau_v = numpyro.sample("tau_headroom", dist.HalfNormal(0.5))
    r, m = inputs["region_of_c"], inputs["multi"]
    with numpyro.plate("country", n_c):
        # centred: each country's current share is pinned by its own data
        s_c = numpyro.sample("share0", dist.Normal(mu_s[r], tau_s))
        z_v = numpyro.sample("z_headroom", dist.Normal(0.0, 1.0))
    # in a one-country region the country is the region
    log_s = jax.nn.log_sigmoid(jnp.where(m > 0, s_c, mu_s[r]))
    v = expit(mu_v[r] + m * tau_v * z_v)
    log_ceiling = jnp.logaddexp(log_s, jnp.log1p(-jnp.exp(log_s)) + jnp.log(v))  # A = s + (1 - s) v
    position = log_s - log_ceiling - jnp.log(-jnp.expm1(log_s - log_ceiling))  # logit(s / A)
    rate = jnp.exp(mu_k[r])
    s0, v0 = expit(mu_s), expit(mu_v)
    numpyro.deterministic("ceiling", s0 + (1 - s0) * v0)
    def logit_curve(c, t):  # logit(A sigmoid(x + k t)) computed in log space
        log_share = log_ceiling[c] + jax.nn.log_sigmoid(position[c] + rate[c] * t)
        return log_share - jnp.log(-jnp.expm1(log_share))

    sigma = numpyro.sample("sigma", dist.HalfNormal(0.15))
    with numpyro.plate("rows", inputs["t"].shape[0]):
        numpyro.sample("obs", dist.Normal(logit_curve(inputs["country"], inputs["t"]), sigma).mask(inputs["train"]),
                       obs=inputs["y"] if observed else None)
    n_s = inputs["s_slots"].shape[0]
    if n_s:
        with numpyro.plate("survey", n_s):
            level = numpyro.sample("level", dist.Normal(0.0, 1.5))
            drift = numpyro.sample("drift", dist.Normal(0.0, 0.5))
        sigma_s = numpyro.sample("sigma_survey", dist.HalfNormal(0.3))
        s, t = inputs["s_series"], inputs["s_t"]
        with numpyro.plate("survey_rows", t.shape[0]):
            numpyro.sample("obs_survey", dist.Normal(logit_curve(inputs["s_country"], t) + level[s] + drift[s] * t,
                                                     sigma_s).mask(inputs["s_train"]),
                           obs=inputs["y_survey"] if observed else None)


def country_curves(samples, prepared):
    """Per draw and country: (share at the start s, ceiling A, logistic position x, rate k)."""
    from scipy.special import expit as sig

    r = prepared.info["region_of_c"]
    multi = np.asarray(prepared.inputs["multi"], np.float64) > 0
    mu_s = np.asarray(samples["mu_share0"], np.float64)
    s = sig(np.where(multi, np.asarray(samples["share0"], np.float64), mu_s[:, r]))
    v = sig(np.asarray(samples["mu_headroom"], np.float64)[:, r]
            + multi * np.asarray(samples["tau_headroom"], np.float64)[:, None]
            * np.asarray(samples["z_headroom"], np.float64))
    ceiling = s + (1 - s) * v
    x = np.log(s / ceiling) - np.log1p(-s / ceiling)
    k = np.exp(np.asarray(samples["mu_log_rate"], np.float64))[:, r]
    return s, ceiling, x, k


def kernel_curve(s, ceiling, x, k, weights, match=MATCH_YEARS):
    """(a0, A, rate) of the regional logistic for country curves (draws, countries) and
    weights (countries,): a0 and A are the weighted means of the shares at the start and of
    the ceilings; the rate puts the logistic on the weighted mean at `match` years."""
    from scipy.special import expit as sig

    w = np.asarray(weights, np.float64) / np.sum(weights)
    a0, big_a = s @ w, ceiling @ w
    at = (ceiling * sig(x + k * match)) @ w
    # within the clip of the forecast's logistic (demand.logistic): a weighted mean that
    # reaches its ceiling (a very fast draw) gets the fastest rate the logistic can show
    lo, hi = np.clip(a0 / big_a, 1e-6, 1 - 1e-6), np.clip(at / big_a, 1e-6, 1 - 1e-6)
    rate = (np.log(hi) - np.log1p(-hi) - np.log(lo) + np.log1p(-lo)) / match
    return a0, big_a, rate


def kernel(samples, prepared, ctx) -> dict:
    regions = prepared.info["regions"]
    r_of_c, weights = prepared.info["region_of_c"], prepared.info["weights"]
    s, ceiling, x, k = country_curves(samples, prepared)
    out = {name: np.full((s.shape[0], len(ctx.regions)), np.nan)
           for name in ("adoption0", "adoption_ceiling", "adoption_rate")}
    for i, r in enumerate(regions):
        members = np.flatnonzero(r_of_c == i)
        a0, big_a, rate = kernel_curve(s[:, members], ceiling[:, members], x[:, members], k[:, members],
                                       region_weights(weights[members]))
        j = ctx.regions.index(r)
        out["adoption0"][:, j], out["adoption_ceiling"][:, j], out["adoption_rate"][:, j] = a0, big_a, rate
    out["adoption_obs_sd"] = np.asarray(samples["sigma"], np.float64)  # a published share's residual sd
    return out
