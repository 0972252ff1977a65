"""(c) Fixed-capability price decline and the frontier price level.

Two kinds of data (inference_prices.csv):
1. Epoch's fitted decline factors: for each capability threshold i, the factor f_i by which
   the cheapest price meeting it falls a year, with a 90% interval. Random-effects
   meta-analysis in log space:
       log f_i ~ Normal(D, sqrt(tau^2 + se_i^2)),  se_i = (log upper - log lower) / (2 * 1.645)
   with D = g_hw + g_serve + g_alg, the forecast's decline of a fixed capability's cost
   (docs/model.md), and tau ~ HalfNormal(1.5) the spread between thresholds.
2. Raw prices (USD per 1M tokens, blended 3:1 input:output; list-price pairs are blended the
   same way). The frontier price is the top decile of released models' prices:
       log p_j ~ AsymmetricLaplaceQuantile(log P0 + (g_front - g_hw - g_serve) t_j, s, 0.9)
   whose drift is the forecast's drift of the frontier cost. log P0 ~ N(log 20, 1.5)
   (the top-decile list price at the start), s ~ HalfNormal(1).
g_hw, g_serve, g_alg and g_front have the scenario's hand-set priors; the data pin down
their sums, and the priors share the sums out. To the forecast, besides those:
`list_price0` = P0 and `list_price_scale` = s, so that `list_price_observed` is where a
newly released model's list price falls.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd

from priors.models.base import CalibrationError, Prepared, Site, lognormal, rows_of

NAME = "prices"
RATES = ("g_hw", "g_serve", "g_alg", "g_front")  # sampled with the scenario's priors
KERNEL_PARAMS = RATES + ("list_price0", "list_price_scale")
DECLINE = "price_reduction_factor_per_year"
BLENDED = "blended_price_usd_per_1m_tokens"
LIST_IN, LIST_OUT = "list_price_input_usd_per_1m_tokens", "list_price_output_usd_per_1m_tokens"
Z90 = 1.6448536269514722
FRONTIER_QUANTILE = 0.9


def _declines(data, ctx) -> pd.DataFrame:
    rows = rows_of(data, [DECLINE]).copy()
    lower = pd.to_numeric(rows.get("lower"), errors="coerce")
    upper = pd.to_numeric(rows.get("upper"), errors="coerce")
    ok = (lower > 0) & (upper > lower)
    rows = rows[ok.to_numpy()].copy()  # factors without a 90% interval cannot be weighted
    rows["se"] = (np.log(upper[ok]) - np.log(lower[ok])).to_numpy() / (2 * Z90)
    rows["y"] = np.log(rows["value_num"].to_numpy(np.float64))
    rows["t"] = ctx.years(rows["date_parsed"])
    rows["train"] = ctx.train(rows["date_parsed"])
    rows["series"] = "decline factors"
    rows["label"] = rows["entity"]
    return rows


def _prices(data, ctx) -> pd.DataFrame:
    blended = rows_of(data, [BLENDED])[["date_parsed", "entity", "value_num", "file", "row"]].copy()
    pairs = rows_of(data, [LIST_IN, LIST_OUT])
    wide = pairs.pivot_table(index=["date_parsed", "entity"], columns="metric", values="value_num",
                             aggfunc="first").dropna()
    listed = pd.DataFrame({"date_parsed": wide.index.get_level_values(0), "entity": wide.index.get_level_values(1),
                           "value_num": (3 * wide.get(LIST_IN, np.nan) + wide.get(LIST_OUT, np.nan)).to_numpy() / 4,
                           "file": "list prices", "row": 0})
    rows = pd.concat([blended, listed], ignore_index=True)
    rows = rows[rows["value_num"] > 0].copy()
    rows["y"] = np.log(rows["value_num"].to_numpy(np.float64))
    rows["t"] = ctx.years(rows["date_parsed"])
    rows["train"] = ctx.train(rows["date_parsed"])
    rows["series"] = "prices"
    rows["label"] = rows["entity"]
    return rows.sort_values("date_parsed").reset_index(drop=True)


# The latents the posterior file keeps (priors.posterior.build): units and meaning.
LATENTS = {
    "fixed_capability_decline": ("1/yr", "log rate at which the price of a fixed capability falls (g_hw + g_serve "
                                 "+ g_alg)"),
    "frontier_drift": ("1/yr", "log rate at which the frontier's list price moves (g_front - g_hw - g_serve)"),
    "log_frontier_price0": ("log(USD/1M tokens)", "the frontier's list price at the start"),
    "price_scale": ("1 (log)", "scale of a list price around the frontier's (asymmetric Laplace)"),
    "tau": ("1 (log)", "spread of published declines beyond their own standard errors"),
}


def prepare(data, ctx) -> Prepared:
    declines, prices = _declines(data, ctx), _prices(data, ctx)
    if not declines["train"].any():
        raise CalibrationError(f"prices: no {DECLINE!r} rows with a 90% interval (lower, upper) to fit")
    if prices["train"].sum() < 5:
        raise CalibrationError(f"prices: need at least 5 dated model prices ({BLENDED!r} or list-price pairs), "
                               f"got {int(prices['train'].sum())}")
    inputs = {
        "d_y": jnp.asarray(declines["y"].to_numpy(), jnp.float32),
        "d_se": jnp.asarray(declines["se"].to_numpy(), jnp.float32),
        "d_train": jnp.asarray(declines["train"].to_numpy()),
        "p_t": jnp.asarray(prices["t"].to_numpy(), jnp.float32),
        "p_y": jnp.asarray(prices["y"].to_numpy(), jnp.float32),
        "p_train": jnp.asarray(prices["train"].to_numpy()),
        "prior": {n: ctx.prior(n) for n in RATES},
    }
    sites = {"obs_decline": Site(declines, "exp", "x per year", "d_y"),
             "obs_price": Site(prices, "exp", "USD per 1M tokens", "p_y")}
    return Prepared(inputs, sites, {})


def model(inputs, observed=True):
    g = {n: lognormal(n, inputs["prior"][n]) for n in RATES}
    decline = numpyro.deterministic("fixed_capability_decline", g["g_hw"] + g["g_serve"] + g["g_alg"])
    tau = numpyro.sample("tau", dist.HalfNormal(1.5))
    with numpyro.plate("declines", inputs["d_y"].shape[0]):
        numpyro.sample("obs_decline",
                       dist.Normal(decline, jnp.sqrt(tau**2 + inputs["d_se"] ** 2)).mask(inputs["d_train"]),
                       obs=inputs["d_y"] if observed else None)
    log_p0 = numpyro.sample("log_frontier_price0", dist.Normal(jnp.log(20.0), 1.5))
    drift = numpyro.deterministic("frontier_drift", g["g_front"] - g["g_hw"] - g["g_serve"])
    s = numpyro.sample("price_scale", dist.HalfNormal(1.0))
    with numpyro.plate("prices", inputs["p_y"].shape[0]):
        numpyro.sample("obs_price",
                       dist.AsymmetricLaplaceQuantile(log_p0 + drift * inputs["p_t"], s, FRONTIER_QUANTILE)
                       .mask(inputs["p_train"]),
                       obs=inputs["p_y"] if observed else None)


def kernel(samples, prepared, ctx) -> dict:
    out = {n: np.asarray(samples[n], np.float64) for n in RATES}
    out["list_price0"] = np.exp(np.asarray(samples["log_frontier_price0"], np.float64))
    out["list_price_scale"] = np.asarray(samples["price_scale"], np.float64)
    return out
