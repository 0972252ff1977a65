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
    log_k = np.log(p["compute0"])
    dev = np.zeros((n, R))
    log_c = np.log(p["cost_frontier0"])
    log_e = np.log(p["enterprise0"])
    restricted = np.zeros(n, bool)
    frozen = np.zeros(n)
    hit = rng.standard_normal((n, R)) < ndtri(np.clip(p["moratorium_probability"], 0, 1))
    sq = np.sqrt(DT)
    pop = p["population"]
    north = p["north"]
    s0 = _logistic(p["agentic_share0"], p["agentic_ceiling"], p["agentic_rate"], 0.0)
    mix0 = 1 - s0 + s0 * p["agentic_multiplier"]
    out = []
    for month in range(sc.months):
        t, ty = float(month), month * DT
        z = rng.standard_normal((n, 3 * R + 5))
        zk, zkc, zg, zgc = z[:, :R], z[:, R], z[:, R + 1:2 * R + 1], z[:, 2 * R + 1]
        zc, ze, zs, zend = z[:, 2 * R + 2], z[:, 2 * R + 3:3 * R + 3], z[:, 3 * R + 3], z[:, 3 * R + 4]
        # Security restrictions.
        hazard = np.clip(p["restrict_hazard"], 0, 1)
        starts = zs < ndtri(hazard)
        ends = zend < ndtri(1.0 / np.maximum(p["restrict_duration"], 1.0))
        now = np.where(restricted, ~ends, starts)
        left = np.clip(ndtr(zs) / np.maximum(hazard, 1e-300), 0, 1)
        frozen = np.where(now, np.where(restricted, frozen + 1.0, left), 0.0)
        restricted = now
        # Compute supply.
        rho = p["shock_corr"][:, None]
        dev = dev - p["growth_reversion"][:, None] * dev * DT + p["growth_vol"][:, None] * sq * (
            np.sqrt(rho) * zgc[:, None] + np.sqrt(1 - rho) * zg)
        g = p["growth_inf"] + (p["growth0"] - p["growth_inf"]) * np.exp2(-ty / p["growth_halflife"][:, None]) + dev
        g = g + p["buildout_extra_growth"] * window(p["buildout_start"], p["buildout_end"], t)[:, None]
        g = np.minimum(g, p["growth_cap"])
        mor = hit * window(p["moratorium_start"], p["moratorium_end"], t)[:, None]
        f = np.where(mor > 0, p["moratorium_growth_factor"][:, None], 1.0)
        level = p["compute_vol"][:, None] * sq * (np.sqrt(rho) * zkc[:, None] + np.sqrt(1 - rho) * zk)
        log_k = log_k + f * (g * DT + level)
        # Inference cost.
        log_c = log_c + (p["g_front"] - p["g_hw"] - p["g_serve"]) * DT + p["cost_vol"] * sq * zc
        ge = (p["enterprise_growth_inf"] + (p["enterprise_growth0"] - p["enterprise_growth_inf"]) * np.exp2(
            -ty / p["enterprise_halflife"]))[:, None]
        log_e = log_e + ge * DT + p["enterprise_vol"][:, None] * sq * ze
        throughput = p["tokens_per_h100e"] * np.exp((p["g_serve"] - p["g_front"]) * ty)
        capacity = p["inference_share"] * np.exp(log_k).sum(1) * throughput
        # Token demand at scarcity multiplier 1.
        s = _logistic(p["agentic_share0"], p["agentic_ceiling"], p["agentic_rate"], ty)
        mix = 1 - s + s * p["agentic_multiplier"]
        adoption = _logistic(p["adoption0"], p["adoption_ceiling"], p["adoption_rate"], ty)
        consumer = pop * adoption * (p["tokens_assisted"] * np.exp(p["assisted_growth"] * ty) * mix)[:, None]
        enterprise = np.exp(log_e) * (mix / mix0)[:, None]
        response = np.exp(-p["elasticity"] * (log_c - np.log(p["cost_frontier0"])))
        trusted = p["trusted_share"]
        d1 = np.stack([trusted * enterprise, (1 - trusted) * enterprise, consumer], -1) * response[:, None, None]
        # Prices and the scarcity response.
        eps = p["elasticity"]
        mult = np.clip((d1.sum((1, 2)) / np.maximum(capacity, 1e-300)) ** (1 / eps), 1,
                       np.maximum(p["scarcity_cap"], 1))
        price = np.exp(log_c)[:, None] * p["markup"] * mult[:, None] ** p["scarcity_passthrough"]
        wanted = d1 * (mult[:, None] ** (-eps[:, None] * p["scarcity_passthrough"]))[:, None, :]
        # Allocation by tier priority and access weight.
        weight = np.maximum(p["access_weight"],
                            p["guarantee"] * window(p["guarantee_start"], np.inf, t)[:, None])
        tier_total = wanted.sum(1)
        offered = np.maximum(capacity[:, None] - (np.cumsum(tier_total, 1) - tier_total), 0)
        fill = _waterfill(wanted, np.maximum(weight, 0), offered)
        served = wanted * fill
        lag = np.broadcast_to(frozen[:, None, None], served.shape).copy()
        lag[:, :, 0] *= 1 - p["trusted_access"]
        lag = lag + (1 - fill) * p["fallback_lag"][:, None, None]
        per_capita = served.sum(2) / pop
        ratio = ((north * per_capita * pop).sum(1) / (north * pop).sum(1)) / (
            ((1 - north) * per_capita * pop).sum(1) / ((1 - north) * pop).sum(1))
        share = pop / pop.sum(1, keepdims=True)
        mean_pc = (share * per_capita).sum(1)
        gini = (share[:, :, None] * share[:, None, :] * np.abs(per_capita[:, :, None] - per_capita[:, None, :])
                ).sum((1, 2)) / (2 * mean_pc)
        unmet = (wanted * (1 - fill)).sum((1, 2)) / wanted.sum((1, 2))
        fixed_cost = np.exp(log_c - (p["g_alg"] + p["g_front"]) * ty)
        x = np.concatenate([np.exp(log_k), np.exp(log_c)[:, None], fixed_cost[:, None], price,
                            wanted.reshape(n, -1), served.reshape(n, -1), per_capita, ratio[:, None],
                            gini[:, None], unmet[:, None], lag.reshape(n, -1), adoption], axis=1)
        out.append(x if keep else np.quantile(x, quantiles, axis=0, method="inverted_cdf").T)
    return np.stack(out)
