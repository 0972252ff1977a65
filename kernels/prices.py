"""List prices: sticky, and bounded by substitution.

Each tier k and class c has a list price that moves toward a target with half-life
price_halflife (prices change at releases and repricings, not every month):
    log P_kc(t) = log P_kc(t - 1) + kappa (log target_kc - log P_kc(t - 1)),
    kappa = 1 - 2^(-dt / price_halflife).
Targets: cost times the tier's markup, c_F q_c markup_k (menu.py: q_c). The frontier adds a
scarcity premium m^(pass_k), m = max(1, U / K)^(1/eps) (U: the compute all wanted tokens
need, K: the capacity), but its premium over the mid class is bounded by what users pay for
capability:
    target_kF = min(c_F markup_k m^(pass_k), premium_max target_kM).
Both targets obey the bound and the update is a convex combination of log prices, so the
frontier-to-mid ratio never exceeds premium_max. Scarcity beyond the bound is rationing
(allocation.py), reported as unmet demand, not as price.
"""
from __future__ import annotations

import jax.numpy as jnp

from kernels.params import Params


def scarcity(p: Params, units_wanted, capacity):
    """The market-clearing multiplier m >= 1 for compute wanted over capacity."""
    ratio = units_wanted / jnp.maximum(capacity, 1e-30)
    return jnp.maximum(ratio, 1.0) ** (1.0 / p.elasticity)


def targets(p: Params, frontier_cost, q, multiplier):
    """(tier, class) target list prices [USD/1M tokens]; q: (class,) compute per token."""
    base = frontier_cost * q[None, :] * p.markup[:, None]
    front = jnp.minimum(base[:, 0] * multiplier**p.scarcity_passthrough, p.premium_max * base[:, 1])
    return base.at[:, 0].set(front)


def sticky(p: Params, log_price, target, dt):
    """This month's log list prices, moved from log_price toward target."""
    kappa = 1.0 - jnp.exp2(-dt / p.price_halflife)
    return log_price + kappa * (jnp.log(target) - log_price)
