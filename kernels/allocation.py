"""Allocation and rationing of frontier capacity.

Tiers are served in priority order (trusted, enterprise, consumer); each takes what it
needs from what the tiers before it left. Within a rationed tier, region r gets the fill
fraction f_r = min(1, lambda w_r) of its demand d_r (served in proportion to demand times
access weight, capped at the demand), with lambda solving sum_r d_r min(1, lambda w_r) = C.
The sum is piecewise linear in lambda with kinks at 1/w_r, so lambda is exact: find the
last kink below capacity, then solve the linear piece. Unserved demand falls back to a
lagging model (its cost and lag are accounted for in simulate.py).
"""
from __future__ import annotations

import jax.numpy as jnp


def waterfill(demand, weight, capacity):
    """(region,) fill fraction of one tier's demand served from `capacity`.

    Exactly 1.0 where a region is fully served, so shortfalls derived from it are exactly 0.
    """
    w = jnp.maximum(weight, 0.0)
    kinks = jnp.where(w > 0, 1.0 / jnp.maximum(w, 1e-30), jnp.inf)  # lambda at which r is full
    # Total served at each kink: sum_r d_r min(1, kink_j w_r), shape (j,).
    at_kink = jnp.sum(demand[None, :] * jnp.minimum(1.0, kinks[:, None] * w[None, :]), axis=1)
    at_kink = jnp.where(jnp.isfinite(kinks), at_kink, jnp.inf)
    below = at_kink <= capacity
    lam_lo = jnp.max(jnp.where(below, kinks, 0.0))
    full = kinks <= lam_lo
    slope = jnp.sum(jnp.where(full, 0.0, demand * w))
    lam = (capacity - jnp.sum(jnp.where(full, demand, 0.0))) / jnp.maximum(slope, 1e-30)
    fill = jnp.where(full, 1.0, jnp.clip(lam * w, 0.0, 1.0))
    # Rounding must never serve more than the capacity.
    total = jnp.sum(demand * fill)
    fill = fill * jnp.minimum(1.0, capacity / jnp.maximum(total, 1e-30))
    return jnp.where(jnp.sum(demand) <= capacity, 1.0, fill)


def allocate(demand, weight, capacity):
    """(region, tier) fill fractions, tiers in priority order along the last axis."""
    remaining = capacity
    columns = []
    for k in range(demand.shape[-1]):
        fill = waterfill(demand[:, k], weight, remaining)
        remaining = jnp.maximum(remaining - jnp.sum(demand[:, k] * fill), 0.0)
        columns.append(fill)
    return jnp.stack(columns, axis=-1)
