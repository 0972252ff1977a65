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
    g_power_eff = g;
    power_overhead = overhead and chip_power_obs_sd = sigma_i (chip_power_observed: the
        installed hardware's draw over the overhead, as a published chip-power figure).

AI power capacity (the forecast's P, summed over regions) follows
    log P(t) = log P0 + G(t),   G(t) = integral_0^t g_inf + (g0 - g_inf) 2^(-u / h) du,
and its two ends are informed separately:
    start rate g0: the growth of installed chip power at the start. Each designer's
        cumulative_power is fitted with model (d)'s shipment curve (chip power shipped at
        exp(l_v + b_v t) MW a year, cumulative since its series' start s_v):
        log Cp_obs ~ Normal(log Cp_v(t), sigma_i), b_v ~ N(1, 1), l_v ~ N(log last Cp_v, 2),
        sigma_i ~ HalfNormal(0.2); g0 = sum_v exp(l_v) / sum_v Cp_v(0). Capacity keeps
        its headroom over the draw, so it grows as the installed draw does.
    slowdown h and g_inf (the scenario's hand-set priors): the IEA's projection of
        data-centre electricity in 2030, entered as a noisy measurement of the 2030 level
        (PROJECTION: a projection, not data; a backtest with a cutoff before its
        publication leaves it out, and h and g_inf keep their hand-set priors there):
        log(PROJECTION gw) ~ Normal(log P0 + G(t_2030), PROJECTION sd),
        P0 = sum_v Cp_v(0) x overhead x (1 + HEADROOM) / 1000 GW.
For the forecast: power_growth0 = g0 spread over the regions in the scenario's pattern (each
region's hand-set median x one factor, so that their compute-share-weighted mean is g0;
china keeps its hand-set prior, as in model (d)); power_halflife = h; power_growth_inf =
g_inf.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd

from priors.models.base import CalibrationError, Prepared, Site, lognormal
from priors.models.compute import cumulative_rows, curve_inputs, designer_rows, shipment_curves
from priors.models.demand import cumulative_growth

NAME = "power"
KERNEL_PARAMS = ("kw_per_h100e0", "fleet_kw0", "g_power_eff", "power_growth0", "power_growth_inf",
                 "power_halflife", "power_overhead", "chip_power_obs_sd")
POWER, COMPUTE = "cumulative_power", "cumulative_compute_h100e"
OVERHEAD = (np.log(1.6), 0.15)  # facility / chip power: PUE ~1.1-1.3 x server and network overhead ~1.3-1.5
RECENT_QUARTERS = 4
NOT_GLOBAL = ("china",)  # regions whose power growth this model leaves to the scenario
HEADROOM = 0.15  # capacity over the draw at the start: power_headroom0's hand-set median
# IEA Energy and AI (Apr 2025), base case: all data centres use 945 TWh in 2030 (107.8 GW of
# average load). AI capacity = a third to all of that load x 1.25 (capacity over load): 45-135
# GW as a 90% range, median 78 (the geometric middle), log sd ln(3) / 2 / 1.645.
# A fit with a cutoff before its publication leaves it out, as it would have been then.
PROJECTION = {"date": "2030-07-01", "gw": 945e3 / 8766 * 1.25 / np.sqrt(3.0), "sd": np.log(3.0) / 2 / 1.645,
              "published": "2025-04-10",
              "label": "IEA 2030 projection: AI power capacity, GW (a prior on the level, not data)"}


# The latents the posterior file keeps (priors.posterior.build): units and meaning, and the
# labels of their dims.
LATENTS = {
    "log_chip_kw0": ("log(kW/H100e)", "chip power per H100e of each designer's shipments at the start"),
    "overhead": ("1", "facility power over chip power (PUE x server and network overhead)"),
    "sigma": ("1 (log)", "scatter of a shipment interval's chip kW per H100e around its designer's"),
    "installed_growth": ("1/yr", "log growth rate of each designer's shipped chip power rate"),
    "installed_log_rate0": ("log(MW/yr)", "each designer's rate of chip power shipped, at the start"),
    "sigma_installed": ("1 (log)", "scatter of a cumulative chip-power figure around its designer's curve"),
    "chip_power0": ("MW", "chip power shipped since the series' starts, at the start (the installed fleet's)"),
    "log_power_projection": ("log(GW)", "AI power capacity in mid-2030 on this draw's path"),
}


def labels(prepared) -> dict:
    return {"designer": list(prepared.info["series"]),
            "installed_designer": sorted(set(prepared.sites["installed"].rows["series"]))}


def prepare(data, ctx) -> Prepared:
    rows = designer_rows(data, [POWER, COMPUTE])
    wide = rows.pivot_table(index=["entity", "date_parsed"], columns="metric", values="value_num", aggfunc="first")
    if POWER not in wide or COMPUTE not in wide:
        raise CalibrationError(f"power: needs both {POWER!r} and {COMPUTE!r} rows for the same designers and dates")
    where = rows.drop_duplicates(["entity", "date_parsed"]).set_index(["entity", "date_parsed"])[["file", "row"]]
    wide = wide.dropna(subset=[POWER, COMPUTE]).reset_index().sort_values(["entity", "date_parsed"])
    rows = _intervals(wide, where)
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
    installed = cumulative_rows(data, ctx, POWER, NAME)
    when = pd.Timestamp(PROJECTION["date"])
    known = bool(ctx.train([pd.Timestamp(PROJECTION["published"])])[0])  # published before the cutoff
    projection = pd.DataFrame({"series": ["projection"], "label": [PROJECTION["label"]], "date_parsed": [when],
                               "t": ctx.years([when]), "y": [np.log(PROJECTION["gw"])], "train": [known]})
    inputs = {
        "t": jnp.asarray(rows["t"].to_numpy(), jnp.float32),
        "series": jnp.asarray(rows["series"].map(index).to_numpy()),
        "n_series": len(series),
        "mix": jnp.asarray(mix / mix.sum(), jnp.float32),
        "g_prior": ctx.prior("g_power_eff"),
        "y": jnp.asarray(rows["y"].to_numpy(), jnp.float32),
        "train": jnp.asarray(rows["train"].to_numpy()),
        "installed": {"t": jnp.asarray(installed["t"].to_numpy(), jnp.float32), **curve_inputs(installed),
                      "train": jnp.asarray(installed["train"].to_numpy())},
        "y_installed": jnp.asarray(installed["y"].to_numpy(), jnp.float32),
        "t_projection": float(projection["t"].iloc[0]),
        "y_projection": jnp.asarray(projection["y"].to_numpy(), jnp.float32),
        "projection_train": jnp.asarray(projection["train"].to_numpy()),
        "capacity_prior": {n: ctx.prior(n) for n in ("power_growth_inf", "power_halflife")},
    }
    sites = {"obs": Site(rows, "exp", "chip kW per H100e shipped"),
             "installed": Site(installed, "exp", "MW of chip power shipped since the series' start", "y_installed"),
             "projection": Site(projection, "exp", "GW of AI power capacity, mid-2030: IEA-based, a prior",
                                "y_projection")}
    return Prepared(inputs, sites, {"series": series, "fleet_chip_kw": fleet})


def _intervals(wide, where) -> pd.DataFrame:
    """One row per designer and shipment interval (consecutive cumulative figures): its
    end, mid-point, H100e shipped and log chip W per H100e shipped (y); a cumulative figure
    that does not increase is refused by file and row."""
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
    return pd.DataFrame(out)


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

    # installed chip power: one shipment curve per designer, as model (d)
    chip, rate = shipment_curves(inputs["installed"], inputs["y_installed"], "installed", observed,
                                 prefix="installed_", sigma="sigma_installed")
    chip0 = numpyro.deterministic("chip_power0", chip)
    g0 = numpyro.deterministic("power_growth0", rate)

    # the capacity path from that rate, slowing as the 2030 projection allows
    p = inputs["capacity_prior"]
    g_inf = lognormal("power_growth_inf", p["power_growth_inf"])
    h = lognormal("power_halflife", p["power_halflife"])
    log_p0 = jnp.log(chip0 * overhead * (1.0 + HEADROOM) / 1000.0)
    projected = numpyro.deterministic("log_power_projection",
                                      log_p0 + cumulative_growth(inputs["t_projection"], g0, g_inf, h))
    with numpyro.plate("projection_rows", 1):
        numpyro.sample("projection", dist.Normal(projected, PROJECTION["sd"]).mask(inputs["projection_train"]),
                       obs=inputs["y_projection"] if observed else None)


def regional_growth(g0, ctx) -> np.ndarray:
    """(draws, region): the world's start rate g0 in the scenario's regional pattern (each
    region's hand-set median x one factor per draw, the compute-share-weighted mean over the
    regions it applies to = g0); NaN for the regions in NOT_GLOBAL."""
    loc = np.broadcast_to(np.asarray(ctx.hand_set["power_growth0"][0], np.float64), (len(ctx.regions),))
    pattern = np.exp(loc)
    share = np.asarray(ctx.compute_share, np.float64)
    applies = np.array([r not in NOT_GLOBAL for r in ctx.regions])
    factor = np.asarray(g0, np.float64) * share[applies].sum() / np.sum(share[applies] * pattern[applies])
    g = factor[:, None] * pattern[None, :]
    g[:, ~applies] = np.nan
    return g


def kernel(samples, prepared, ctx) -> dict:
    overhead = np.asarray(samples["overhead"], np.float64)
    return {"kw_per_h100e0": np.asarray(samples["kw_per_h100e0"], np.float64),
            "fleet_kw0": overhead * prepared.info["fleet_chip_kw"],
            "g_power_eff": np.asarray(samples["g_power_eff"], np.float64),
            "power_growth0": regional_growth(samples["power_growth0"], ctx),
            "power_growth_inf": np.asarray(samples["power_growth_inf"], np.float64),
            "power_halflife": np.asarray(samples["power_halflife"], np.float64),
            "power_overhead": overhead,  # chip_power_observed = draw / overhead: the same row's
            "chip_power_obs_sd": np.asarray(samples["sigma_installed"], np.float64)}
