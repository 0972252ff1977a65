"""Allocation: one regional capacity serves every class of the menu.

Wanted tokens W_rkc (region r, tier k, class c; menu.py) need q_c of capacity each
(frontier-token units; q_O <= q_M <= 1). Capacity K_r is each region's. Service:
1. Guarantees: region s's reserve is guarantee_s of the home regions' capacity (from
   guarantee_start on; scaled down if the shares add up to more than 1). It serves s's
   wanted tokens at their chosen classes, tiers in priority order; what s does not use goes
   back to the home regions.
2. Contracts: the trusted tier, through the menu below, before anyone else.
3. Everyone else (enterprise, consumer), through the menu with what is left.
The menu moves rationed tokens down it, so that a token goes unserved only when not even
the cheapest class has capacity:
  a. base: every wanted token at the open class (q_O of capacity), from any region;
  b. upgrade to mid: the served tokens that want mid or frontier, (q_M - q_O) more each,
     only from capacity that may host the labs' models (hosts_frontier);
  c. upgrade to frontier: those that want the frontier, (q_F - q_M) more each, likewise.
  Each stage fills the fraction f (base), g_M, g_F of its cells, and then
    served_F = f g_M g_F W_F,  served_M = f g_M (W_M + (1 - g_F) W_F),
    served_O = f (W_O + (1 - g_M)(W_M + W_F)).
Each stage serves a region's cells from its own capacity first (tiers water-filled by
tier_weight, not in strict order), then from the pool of every permitted region's
leftovers: delivering a unit to region r costs 1 / (1 - import_friction_r) of the pool, and
a rationed pool is water-filled over cells by access_weight_r tier_weight_k.
Water-filling: cell i gets the fill fraction f_i = min(1, lambda w_i) of its demand d_i,
with lambda solving sum_i d_i min(1, lambda w_i) = R. The sum is piecewise linear in lambda
with kinks at 1/w_i, so lambda is exact: find the last kink below R, then solve the linear
piece.
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

SNAP = 1e-3  # relative size below which a leftover counts as zero
FULL = 1e-5  # a fill fraction within this of 1 counts as full
RESOLUTION = 1e-6  # class tokens (and unserved shares) below this share of a cell's are float32 residue


class Allocation(NamedTuple):
    """What a month's capacity serves: `served` (region, tier, class) tokens, and
    `at_choice` (region, tier), the tokens served at the class each cell chose."""

    served: object
    at_choice: object


def waterfill(demand, weight, capacity):
    """Fill fractions of demand (region, ...) served from capacity (...): region first.

    Exactly 1.0 where a tier is fully served, so shortfalls derived from it are exactly 0.
    """
    w = jnp.maximum(weight, 0.0)
    kinks = jnp.where(w > 0, 1.0 / jnp.maximum(w, 1e-30), jnp.inf)  # lambda at which r is full
    # Share of region r's demand served at kink j: min(1, w_r / w_j); (j, r).
    share = jnp.where(jnp.isfinite(kinks)[:, None], jnp.minimum(1.0, kinks[:, None] * w[None, :]), 0.0)
    # (j, ...): total served at kink j. A broadcast sum, not a matmul: XLA runs tiny batched
    # matmuls far slower than elementwise code.
    at_kink = jnp.sum(share.reshape(share.shape + (1,) * (demand.ndim - 1)) * demand[None], axis=1)
    at_kink = jnp.where(jnp.isfinite(kinks).reshape(kinks.shape + (1,) * (demand.ndim - 1)), at_kink, jnp.inf)
    below = at_kink <= capacity
    kink_b = kinks.reshape(at_kink.shape[:1] + (1,) * (demand.ndim - 1))
    lam_lo = jnp.max(jnp.where(below, kink_b, 0.0), axis=0)
    full = kink_b <= lam_lo  # (region, ...): regions full at lam_lo
    wb = w.reshape(kink_b.shape)
    slope = jnp.sum(jnp.where(full, 0.0, demand * wb), axis=0)
    lam = (capacity - jnp.sum(jnp.where(full, demand, 0.0), axis=0)) / jnp.maximum(slope, 1e-30)
    part = jnp.where(full, 0.0, jnp.clip(lam * wb, 0.0, 1.0))
    # Rounding must never serve more than the capacity: trim the partly served regions only,
    # so that full regions stay exactly 1.0 (and their shortfall exactly 0).
    left = capacity - jnp.sum(jnp.where(full, demand, 0.0), axis=0)
    trim = jnp.clip(left / jnp.maximum(jnp.sum(demand * part, axis=0), 1e-30), 0.0, 1.0)
    fill = jnp.where(full, 1.0, part * trim)
    return jnp.where(jnp.sum(demand, axis=0) <= capacity, 1.0, fill)


def by_priority(demand, capacity):
    """(region, tier) served from each region's own capacity (region,), tiers in order."""
    before = jnp.cumsum(demand, axis=1) - demand
    return jnp.minimum(demand, jnp.maximum(capacity[:, None] - before, 0.0))


def snap(left, scale):
    """Leftover capacity below 1e-3 of `scale` is none at all: so that float32
    rounding residue of a fully used pool (water-filling leaves up to ~1e-4) never serves anyone."""
    return jnp.where(left > SNAP * scale, left, 0.0)


def _share_out(left, used):
    """Take `used` from the leftovers `left` (region,) in proportion to them."""
    total = jnp.sum(left)
    return left * jnp.clip(1.0 - used / jnp.maximum(total, 1e-30), 0.0, 1.0)


def stage(units, item_weight, region_weight, friction, left, may):
    """One stage: (fill (region, item), leftover capacity (region,)).

    units: (region, item) capacity wanted (items: tiers, or tiers by upgrade); item_weight:
    (item,); left: (region,) capacity left; may: (region,) 1.0 where the region's capacity
    may serve this stage. A cell wanting nothing is full."""
    own = left * may
    dom = units * waterfill(units.T, item_weight, own).T
    own_left = snap(own - jnp.sum(dom, axis=1), own)
    rest = units - dom
    cost = 1.0 / jnp.maximum(1.0 - friction, 1e-6)
    need = (rest * cost[:, None]).reshape(-1)
    weight = (region_weight[:, None] * item_weight[None, :]).reshape(-1)
    pool = jnp.sum(own_left)
    f = waterfill(need, weight, pool)
    f = jnp.where(f >= 1.0 - FULL, 1.0, f)  # float32 water-filling lands within ~1e-6 of full
    used = jnp.minimum(jnp.sum(need * f), pool)
    served = dom + rest * f.reshape(rest.shape)
    fill = jnp.where(units > 0, jnp.clip(served / jnp.maximum(units, 1e-30), 0.0, 1.0), 1.0)
    fill = jnp.where(fill >= 1.0 - FULL, 1.0, fill)
    new_left = left - own + snap(_share_out(own_left, used), own_left)
    return fill, new_left


def menu(p, want, q, left, tier_weight):
    """(served (region, tier, class), served at the class chosen (region, tier), leftover
    capacity (region,)) for wanted tokens `want` (region, tier, class): the base stage, then
    the upgrades."""
    hosts = p.hosts_frontier
    args = (p.access_weight, p.import_friction)
    w_f, w_m, w_o = want[..., 0], want[..., 1], want[..., 2]
    f, left = stage((w_f + w_m + w_o) * q[2], tier_weight, *args, left, jnp.ones_like(hosts))
    n = tier_weight.shape[0]
    ups = jnp.concatenate([f * (w_f + w_m) * (q[1] - q[2]), f * w_f * (q[0] - q[1])], axis=1)
    g, left = stage(ups, jnp.concatenate([tier_weight, tier_weight * p.upgrade_weight]), *args, left, hosts)
    g_m = g[:, :n]
    g_f = jnp.minimum(g[:, n:], g_m)
    served = jnp.stack([f * g_f * w_f, f * (g_m * (w_m + w_f) - g_f * w_f),
                        f * (w_o + (1.0 - g_m) * (w_f + w_m))], axis=-1)
    return served, f * (g_f * w_f + g_m * w_m + w_o), left


def serve(p, want, q, capacity, guarantee_on) -> Allocation:
    """The Allocation after steps 1-3."""
    units = jnp.sum(want * q, axis=-1)  # (region, tier)
    home = capacity * p.hosts_frontier * p.frontier_home
    home_total = jnp.sum(home)
    g = p.guarantee * guarantee_on
    reserve = g / jnp.maximum(jnp.sum(g), 1.0) * home_total  # (region,) held for each region
    from_reserve = by_priority(units, reserve)
    unused = jnp.sum(reserve) - jnp.sum(from_reserve)
    home_share = home / jnp.maximum(home_total, 1e-30)
    left = capacity - home_share * jnp.sum(reserve) + snap(home_share * unused, home_share * jnp.sum(reserve))
    frac = jnp.where(units > 0, jnp.clip(from_reserve / jnp.maximum(units, 1e-30), 0.0, 1.0), 0.0)
    reserved = want * frac[..., None]
    rest = want - reserved
    trusted = jnp.zeros(rest.shape[1], rest.dtype).at[0].set(1.0)[None, :, None]
    contract, chosen_c, left = menu(p, rest * trusted, q, left, p.tier_weight)
    public, chosen_p, _ = menu(p, rest * (1.0 - trusted), q, left, p.tier_weight)
    served = reserved + contract + public
    # Resolution: class tokens below 1e-6 of the cell's wanted tokens are float32 residue of
    # fills near 0 or 1 (differences of much larger numbers), not supply.
    served = jnp.where(served > RESOLUTION * jnp.sum(want, axis=-1, keepdims=True), served, 0.0)
    return Allocation(served, jnp.minimum(jnp.sum(reserved, axis=-1) + chosen_c + chosen_p, jnp.sum(served, axis=-1)))
