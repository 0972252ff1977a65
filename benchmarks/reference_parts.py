"""The NumPy reference's parts (benchmarks/reference_numpy.py): its constants, parameter
sampling, and the allocation's water-filling, snapping, stages and menu, written from
docs/model.md and kernels/allocation.py's docstring independently of kernels/."""
from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from forecast.scenario import Scenario
from kernels.params import SPECS

N_TIERS = 3
N_CLASSES = 3  # frontier, mid, open
F, M, O = 0, 1, 2
DT = 1.0 / 12.0
QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
LEFTOVER_RES = 1e-3  # leftovers below this share of their pool are 0
FILL_RES = 1e-5  # fills within this of full are full
TOKEN_RES = 1e-6  # class tokens and unserved shares below this share of a cell's wanted tokens are 0


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


def logistic_curve(start, ceiling, rate, t):
    ratio = np.clip(start / ceiling, 1e-6, 1 - 1e-6)
    return ceiling / (1.0 + np.exp(-(np.log(ratio) - np.log1p(-ratio) + rate * t)))


def waterfill(d, w, cap):
    """Exact water-filling: demands d (..., I) with weights w (..., I) share capacity cap (...).

    Cell i is filled to min(1, lam w_i), lam solving sum_i d_i min(1, lam w_i) = cap
    (piecewise linear with kinks at 1/w_i); everything is full where the demand fits.
    Fills within FILL_RES of full count as full."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        cap = np.maximum(cap, 0.0)
        live = (w > 0) & (d > 0)
        kink = np.where(live, 1.0 / np.where(live, w, 1.0), np.inf)  # (..., I)
        # demand met at lam = kink_j: sum_i d_i min(1, kink_j w_i)   -> (..., j)
        part = np.where(live[..., None, :], np.minimum(1.0, kink[..., :, None] * w[..., None, :]), 0.0)
        at_kink = np.sum(part * d[..., None, :], axis=-1)
        lam_lo = np.max(np.where(np.isfinite(kink) & (at_kink <= cap[..., None]), kink, 0.0), axis=-1)
        full = live & (kink <= lam_lo[..., None])
        rest = cap - np.sum(np.where(full, d, 0.0), axis=-1)
        slope = np.sum(np.where(live & ~full, d * w, 0.0), axis=-1)
        lam = np.maximum(rest, 0.0) / np.maximum(slope, 1e-300)
        fill = np.where(full, 1.0, np.where(live, np.clip(lam[..., None] * w, 0.0, 1.0), 0.0))
        fill = np.where((np.sum(d, axis=-1) <= cap)[..., None], 1.0, fill)
    return np.where(fill >= 1.0 - FILL_RES, 1.0, fill)


def snap_small(x, scale):
    """Leftover capacity below LEFTOVER_RES of its pool is 0."""
    return np.where(x > LEFTOVER_RES * scale, x, 0.0)


def serve_stage(d, w_dom, w_pool, avail, permit, friction):
    """One allocation stage: each region's cells from its own capacity, then the pool.

    d: (n, R, I) capacity units each cell needs; w_dom: (n, R, I) domestic weights;
    w_pool: (n, R, I) pool weights; avail: (n, R) capacity; permit: (n, R) 1 where the
    region's capacity may serve this stage; friction: (n, R) import friction of the users'
    region. Returns the fill (n, R, I) and the capacity left (n, R)."""
    n, R, I = d.shape
    own = avail * permit
    dom = waterfill(d, w_dom, own)
    left = snap_small(own - np.sum(d * dom, axis=-1), own)
    rest = d * (1.0 - dom)
    units = rest / np.maximum(1.0 - friction, 1e-12)[:, :, None]
    pool = left.sum(1)
    imp = waterfill(units.reshape(n, R * I), w_pool.reshape(n, R * I), pool).reshape(n, R, I)
    used = np.minimum(np.sum(units * imp, axis=(1, 2)), pool)
    # docs silent: pooled capacity is drawn from the permitted regions' leftovers in proportion
    with np.errstate(invalid="ignore", divide="ignore"):
        keep = np.where(pool > 0, np.clip(1.0 - used / np.where(pool > 0, pool, 1.0), 0.0, 1.0), 0.0)
    left_after = snap_small(left * keep[:, None], left)
    fill = dom + (1.0 - dom) * imp
    fill = np.where(fill >= 1.0 - FILL_RES, 1.0, fill)
    return fill, avail * (1 - permit) + left_after


def down_the_menu(Wg, avail, qc, tw, upw, access_w, hosts, friction):
    """Wanted tokens Wg (n, R, G, 3) of a group of tiers through the menu with capacity
    avail (n, R). Returns served tokens by class (n, R, G, 3), the base fill f (n, R, G),
    the upgrade fills g_M, g_F (n, R, G) and the capacity left."""
    n, R, G, _ = Wg.shape
    q_f, q_m, q_o = qc
    # base: every wanted token at the open class, from any region's capacity
    tokens = Wg.sum(-1)
    d = tokens * q_o[:, None, None]
    w_dom = np.broadcast_to(tw[:, None, :], d.shape)
    w_pool = access_w[:, :, None] * tw[:, None, :]
    f, avail = serve_stage(d, w_dom, w_pool, avail, np.ones_like(avail), friction)
    # upgrades: to mid (tier weight) and on to frontier (tier weight x upgrade_weight),
    # rationed together, from capacity that may host the labs' models
    dm = f * (Wg[..., M] + Wg[..., F]) * (q_m - q_o)[:, None, None]
    df = f * Wg[..., F] * (q_f - q_m)[:, None, None]
    du = np.concatenate([dm, df], axis=-1)  # (n, R, 2G)
    twu = np.concatenate([tw, tw * upw[:, None]], axis=-1)  # (n, 2G)
    g, avail = serve_stage(du, np.broadcast_to(twu[:, None, :], du.shape), access_w[:, :, None] * twu[:, None, :],
                      avail, hosts, friction)
    g_m, g_f = g[..., :G], g[..., G:]
    g_f = np.minimum(g_f, g_m)
    served = np.stack([f * g_f * Wg[..., F],
                       f * (g_m * (Wg[..., M] + Wg[..., F]) - g_f * Wg[..., F]),
                       f * (Wg[..., O] + (1.0 - g_m) * (Wg[..., M] + Wg[..., F]))], axis=-1)
    return served, f, g_m, g_f, avail


def lognormal_gini_sigma(g):
    return np.sqrt(2.0) * ndtri(0.5 * (1.0 + np.clip(g, 1e-6, 1 - 1e-6)))
