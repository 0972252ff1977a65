"""(f) The menu: how token demand splits across the model classes, and what they cost.

Data (access_menu.csv, copied from shared/data):
1. The open-weight share of OpenRouter's tokens: its average over the study period
   (26.7%, Nov 2024-Nov 2025) and its level late in 2025 (about a third). OpenRouter's
   users are API users outside China: the enterprise tier of the richest region, whose
   logit shares over the three classes are the forecast's (kernels/menu.py):
       V_F = 0,  V_M = a_M - lambda L_M - theta log q_M,
       V_O = a_O - lambda L_O(t) - theta log(q_M q_O)
   (list prices are cost times the tier's markup, c_F q_c markup, so the markup and the
   frontier cost cancel). The open-weight lag L_O(t) is read off the dated lag figures
   (Epoch: about 12 months in Nov 2024, 3.5 months in Oct 2025), linear between them and
   flat outside; the average is taken over the study period's months.
       logit(observed share) ~ Normal(logit(model share), SHARE_SD)
   SHARE_SD = 0.2: secondary coverage rounds ("about a third"; another reading is 30%).
2. List-price ratios within the menu (blended 3:1 input:output): each flagship's price
   against the same lab's mid model nearest in date (within two months: on sale together),
   and each open-weight model's price against the geometric mean of the mid models' within
   half a year. Read as compute ratios (equal markups; docs/model.md):
       log(mid / flagship) ~ Normal(log q_M, s_M),  log(open / mid) ~ Normal(log q_O, s_O),
   s_M, s_O ~ HalfNormal(0.5).
Priors: the scenario's hand-set ones for a_M (mid_appeal), a_O (open_appeal), lambda
(lag_aversion), L_M (mid_lag), q_M (mid_compute), q_O (open_compute) and theta
(price_sensitivity, the enterprise tier's). The data pin the open share and the price
ratios; the priors share the rest out. To the forecast: all seven, jointly (one draw).
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd

from priors.models.base import CalibrationError, Prepared, Site, hand_set, lognormal, rows_of

NAME = "choice"
KERNEL_PARAMS = ("mid_appeal", "open_appeal", "lag_aversion", "mid_lag", "mid_compute", "open_compute",
                 "price_sensitivity")
OPEN_ENTITY = "Open-weight models (OpenRouter)"
SHARES = ("token_share_average", "token_share_late_2025")
LAG = "open_weight_lag_months"
LIST_IN, LIST_OUT = "list_price_input", "list_price_output"
SHARE_SD = 0.2
PAIR_DAYS = 62  # a flagship and a mid model of one lab on sale together
POOL_DAYS = 183  # the mid models an open-weight model's price is set against


def _month_range(start: str, end: str) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(start + "-01"), pd.Timestamp(end + "-01"), freq="MS")


def _lag_path(data) -> tuple[np.ndarray, np.ndarray]:
    rows = rows_of(data, [LAG]).sort_values("date_parsed")
    if rows.empty:
        raise CalibrationError(f"choice: no {LAG!r} rows (the open-weight lag behind the frontier)")
    days = (rows["date_parsed"] - pd.Timestamp("2000-01-01")).dt.days.to_numpy(np.float64)
    return days, rows["value_num"].to_numpy(np.float64)


def _shares(data, ctx) -> pd.DataFrame:
    rows = rows_of(data, SHARES)
    rows = rows[rows["entity"] == OPEN_ENTITY].copy()
    if rows.empty:
        raise CalibrationError(f"choice: no {' or '.join(map(repr, SHARES))} rows for {OPEN_ENTITY!r}")
    days, lags = _lag_path(data)
    months = []
    for _, r in rows.iterrows():
        start, end = str(r.get("period_start") or ""), str(r.get("period_end") or "")
        if r["metric"] == "token_share_average":
            if not (start and end):
                raise CalibrationError(f"choice: the average share (row {r['row']} of {r['file']}) needs "
                                       "period_start and period_end")
            ms = _month_range(start, end)
        else:  # the level late in the period: its last month
            ms = _month_range(end, end) if end else pd.DatetimeIndex([r["date_parsed"]])
        d = ((ms + pd.Timedelta(days=14)) - pd.Timestamp("2000-01-01")).days.to_numpy(np.float64)
        months.append(np.interp(d, days, lags))
    width = max(len(m) for m in months)
    rows["lags"] = [np.pad(m, (0, width - len(m)), constant_values=np.nan) for m in months]
    share = rows["value_num"].to_numpy(np.float64) / 100.0
    rows["y"] = np.log(share) - np.log1p(-share)
    rows["t"] = ctx.years(rows["date_parsed"])
    rows["train"] = ctx.train(rows["date_parsed"])
    rows["series"] = "open-weight share"
    rows["label"] = rows["metric"]
    return rows.reset_index(drop=True)


def _class(entity: str) -> str:
    e = entity.lower()
    if "open-weight" in e:
        return "open"
    if "(flagship" in e:
        return "frontier"
    if "(mid)" in e:
        return "mid"
    return ""


def _ratios(data, ctx) -> pd.DataFrame:
    pairs = rows_of(data, [LIST_IN, LIST_OUT])
    wide = pairs.pivot_table(index=["date_parsed", "entity"], columns="metric", values="value_num",
                             aggfunc="first").dropna().reset_index()
    wide["price"] = (3 * wide[LIST_IN] + wide[LIST_OUT]) / 4
    wide["class"] = wide["entity"].map(_class)
    wide["lab"] = wide["entity"].str.split().str[0]
    mids, out = wide[wide["class"] == "mid"], []
    for _, f in wide[wide["class"] == "frontier"].iterrows():
        same = mids[mids["lab"] == f["lab"]]
        gap = (same["date_parsed"] - f["date_parsed"]).abs().dt.days
        if len(same) and gap.min() <= PAIR_DAYS:
            m = same.loc[gap.idxmin()]
            out.append((f["date_parsed"], f"{m['entity']} / {f['entity']}", "mid / frontier", m["price"] / f["price"]))
    for _, o in wide[wide["class"] == "open"].iterrows():
        near = mids[(mids["date_parsed"] - o["date_parsed"]).abs().dt.days <= POOL_DAYS]
        if len(near):
            ref = float(np.exp(np.mean(np.log(near["price"]))))
            out.append((o["date_parsed"], f"{o['entity']} / mid models", "open / mid", o["price"] / ref))
    rows = pd.DataFrame(out, columns=["date_parsed", "label", "series", "ratio"])
    for kind in ("mid / frontier", "open / mid"):
        if not (rows["series"] == kind).any():
            raise CalibrationError(f"choice: no {kind} list-price pair ({LIST_IN}/{LIST_OUT} rows whose entity is "
                                   "tagged '(flagship', '(mid)' or 'open-weight', close enough in date)")
    rows["y"] = np.log(rows["ratio"].to_numpy(np.float64))
    rows["t"] = ctx.years(rows["date_parsed"])
    rows["train"] = ctx.train(rows["date_parsed"])
    rows["kind"] = (rows["series"] == "open / mid").astype(int)
    rows["date"] = rows["date_parsed"].dt.strftime("%Y-%m-%d")
    return rows.sort_values("date_parsed").reset_index(drop=True)


# The latents the posterior file keeps (priors.posterior.build): units and meaning, the names
# of dims without a plate, and their labels.
LATENTS = {
    "ratio_sd": ("1 (log)", "scatter of a list-price ratio around the model's, per kind of pair"),
}
DIM_NAMES = {"ratio_sd_dim_0": "pair"}


def labels(prepared) -> dict:
    return {"pair": ["mid / frontier", "open / mid"]}  # rows' "kind": 0 and 1


def prepare(data, ctx) -> Prepared:
    shares, ratios = _shares(data, ctx), _ratios(data, ctx)
    if not shares["train"].any():
        raise CalibrationError("choice: no open-weight share dated before the cutoff")
    lags = np.stack(shares["lags"].to_numpy())
    inputs = {
        "s_y": jnp.asarray(shares["y"].to_numpy(), jnp.float32),
        "s_lag": jnp.asarray(np.nan_to_num(lags), jnp.float32),
        "s_mask": jnp.asarray(np.isfinite(lags), jnp.float32),
        "s_train": jnp.asarray(shares["train"].to_numpy()),
        "r_y": jnp.asarray(ratios["y"].to_numpy(), jnp.float32),
        "r_kind": jnp.asarray(ratios["kind"].to_numpy()),
        "r_train": jnp.asarray(ratios["train"].to_numpy()),
        "prior": {n: ctx.prior(n) for n in KERNEL_PARAMS},
    }
    sites = {"obs_share": Site(shares.drop(columns=["lags"]), "sigmoid", "share of OpenRouter tokens", "s_y"),
             "obs_ratio": Site(ratios, "exp", "list-price ratio", "r_y")}
    return Prepared(inputs, sites, {})


def open_share(a_m, a_o, lam, theta, mid_lag, q_m, q_o, open_lag):
    """The enterprise open-class share at open-weight lag `open_lag` (months)."""
    v_m = a_m - lam * mid_lag - theta * jnp.log(q_m)
    v_o = a_o - lam * open_lag - theta * jnp.log(q_m * q_o)
    return jnp.exp(v_o) / (1.0 + jnp.exp(v_m) + jnp.exp(v_o))


def model(inputs, observed=True):
    pr = inputs["prior"]
    a_m = hand_set("mid_appeal", pr["mid_appeal"], "identity")
    a_o = hand_set("open_appeal", pr["open_appeal"], "identity")
    lam = lognormal("lag_aversion", pr["lag_aversion"])
    theta = lognormal("price_sensitivity", pr["price_sensitivity"])
    mid_lag = lognormal("mid_lag", pr["mid_lag"])
    q_m = hand_set("mid_compute", pr["mid_compute"], "sigmoid")
    q_o = hand_set("open_compute", pr["open_compute"], "sigmoid")
    s = open_share(a_m, a_o, lam, theta, mid_lag, q_m, q_o, inputs["s_lag"])  # (obs, month)
    mean = jnp.sum(s * inputs["s_mask"], axis=1) / jnp.sum(inputs["s_mask"], axis=1)
    with numpyro.plate("shares", inputs["s_y"].shape[0]):
        numpyro.sample("obs_share", dist.Normal(jnp.log(mean) - jnp.log1p(-mean), SHARE_SD).mask(inputs["s_train"]),
                       obs=inputs["s_y"] if observed else None)
    sd = numpyro.sample("ratio_sd", dist.HalfNormal(0.5).expand([2]).to_event(1))
    loc = jnp.where(inputs["r_kind"] == 1, jnp.log(q_o), jnp.log(q_m))
    with numpyro.plate("ratios", inputs["r_y"].shape[0]):
        numpyro.sample("obs_ratio", dist.Normal(loc, sd[inputs["r_kind"]]).mask(inputs["r_train"]),
                       obs=inputs["r_y"] if observed else None)


def kernel(samples, prepared, ctx) -> dict:
    return {n: np.asarray(samples[n], np.float64) for n in KERNEL_PARAMS}
