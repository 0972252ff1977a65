"""(b) Token-demand growth: provider token volumes, each series with its own scale.

Data: token counts reported by providers (token_volume.csv), converted to tokens a month
(TO_MONTHLY). A series is one (entity, metric): a provider's whole traffic and its API
traffic, or a weekly and a yearly figure, measure different things, so each has its own
level a_s; they share one growth path.

    log y_s(t) = a_s + G(t) + e,   e ~ StudentT(4, 0, sigma)       (robust to odd figures)
    G(t) = integral_0^t g(u) du,   g(u) = d + g_inf + (g_0 - g_inf) 2^(-u / h)
where g_0, g_inf, h are the forecast's enterprise_growth0, enterprise_growth_inf and
enterprise_halflife (priors: the scenario's hand-set ones) and d is the growth the forecast
adds on top of enterprise demand (the price response and the agentic shift; prior from the
scenario's priors: ctx.demand_offset). Data before the start (t < 0) see the faster past
growth that the half-life implies. a_s ~ N(mean log y_s, 5), sigma ~ HalfNormal(0.5).
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd

from priors.models.base import CalibrationError, Prepared, Site, lognormal, rows_of

NAME = "demand"
GROWTH = ("enterprise_growth0", "enterprise_growth_inf", "enterprise_halflife")  # sampled with the scenario's priors
KERNEL_PARAMS = GROWTH + ("tokens_obs_level", "tokens_obs_sd")
DAYS_PER_MONTH = 365.25 / 12
TO_MONTHLY = {  # metric -> factor to tokens per month
    "tokens_processed_per_month": 1.0,
    "tokens_per_month": 1.0,
    "tokens_per_day": DAYS_PER_MONTH,
    "api_tokens_per_day_avg": DAYS_PER_MONTH,
    "tokens_per_week": DAYS_PER_MONTH / 7.0,
    "api_tokens_per_minute": DAYS_PER_MONTH * 24 * 60,
    "tokens_processed_per_quarter": 1.0 / 3.0,
    "tokens_per_year_run_rate": 1.0 / 12.0,
}
MIN_SERIES_WITH_TWO = 1  # at least one series must have two dates to see growth


# The latents the posterior file keeps (priors.posterior.build): units and meaning, and the
# labels of their dims.
LATENTS = {
    "level": ("log(tokens/month)", "each published series' level at the start"),
    "other_growth": ("1/yr", "log growth of the tokens beyond the enterprise curve (the consumer and agentic shift)"),
    "sigma": ("1 (log)", "scale of a published figure's scatter around its series' curve (Student-t, 4 df)"),
}


def labels(prepared) -> dict:
    return {"series": list(prepared.info["series"])}


def prepare(data, ctx) -> Prepared:
    rows = rows_of(data, TO_MONTHLY).copy()
    rows["series"] = rows["entity"] + " / " + rows["metric"]
    rows["t"] = ctx.years(rows["date_parsed"])
    rows["train"] = ctx.train(rows["date_parsed"])
    monthly = rows["value_num"].to_numpy(np.float64) * rows["metric"].map(TO_MONTHLY).to_numpy(np.float64)
    rows["y"] = np.log(monthly)
    fit = rows[rows["train"]]
    if fit.empty or fit.groupby("series")["t"].nunique().max() < 2:
        raise CalibrationError("demand: no token-volume series has two dated observations to fit; "
                               f"metrics used: {', '.join(TO_MONTHLY)}")
    series = sorted(set(rows["series"]))
    index = {s: i for i, s in enumerate(series)}
    mean_y = np.array([rows.loc[rows["series"] == s, "y"].mean() for s in series])
    rows["label"] = rows["series"]
    inputs = {
        "t": jnp.asarray(rows["t"].to_numpy(), jnp.float32),
        "series": jnp.asarray(rows["series"].map(index).to_numpy()),
        "mean_y": jnp.asarray(mean_y, jnp.float32),
        "y": jnp.asarray(rows["y"].to_numpy(), jnp.float32),
        "train": jnp.asarray(rows["train"].to_numpy()),
        "prior": {n: ctx.prior(n) for n in GROWTH},
        "offset": tuple(float(x) for x in ctx.demand_offset),
    }
    return Prepared(inputs, {"obs": Site(rows, "exp", "tokens/month")}, {"series": series, "reference": reference(fit)})


def reference(fit) -> str:
    """The series tokens_observed stands for: the most dated rows among `fit` (the rows
    before the cutoff), ties to the later last figure, then the name."""
    g = fit.groupby("series")["date_parsed"]
    table = pd.DataFrame({"n": g.nunique(), "last": g.max()}).reset_index()
    return str(table.sort_values(["n", "last", "series"], ascending=[False, False, True])["series"].iloc[0])


def cumulative_growth(t, g0, g_inf, halflife):
    """Integral from 0 to t of g_inf + (g0 - g_inf) 2^(-u / halflife)."""
    lam = jnp.log(2.0) / halflife
    return g_inf * t + (g0 - g_inf) * (-jnp.expm1(-lam * t)) / lam


def model(inputs, observed=True):
    p = inputs["prior"]
    g0 = lognormal("enterprise_growth0", p["enterprise_growth0"])
    g_inf = lognormal("enterprise_growth_inf", p["enterprise_growth_inf"])
    h = lognormal("enterprise_halflife", p["enterprise_halflife"])
    mean, sd = inputs["offset"]
    d = numpyro.sample("other_growth", dist.Normal(mean, max(sd, 1e-3)))
    with numpyro.plate("series", inputs["mean_y"].shape[0]):
        a = numpyro.sample("level", dist.Normal(inputs["mean_y"], 5.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(0.5))
    t = inputs["t"]
    mu = a[inputs["series"]] + d * t + cumulative_growth(t, g0, g_inf, h)
    with numpyro.plate("rows", t.shape[0]):
        numpyro.sample("obs", dist.StudentT(4.0, mu, sigma).mask(inputs["train"]),
                       obs=inputs["y"] if observed else None)


def kernel(samples, prepared, ctx) -> dict:
    out = {n: np.asarray(samples[n], np.float64) for n in GROWTH}
    k = prepared.info["series"].index(prepared.info["reference"])
    out["tokens_obs_level"] = np.asarray(samples["level"], np.float64)[:, k]
    out["tokens_obs_sd"] = np.asarray(samples["sigma"], np.float64)
    return out
