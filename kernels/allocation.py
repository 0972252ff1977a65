"""Allocation and rationing of frontier capacity.

Tiers are served in priority order (trusted, enterprise, consumer); each takes what it
needs from what the tiers before it left. A tier whose demand exceeds what is left takes
all of it, so tier k is offered R_k = max(0, C - sum_{k' < k} D_k') of capacity C, where
D_k is tier k's total demand: every tier can be solved at once. Within a rationed tier,
region r gets the fill fraction f_r = min(1, lambda w_r) of its demand d_r (served in
proportion to demand times access weight, capped at the demand), with lambda solving
sum_r d_r min(1, lambda w_r) = R_k. The sum is piecewise linear in lambda with kinks at
1/w_r, so lambda is exact: find the last kink below R_k, then solve the linear piece.
Unserved demand falls back to a lagging model (its cost and lag are in simulate.py).
"""
from __future__ import annotations

import jax.numpy as jnp


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
