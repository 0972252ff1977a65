"""Allocation: regional pools, reserved guarantees, trade, and the fall to lagging models.

Frontier demand E_rk (region r, tier k; only users with frontier access, not withheld by a
restriction, not priced out) is served in four steps, each by tier priority (trusted,
enterprise, consumer: a tier takes what the tiers before it left):
1. Guarantees: region s's reserve is guarantee_s of the home regions' frontier capacity
   (from guarantee_start on; scaled down if the shares add up to more than 1). It serves
   s first; what s does not use goes back to the home regions.
2. Domestic: each region that may host the frontier (hosts_frontier) serves its own users
   with what is left of its capacity.
3. Trade: hosts' leftovers form one export pool. Region s's remaining demand costs
   1 / (1 - import_friction_s) of capacity per token delivered (friction: sovereignty and
   latency losses). The pool serves it by tier priority and, within a rationed tier, in
   proportion to demand times access_weight (exact water-filling, below). Permissions are
   the table perm[r, s] = hosts_frontier_r x frontier_access_s: with the default flags US
   frontier capacity (and every host's) never serves China, whose users get its own stack.
4. Lagging: every frontier token wanted but not served as frontier (priced out, withheld,
   no access, rationed) is wanted from the best lagging model instead, at rho_rk of the
   frontier's compute per token (its cost ratio). Each region's leftover capacity (all of
   it where it may not host the frontier) serves its own lagging demand first; the rest is
   pooled (open weights cross borders), with the same friction.
Water-filling within a rationed tier: region r gets the fill fraction f_r = min(1, lambda
w_r) of its demand d_r, with lambda solving sum_r d_r min(1, lambda w_r) = R_k. The sum is
piecewise linear in lambda with kinks at 1/w_r, so lambda is exact: find the last kink
below R_k, then solve the linear piece.
"""
from __future__ import annotations

import jax.numpy as jnp

SNAP = 1e-3  # relative size below which a leftover counts as zero
FULL = 1e-5  # a fill fraction within this of 1 counts as full
RESOLUTION = 1e-6  # lagging tokens below this share of a region's demand are zero


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


def allocate(demand, weight, capacity):
    """(region, tier) fill fractions, tiers in priority order along the last axis."""
    tier_total = jnp.sum(demand, axis=0)
    before = jnp.cumsum(tier_total) - tier_total  # demand of the tiers ahead of each
    offered = jnp.maximum(capacity - before, 0.0)
    return waterfill(demand, weight, offered)


def by_priority(demand, capacity):
    """(region, tier) served from each region's own capacity (region,), tiers in order."""
    before = jnp.cumsum(demand, axis=1) - demand
    return jnp.minimum(demand, jnp.maximum(capacity[:, None] - before, 0.0))


def pooled(need, weight, friction, pool):
    """(region, tier) delivered from a shared pool to demand `need`, and the capacity used.

    Delivering one token to region r uses 1 / (1 - friction_r) of the pool."""
    cost = 1.0 / jnp.maximum(1.0 - friction, 1e-6)
    units = need * cost[:, None]
    fill = allocate(units, weight, pool)
    fill = jnp.where(fill >= 1.0 - FULL, 1.0, fill)  # float32 water-filling lands within ~1e-6 of full
    return need * fill, jnp.minimum(jnp.sum(units * fill), pool)


def snap(left, scale):
    """Leftover capacity below 1e-3 of `scale` is none at all: so that float32
    rounding residue of a fully used pool (water-filling leaves up to ~1e-4) never serves anyone."""
    return jnp.where(left > SNAP * scale, left, 0.0)


def _share_out(left, used):
    """Take `used` from the leftovers `left` (region,) in proportion to them."""
    total = jnp.sum(left)
    return left * jnp.clip(1.0 - used / jnp.maximum(total, 1e-30), 0.0, 1.0)


def frontier(p, eligible, capacity, guarantee_on):
    """(frontier tokens, shortfall, leftover capacity (region,)) after steps 1-3.

    shortfall (region, tier): eligible demand not served, exactly 0 where it all was."""
    hosts = p.hosts_frontier
    cap = capacity * hosts
    home = cap * p.frontier_home
    home_total = jnp.sum(home)
    g = p.guarantee * guarantee_on
    reserve = g / jnp.maximum(jnp.sum(g), 1.0) * home_total  # (region,) held for each region
    from_reserve = by_priority(eligible, reserve)
    unused = jnp.sum(reserve) - jnp.sum(from_reserve)
    home_share = home / jnp.maximum(home_total, 1e-30)
    own = cap - home_share * jnp.sum(reserve)
    need = eligible - from_reserve
    domestic = by_priority(need, own)
    left = snap(own - jnp.sum(domestic, axis=1), own) + snap(home_share * unused, home_share * jnp.sum(reserve))
    need = need - domestic
    imported, used = pooled(need, p.access_weight, p.import_friction, jnp.sum(left))
    served = from_reserve + domestic + imported
    left = snap(_share_out(left, used), left)
    return served, need - imported, left + capacity * (1.0 - hosts)


def lagging(p, wanted, rho, left, demand):
    """(region, tier) lagging tokens served to `wanted` from the leftovers (region,);
    rho (region, tier): compute per lagging token over the frontier's; demand (region,):
    each region's whole token demand, the scale of the output's resolution."""
    need = wanted * rho
    domestic = by_priority(need, left)
    rest = need - domestic
    pool = jnp.sum(snap(left - jnp.sum(domestic, axis=1), left))
    imported, _ = pooled(rest, p.access_weight, p.import_friction, pool)
    frac = jnp.where(need > 0, (domestic + imported) / jnp.maximum(need, 1e-30), 0.0)
    served = wanted * jnp.clip(frac, 0.0, 1.0)
    # Resolution: lagging tokens below 1e-6 of the region's whole demand are float32 residue
    # of differences of much larger numbers (fused differently under jit), not supply.
    return jnp.where(served > RESOLUTION * demand[:, None], served, 0.0)
