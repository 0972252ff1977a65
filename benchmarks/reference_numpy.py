"""The access model as a careful analyst would write it in NumPy: a loop over months,
vectorised over trajectories (float64, NumPy's own random generator).

It reads the same scenario priors as the engine and implements the same equations
(docs/model.md) independently of kernels/, so it is both the speed baseline for
benchmarks/run.py and a correctness reference: tests/test_reference.py checks that its
bands agree with the engine's within Monte Carlo error. Bands are np.quantile over the
trajectories each month (method "inverted_cdf", as the engine).
"""
from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

from forecast.scenario import Scenario, load
from kernels.params import SPECS
from kernels.simulate import LIST_PRICE_QUANTILE

N_TIERS = 3
DT = 1.0 / 12.0
QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


def sample_params(sc: Scenario, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Each trajectory's parameters: value = transform(loc + scale z), per the support."""
    out = {}
    for spec, loc, scale in zip(SPECS, sc.prior.loc, sc.prior.scale):
        loc, scale = np.asarray(loc, np.float64), np.asarray(scale, np.float64)
        z = rng.standard_normal((n,) + loc.shape)
        u = np.where(scale > 0, loc + scale * z, loc)
        if spec.support == "positive":
            u = np.exp(u)
        elif spec.support == "unit":
            with np.errstate(over="ignore"):
                u = 1.0 / (1.0 + np.exp(-u))
        out[spec.name] = u
    return out


def _logistic(start, ceiling, rate, t):
    ratio = np.clip(start / ceiling, 1e-6, 1 - 1e-6)
    return ceiling / (1.0 + np.exp(-(np.log(ratio) - np.log1p(-ratio) + rate * t)))


def _waterfill(d, w, cap):
    """(n, R, K) demand, (n, R) weights, (n, K) capacity offered -> (n, R, K) fill."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _waterfill_inner(d, w, cap)


def _waterfill_inner(d, w, cap):
    kinks = np.where(w > 0, 1.0 / np.maximum(w, 1e-300), np.inf)  # (n, R)
    share = np.where(np.isfinite(kinks)[:, :, None],
                     np.minimum(1.0, kinks[:, :, None] * w[:, None, :]), 0.0)  # (n, j, r): min(1, w_r/w_j)
    at_kink = np.einsum("njr,nrk->njk", share, d)
    at_kink = np.where(np.isfinite(kinks)[:, :, None], at_kink, np.inf)
    lam_lo = np.max(np.where(at_kink <= cap[:, None, :], kinks[:, :, None], 0.0), axis=1)  # (n, K)
    full = kinks[:, :, None] <= lam_lo[:, None, :]
    slope = np.sum(np.where(full, 0.0, d * w[:, :, None]), axis=1)
    lam = (cap - np.sum(np.where(full, d, 0.0), axis=1)) / np.maximum(slope, 1e-300)
    part = np.where(full, 0.0, np.clip(lam[:, None, :] * w[:, :, None], 0.0, 1.0))
    left = cap - np.sum(np.where(full, d, 0.0), axis=1)
    trim = np.clip(left / np.maximum(np.sum(d * part, axis=1), 1e-300), 0.0, 1.0)
    fill = np.where(full, 1.0, part * trim[:, None, :])
    return np.where((np.sum(d, axis=1) <= cap)[:, None, :], 1.0, fill)


def _by_priority(d, cap):
    """(n, R, K) served from each region's own capacity (n, R), tiers in priority order."""
    before = np.cumsum(d, axis=2) - d
    return np.minimum(d, np.maximum(cap[:, :, None] - before, 0.0))


def _pooled(need, weight, friction, pool):
    """(n, R, K) delivered from a pool (n,), and the pool used (n,)."""
    units = need / np.maximum(1.0 - friction, 1e-6)[:, :, None]
    tier_total = units.sum(1)
    offered = np.maximum(pool[:, None] - (np.cumsum(tier_total, 1) - tier_total), 0.0)
    fill = _waterfill(units, np.maximum(weight, 0), offered)
    fill = np.where(fill >= 1 - 1e-5, 1.0, fill)
    return need * fill, np.minimum((units * fill).sum((1, 2)), pool)


def _lognormal_gini_sigma(g):
    return np.sqrt(2.0) * ndtri(0.5 * (1.0 + np.clip(g, 1e-6, 1 - 1e-6)))


def simulate(sc: Scenario | str = "baseline", n: int = 10_000, seed: int = 0, quantiles=QUANTILES,
             keep: bool = False):
    """Simulate n trajectories; returns (time, series, quantile) bands, or with keep=True
    the (time, trajectory, series) values themselves (small runs only).

    Series are in the engine's order (kernels.simulate.OUTPUTS).
    """
    sc = load(sc, calibration="none") if isinstance(sc, str) else sc
    rng = np.random.default_rng(seed)
    p = sample_params(sc, n, rng)
    R = p["compute0"].shape[1]
    window = lambda a, b, t: ((t >= a) & (t < b)).astype(np.float64)  # noqa: E731
    logistic = _logistic
    pop, north = p["population"], p["north"]
    hosts, access, home = p["hosts_frontier"], p["frontier_access"], p["frontier_home"]
    friction, weight = p["import_friction"], p["access_weight"]
    eps = p["elasticity"][:, None]
    sigma_inc = _lognormal_gini_sigma(p["income_gini"])
    log_med_inc = np.log(p["gni_per_capita"] / 12.0) - 0.5 * sigma_inc**2
    s0 = logistic(p["agentic_share0"], p["agentic_ceiling"], p["agentic_rate"], 0.0)
    mix0 = 1 - s0 + s0 * p["agentic_multiplier"]
    blocked = np.ones((n, R, N_TIERS))
    blocked[:, :, 0] = 1 - p["trusted_access"]

    def serving_gain(ty):
        h = p["serve_halflife"]
        return p["g_serve"] * h / np.log(2.0) * (1 - np.exp2(-ty / h))

    def floor_cost(ty):
        capital = p["hardware_cost0"] * np.exp(-p["g_hw"] * ty) / (12 * p["hardware_lifetime"])
        energy = p["kw_per_h100e0"] * np.exp(-p["g_power_eff"] * ty) * 730.0 * p["electricity_price"]
        return 1e6 * (capital + energy) / p["floor_tokens_per_h100e"]

    def market(log_c, log_e, cap, restricted, ty):
        s = logistic(p["agentic_share0"], p["agentic_ceiling"], p["agentic_rate"], ty)
        mix = 1 - s + s * p["agentic_multiplier"]
        adoption = logistic(p["adoption0"], p["adoption_ceiling"], p["adoption_rate"], ty)
        consumer = pop * adoption * (p["tokens_assisted"] * np.exp(p["assisted_growth"] * ty) * mix)[:, None]
        enterprise = np.exp(log_e) * (mix / mix0)[:, None]
        response = np.exp(-p["elasticity"] * (log_c - np.log(p["cost_frontier0"])))
        tr = p["trusted_share"]
        d1 = np.stack([tr * enterprise, (1 - tr) * enterprise, consumer], -1) * response[:, None, None]
        plan = p["tokens_assisted"] * np.exp(p["assisted_growth"] * ty)

        def priced(price):
            log_plan = np.log(plan[:, None] * price * 1e-6) - np.log(p["ai_budget_share"])
            share = ndtr((log_plan[:, None, :] - log_med_inc[:, :, None]) / sigma_inc[:, :, None])
            return np.where(share < 1e-6, 0.0, np.where(share > 1 - 1e-6, 1.0, share))

        def elig(d, po):
            return d * (1 - po) * access[:, :, None] * (1 - restricted[:, None, None] * blocked)

        price1 = np.exp(log_c)[:, None] * p["markup"]
        e1 = elig(d1, priced(price1))
        ratio = e1.sum((1, 2)) / np.maximum((cap * hosts).sum(1), 1e-300)
        mult = np.maximum(ratio, 1.0) ** (1.0 / p["elasticity"])
        price = price1 * mult[:, None] ** p["scarcity_passthrough"]
        wanted = d1 * (mult[:, None] ** (-eps * p["scarcity_passthrough"]))[:, None, :]
        po = priced(price)
        return e1, price, wanted, po, elig(wanted, po)

    # Start: compute, power, and the throughput that makes demand / capacity = scarcity0.
    k = p["compute0"].copy()
    w = k * np.maximum(p["fleet_kw0"], p["kw_per_h100e0"])[:, None] / 1e6
    log_p = np.log(w * (1 + p["power_headroom0"])[:, None])
    log_c = np.log(p["cost_frontier0"])
    log_e = np.log(p["enterprise0"])
    e1, *_ = market(log_c, log_e, np.ones((n, R)), np.zeros(n), 0.0)
    q0 = e1.sum((1, 2)) / (p["scarcity0"] * (p["inference_share"][:, None] * k * hosts).sum(1))
    dev = np.zeros((n, R))
    restricted = np.zeros(n, bool)
    frozen = np.zeros(n)
    hit = rng.standard_normal((n, R)) < ndtri(np.clip(p["moratorium_probability"], 0, 1))
    sq = np.sqrt(DT)
    life = p["hardware_lifetime"][:, None]
    out = []
    for month in range(sc.months):
        t, ty = float(month), month * DT
        z = rng.standard_normal((n, 4 * R + 6))
        zk, zkc, zg, zgc = z[:, :R], z[:, R], z[:, R + 1:2 * R + 1], z[:, 2 * R + 1]
        zp, zpc, zc = z[:, 2 * R + 2:3 * R + 2], z[:, 3 * R + 2], z[:, 3 * R + 3]
        ze, zs, zend = z[:, 3 * R + 4:4 * R + 4], z[:, 4 * R + 4], z[:, 4 * R + 5]
        # Security restrictions.
        hazard = np.clip(p["restrict_hazard"], 0, 1)
        starts = zs < ndtri(hazard)
        ends = zend < ndtri(1.0 / np.maximum(p["restrict_duration"], 1.0))
        now = np.where(restricted, ~ends, starts)
        left = np.clip(ndtr(zs) / np.maximum(hazard, 1e-300), 0, 1)
        frozen = np.where(now, np.where(restricted, frozen + 1.0, left), 0.0)
        restricted = now
        # Power capacity.
        rho = p["shock_corr"][:, None]
        building = window(p["buildout_start"], p["buildout_end"], t)[:, None]
        mor = hit * window(p["moratorium_start"], p["moratorium_end"], t)[:, None]
        f = np.where(mor > 0, p["moratorium_growth_factor"][:, None], 1.0)
        gp = p["power_growth_inf"][:, None] + (p["power_growth0"] - p["power_growth_inf"][:, None]) * np.exp2(
            -ty / p["power_halflife"][:, None]) + p["buildout_extra_growth"] * building
        x_p = gp * DT + p["power_vol"][:, None] * sq * (np.sqrt(rho) * zpc[:, None] + np.sqrt(1 - rho) * zp)
        log_p = log_p + np.where(x_p > 0, f * x_p, x_p)
        # Hardware within the power.
        dev = dev - p["growth_reversion"][:, None] * dev * DT + p["growth_vol"][:, None] * sq * (
            np.sqrt(rho) * zgc[:, None] + np.sqrt(1 - rho) * zg)
        g = p["growth_inf"] + (p["growth0"] - p["growth_inf"]) * np.exp2(-ty / p["growth_halflife"][:, None]) + dev
        g = np.minimum(g + p["buildout_extra_growth"] * building, p["growth_cap"])
        level = p["compute_vol"][:, None] * sq * (np.sqrt(rho) * zkc[:, None] + np.sqrt(1 - rho) * zk)
        wanted_hw = np.maximum(k * (np.expm1(g * DT + level) + DT / life), 0.0)
        k, w = k * (1 - DT / life), w * (1 - DT / life)
        kw = (p["kw_per_h100e0"] * np.exp(-p["g_power_eff"] * (ty + DT)))[:, None]
        added = np.minimum(wanted_hw, np.maximum(np.exp(log_p) - w, 0.0) * 1e6 / kw)
        k, w = k + added, w + added * kw / 1e6
        # Inference cost (serving gains saturate) and capacity.
        serve_rate = p["g_serve"] * np.exp2(-ty / p["serve_halflife"])
        log_c = log_c + (p["g_front"] - p["g_hw"] - serve_rate) * DT + p["cost_vol"] * sq * zc
        ge = (p["enterprise_growth_inf"] + (p["enterprise_growth0"] - p["enterprise_growth_inf"]) * np.exp2(
            -ty / p["enterprise_halflife"]))[:, None]
        log_e = log_e + ge * DT + p["enterprise_vol"][:, None] * sq * ze
        q = q0 * np.exp(serving_gain(ty) - p["g_front"] * ty)
        cap = p["inference_share"][:, None] * k * q[:, None]
        _, price, wanted, po, elig = market(log_c, log_e, cap, restricted.astype(float), ty)
        # Frontier allocation: reserves, domestic pools, trade.
        hcap = cap * hosts
        hom = hcap * home
        hom_total = hom.sum(1)
        gshare = p["guarantee"] * window(p["guarantee_start"], np.inf, t)[:, None]
        reserve = gshare / np.maximum(gshare.sum(1), 1.0)[:, None] * hom_total[:, None]
        from_res = _by_priority(elig, reserve)
        unused = reserve.sum(1) - from_res.sum((1, 2))
        hshare = hom / np.maximum(hom_total, 1e-300)[:, None]
        own = hcap - hshare * reserve.sum(1)[:, None]
        need = elig - from_res
        dom = _by_priority(need, own)
        snap = lambda x, scale: np.where(x > 1e-3 * scale, x, 0.0)  # noqa: E731
        lft = snap(own - dom.sum(2), own) + snap(hshare * unused[:, None], hshare * reserve.sum(1)[:, None])
        need = need - dom
        imp, used = _pooled(need, weight, friction, lft.sum(1))
        front = from_res + dom + imp
        lft = snap(lft * np.clip(1 - used / np.maximum(lft.sum(1), 1e-300), 0, 1)[:, None], lft) + cap * (1 - hosts)
        # Lagging models.
        best = np.minimum(p["open_lag"][:, None], p["stack_lag"])[:, :, None]
        withheld = restricted[:, None, None] * blocked * access[:, :, None]
        lag_model = np.where(withheld > 0, np.minimum(frozen[:, None, None], best), best)
        cF = np.exp(log_c)
        c_lag = floor_cost(ty)[:, None, None] + cF[:, None, None] * np.exp(
            -(p["g_alg"] + p["g_front"])[:, None, None] * lag_model / 12)
        rho_l = np.minimum(c_lag / cF[:, None, None], 1.0)
        short = need - imp
        want_l = wanted - elig + short
        need_l = want_l * rho_l
        dom_l = _by_priority(need_l, lft)
        imp_l, _ = _pooled(need_l - dom_l, weight, friction, snap(lft - dom_l.sum(2), lft).sum(1))
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(need_l > 0, (dom_l + imp_l) / need_l, 0.0)
        lagging = want_l * np.clip(frac, 0, 1)
        lagging = np.where(lagging > 1e-6 * wanted.sum(2, keepdims=True), lagging, 0.0)
        served = front + lagging
        with np.errstate(invalid="ignore", divide="ignore"):
            lag = np.where(served > 0, lag_model * lagging / served, lag_model)
        per_capita = front.sum(2) / pop
        ratio = ((north * per_capita * pop).sum(1) / (north * pop).sum(1) + 1.0) / (
            ((1 - north) * per_capita * pop).sum(1) / ((1 - north) * pop).sum(1) + 1.0)
        share = pop / pop.sum(1, keepdims=True)
        mean_pc = (share * per_capita).sum(1)
        spread = (share[:, :, None] * share[:, None, :] * np.abs(per_capita[:, :, None] - per_capita[:, None, :])
                  ).sum((1, 2))
        gini = np.where(mean_pc > 0, spread / (2 * np.maximum(mean_pc, 1e-300)), 0.0)
        tot = elig.sum((1, 2))
        unmet = np.where(tot > 0, short.sum((1, 2)) / np.maximum(tot, 1e-300), 0.0)
        fixed_cost = floor_cost(ty) + np.exp(log_c - (p["g_alg"] + p["g_front"]) * ty)
        adoption = logistic(p["adoption0"], p["adoption_ceiling"], p["adoption_rate"], ty)
        zo = rng.standard_normal((n, 2, R))  # published-figure noise
        adoption_obs = 1.0 / (1.0 + np.exp(-(np.log(adoption / (1 - adoption)) + p["adoption_obs_sd"][:, None] * zo[:, 0])))
        compute_obs = (k.sum(1) * np.exp(p["compute_obs_sd"] * zo[:, 1, 0]))[:, None]
        # a provider's published tokens (its level grown as all tokens served, t(4) scatter)
        # and a released model's list price (asymmetric Laplace about the top-decile line)
        log_served = np.log(np.maximum(served.sum((1, 2)), 1e-30))
        if t == 0:
            log_served0 = log_served
        tokens_obs = np.exp(p["tokens_obs_level"] + log_served - log_served0
                            + p["tokens_obs_sd"] * rng.standard_t(4.0, n))[:, None]
        kq = np.sqrt(LIST_PRICE_QUANTILE / (1 - LIST_PRICE_QUANTILE))
        classic = p["list_price_scale"] * kq / LIST_PRICE_QUANTILE
        ald = -classic * kq * rng.standard_exponential(n) + classic / kq * rng.standard_exponential(n)
        list_obs = (p["list_price0"] * np.exp(log_c - np.log(p["cost_frontier0"]) + ald))[:, None]
        chip_obs = (w.sum(1) / p["power_overhead"] * np.exp(p["chip_power_obs_sd"] * rng.standard_normal(n)))[:, None]
        x = np.concatenate([k, np.exp(log_p), cF[:, None], fixed_cost[:, None], floor_cost(ty)[:, None], price,
                            wanted.reshape(n, -1), front.reshape(n, -1), lagging.reshape(n, -1), per_capita,
                            ratio[:, None], gini[:, None], unmet[:, None], lag.reshape(n, -1), po.reshape(n, -1),
                            adoption, adoption_obs, compute_obs, tokens_obs, list_obs, chip_obs], axis=1)
        out.append(x if keep else np.quantile(x, quantiles, axis=0, method="inverted_cdf").T)
    return np.stack(out)
