"""(e) Power per H100e of new hardware, and its decline, from cumulative shipments.

Data: Epoch's cumulative_power (MW of chip power) and cumulative_compute_h100e per chip
designer (Nvidia, Google TPU, AMD, Amazon Trainium), quarterly. Between two dates of one
designer, the chip power per H100e of what shipped in between is
    m = 1000 dP / dC   (kW per H100e),
observed at the interval's midpoint t (years from the start). Model:
    log m ~ Normal(a_v - g t, sigma),   sigma ~ HalfNormal(0.3),
    a_v ~ N(log 0.6, 1)   (designer v's chip kW per H100e at the start),
    g = g_power_eff with the scenario's hand-set prior (the forecast's rate at which new
        hardware's power per H100e falls),
    overhead ~ LogNormal(log 1.6, 0.15): facility power over chip power (servers,
        networking, cooling; an assumption the data cannot inform: prior only).
For the forecast:
    kw_per_h100e0 = overhead x sum_v w_v exp(a_v), w_v = v's share of the H100e shipped in
        the last four fitted quarters (the mix of new hardware at the start);
    fleet_kw0 = overhead x (sum_v P_v / sum_v C_v) at the last fitted date (the installed
        fleet Epoch counts: hardware shipped before its series start and retirements are
        left out, as in the compute model);
    g_power_eff = g.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd

from priors.models import CalibrationError, Prepared, Site, lognormal
from priors.models.compute import designer_rows

NAME = "power"
KERNEL_PARAMS = ("kw_per_h100e0", "fleet_kw0", "g_power_eff")
POWER, COMPUTE = "cumulative_power", "cumulative_compute_h100e"
OVERHEAD = (np.log(1.6), 0.15)  # facility / chip power: PUE ~1.1-1.3 x server and network overhead ~1.3-1.5
RECENT_QUARTERS = 4


def prepare(data, ctx) -> Prepared:
    rows = designer_rows(data, [POWER, COMPUTE])
    wide = rows.pivot_table(index=["entity", "date_parsed"], columns="metric", values="value_num", aggfunc="first")
    if POWER not in wide or COMPUTE not in wide:
        raise CalibrationError(f"power: needs both {POWER!r} and {COMPUTE!r} rows for the same designers and dates")
    where = rows.drop_duplicates(["entity", "date_parsed"]).set_index(["entity", "date_parsed"])[["file", "row"]]
    wide = wide.dropna(subset=[POWER, COMPUTE]).reset_index().sort_values(["entity", "date_parsed"])
    out = []
    for entity, g in wide.groupby("entity"):
        g = g.reset_index(drop=True)
        for j in range(1, len(g)):
            d_p = g.loc[j, POWER] - g.loc[j - 1, POWER]
            d_c = g.loc[j, COMPUTE] - g.loc[j - 1, COMPUTE]
            if not (d_p > 0 and d_c > 0):
                f, r = where.loc[(entity, g.loc[j, "date_parsed"])]
                raise CalibrationError(f"power: {f}, row {r}: cumulative {POWER} or {COMPUTE} of {entity!r} does "
                                       f"not increase from {g.loc[j - 1, 'date_parsed'].date()} "
                                       f"(dP {d_p:g} MW, dC {d_c:g} H100e)")
            mid = g.loc[j - 1, "date_parsed"] + (g.loc[j, "date_parsed"] - g.loc[j - 1, "date_parsed"]) / 2
            out.append({"series": entity, "label": entity, "date_parsed": g.loc[j, "date_parsed"], "mid": mid,
                        "d_c": d_c, "y": np.log(1000.0 * d_p / d_c), "power": g.loc[j, POWER],
                        "compute": g.loc[j, COMPUTE]})
    rows = pd.DataFrame(out)
    if rows.empty:
        raise CalibrationError(f"power: no designer has two dated {POWER!r} and {COMPUTE!r} observations")
    rows["t"] = ctx.years(rows["mid"])
    rows["train"] = ctx.train(rows["date_parsed"])
    fit = rows[rows["train"]]
    if fit.empty:
        raise CalibrationError("power: no shipment interval ends before the cutoff")
    series = sorted(set(rows["series"]))
    index = {s: i for i, s in enumerate(series)}
    recent = fit[fit.groupby("series")["date_parsed"].rank(ascending=False) <= RECENT_QUARTERS]
    recent = recent[recent["date_parsed"] > fit["date_parsed"].max() - pd.DateOffset(years=1)]
    mix = recent.groupby("series")["d_c"].sum().reindex(series).fillna(0.0).to_numpy(np.float64)
    last = fit[fit["date_parsed"] == fit.groupby("series")["date_parsed"].transform("max")]
    fleet = float(last["power"].sum() * 1000.0 / last["compute"].sum())  # chip kW per H100e installed
    inputs = {
        "t": jnp.asarray(rows["t"].to_numpy(), jnp.float32),
        "series": jnp.asarray(rows["series"].map(index).to_numpy()),
        "n_series": len(series),
        "mix": jnp.asarray(mix / mix.sum(), jnp.float32),
        "g_prior": ctx.prior("g_power_eff"),
        "y": jnp.asarray(rows["y"].to_numpy(), jnp.float32),
        "train": jnp.asarray(rows["train"].to_numpy()),
    }
    return Prepared(inputs, {"obs": Site(rows, "exp", "chip kW per H100e shipped")},
                    {"series": series, "fleet_chip_kw": fleet})


def model(inputs, observed=True):
    with numpyro.plate("designer", inputs["n_series"]):
        level = numpyro.sample("log_chip_kw0", dist.Normal(jnp.log(0.6), 1.0))
    g = lognormal("g_power_eff", inputs["g_prior"])
    overhead = numpyro.sample("overhead", dist.LogNormal(*OVERHEAD))
    numpyro.deterministic("kw_per_h100e0", overhead * jnp.sum(inputs["mix"] * jnp.exp(level)))
    sigma = numpyro.sample("sigma", dist.HalfNormal(0.3))
    mu = level[inputs["series"]] - g * inputs["t"]
    with numpyro.plate("rows", inputs["t"].shape[0]):
        numpyro.sample("obs", dist.Normal(mu, sigma).mask(inputs["train"]), obs=inputs["y"] if observed else None)


def kernel(samples, prepared, ctx) -> dict:
    overhead = np.asarray(samples["overhead"], np.float64)
    return {"kw_per_h100e0": np.asarray(samples["kw_per_h100e0"], np.float64),
            "fleet_kw0": overhead * prepared.info["fleet_chip_kw"],
            "g_power_eff": np.asarray(samples["g_power_eff"], np.float64)}
