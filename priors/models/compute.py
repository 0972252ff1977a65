"""(d) Compute-stock growth from cumulative accelerator shipments.

Data: Epoch's cumulative_compute_h100e per chip designer (Nvidia, Google TPU, AMD, Amazon
Trainium): H100-equivalents shipped since each series' own start (period_start), so the
series are aligned by their start dates, not summed as given. Owner breakdowns ("Nvidia
chips owned by ...") are parts of the Nvidia series and are left out.

Designer v ships at a rate r_v(t) = exp(l_v + b_v t) H100e a year, so its cumulative since
its start s_v is
    C_v(t) = exp(l_v + b_v s_v) expm1(b_v (t - s_v)) / b_v,
    log C_obs ~ Normal(log C_v(t), sigma),  sigma ~ HalfNormal(0.2)
    b_v ~ N(1, 1) (about 2.7x a year, wide),  l_v ~ N(log(last cumulative of v), 2).
(A hierarchy over four designers would put a funnel in the spread for little gain: their
shipments are fitted independently, and only their sum goes to the forecast.)
The installed stock at the start is S = sum_v C_v(0) (shipments before the series' starts
and retirements are left out; Epoch's series start in 2022-2024) and its log growth rate is
sum_v r_v(0) / S. For the forecast: compute0 = S x each region's share at the start
(ctx.compute_share, from the scenario), growth0 = the stock's growth rate for every region
except china, whose growth the export controls set apart (it keeps its hand-set prior).
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd

from priors.models.base import CalibrationError, Prepared, Site, rows_of

NAME = "compute"
KERNEL_PARAMS = ("compute0", "growth0", "compute_obs_sd")
METRIC = "cumulative_compute_h100e"
NOT_GLOBAL = ("china",)  # regions whose growth0 this model leaves to the scenario


def designer_rows(data, metrics) -> pd.DataFrame:
    """The chip designers' rows of some cumulative metrics (the "... owned by ..." series
    are parts of Nvidia's and are left out)."""
    rows = rows_of(data, list(metrics))
    return rows[~rows["entity"].str.contains(" owned by ", regex=False)].copy()


def cumulative_rows(data, ctx, metric: str, model: str) -> pd.DataFrame:
    """The designers' rows of one cumulative metric, with the series' start `s`, `t`, `train`
    and `y` = log value; refused unless some series has two dated rows before the cutoff."""
    rows = designer_rows(data, [metric])
    if "period_start" in rows:
        start = pd.to_datetime(rows["period_start"], errors="coerce")
    else:
        start = pd.Series(pd.NaT, index=rows.index)
    missing = start.isna()
    if missing.any():
        r = rows[missing].iloc[0]
        raise CalibrationError(f"{model}: {r['file']}, row {r['row']}: a cumulative series needs its "
                               "period_start (the date it counts from)")
    rows["s"] = ctx.years(start)
    rows["t"] = ctx.years(rows["date_parsed"])
    rows["train"] = ctx.train(rows["date_parsed"])
    rows["y"] = np.log(rows["value_num"].to_numpy(np.float64))
    rows["series"] = rows["entity"]
    rows["label"] = rows["entity"]
    fit = rows[rows["train"]]
    if fit.empty or fit.groupby("series")["t"].nunique().max() < 2:
        raise CalibrationError(f"{model}: no {metric!r} series has two dated observations to fit")
    return rows


def curve_inputs(rows) -> dict:
    """Arrays for shipment curves fitted to cumulative rows: each row's designer index, each
    designer's start and largest fitted log value (the centre of its level's prior; all its
    values for a series with none fitted, which is not scored)."""
    series = sorted(set(rows["series"]))
    index = {s: i for i, s in enumerate(series)}
    last = []
    for s in series:
        own = rows[rows["series"] == s]
        last.append((own[own["train"]] if own["train"].any() else own)["y"].max())
    return {
        "series": jnp.asarray(rows["series"].map(index).to_numpy()),
        "start": jnp.asarray([rows.loc[rows["series"] == s, "s"].iloc[0] for s in series], jnp.float32),
        "last": jnp.asarray(last, jnp.float32),
    }


# The latents the posterior file keeps (priors.posterior.build): units and meaning, and the
# labels of their dims.
LATENTS = {
    "growth": ("1/yr", "log growth rate of each designer's shipment rate"),
    "log_rate0": ("log(H100e/yr)", "each designer's shipment rate at the start"),
    "sigma": ("1 (log)", "scatter of a cumulative figure around its designer's curve"),
    "stock0": ("H100e", "the designers' H100e shipped since their series' starts, at the start (the world stock)"),
    "stock_growth0": ("1/yr", "log growth rate of that stock at the start"),
}


def labels(prepared) -> dict:
    return {"designer": sorted(set(prepared.sites["obs"].rows["series"]))}


def prepare(data, ctx) -> Prepared:
    rows = cumulative_rows(data, ctx, METRIC, NAME)
    inputs = {
        "t": jnp.asarray(rows["t"].to_numpy(), jnp.float32),
        **curve_inputs(rows),
        "y": jnp.asarray(rows["y"].to_numpy(), jnp.float32),
        "train": jnp.asarray(rows["train"].to_numpy()),
    }
    return Prepared(inputs, {"obs": Site(rows, "exp", "H100e shipped since the series' start")},
                    {"series": sorted(set(rows["series"]))})


def cumulative(log_rate0, growth, start, t):
    """H100e shipped from `start` to `t` at rate exp(log_rate0 + growth u) a year."""
    x = growth * (t - start)
    safe = jnp.where(jnp.abs(growth) < 1e-6, 1.0, growth)
    ratio = jnp.where(jnp.abs(growth) < 1e-6, t - start, jnp.expm1(x) / safe)
    return jnp.exp(log_rate0 + growth * start) * ratio


def shipment_curves(curve, y, site: str, observed=True, prefix: str = "", sigma: str = "sigma"):
    """One shipment curve per designer, fitted to its cumulative rows (the module docstring):
    curve holds each row's t, series and train and each designer's start and last (from
    cumulative_rows and curve_inputs); y the rows' log values, observed as `site`. Returns
    the designers' summed cumulative at t = 0 and its growth rate there."""
    with numpyro.plate(f"{prefix}designer", curve["start"].shape[0]):
        growth = numpyro.sample(f"{prefix}growth", dist.Normal(1.0, 1.0))
        log_rate = numpyro.sample(f"{prefix}log_rate0", dist.Normal(curve["last"], 2.0))
    total = jnp.sum(cumulative(log_rate, growth, curve["start"], 0.0))
    scale = numpyro.sample(sigma, dist.HalfNormal(0.2))
    s = curve["series"]
    mu = jnp.log(cumulative(log_rate[s], growth[s], curve["start"][s], curve["t"]))
    with numpyro.plate(f"{prefix}rows", curve["t"].shape[0]):
        numpyro.sample(site, dist.Normal(mu, scale).mask(curve["train"]), obs=y if observed else None)
    return total, jnp.sum(jnp.exp(log_rate)) / total


def model(inputs, observed=True):
    total, growth = shipment_curves(inputs, inputs["y"], "obs", observed)
    numpyro.deterministic("stock0", total)
    numpyro.deterministic("stock_growth0", growth)


def kernel(samples, prepared, ctx) -> dict:
    stock = np.asarray(samples["stock0"], np.float64)
    growth = np.asarray(samples["stock_growth0"], np.float64)
    share = np.asarray(ctx.compute_share, np.float64)
    g = np.repeat(growth[:, None], len(ctx.regions), axis=1)
    for r in NOT_GLOBAL:
        if r in ctx.regions:
            g[:, ctx.regions.index(r)] = np.nan
    # the residual sd of a published cumulative estimate: how far a new one scatters
    return {"compute0": stock[:, None] * share[None, :], "growth0": g,
            "compute_obs_sd": np.asarray(samples["sigma"], np.float64)}
