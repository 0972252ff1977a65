"""Prices per tier from market clearing, with partial pass-through.

Frontier demand D1 (at multiplier 1, from users with access) against the capacity that may
serve the frontier, F, sets the market-clearing multiplier
    m = max(1, (sum D1 / F)^(1/eps)),
the price multiplier at which demand with elasticity eps would fit the capacity: no cap.
Tier k passes the share pass_k (in log terms) of it on; what the price does not clear is
rationed (allocation.py):
    price_k = c_F markup_k m^(pass_k),        D_rk = D1_rk m^(-eps pass_k).
"""
from __future__ import annotations

import jax.numpy as jnp

from kernels.params import Params


def scarcity(p: Params, total_demand, capacity):
    ratio = total_demand / jnp.maximum(capacity, 1e-30)
    return jnp.maximum(ratio, 1.0) ** (1.0 / p.elasticity)


def tier_prices(p: Params, frontier_cost, multiplier):
    """(tier,) price of frontier tokens [USD/1M tokens]."""
    return frontier_cost * p.markup * multiplier**p.scarcity_passthrough


def respond(p: Params, demand1, multiplier):
    """(region, tier) demand after the scarcity price response."""
    return demand1 * multiplier ** (-p.elasticity * p.scarcity_passthrough)
