"""Prices per tier and market clearing.

Unconstrained demand D1 (at scarcity multiplier 1) against capacity F sets the scarcity
multiplier
    m = clip((sum D1 / F)^(1/eps), 1, m_max),
the price a multiplier at which demand with elasticity eps would fit the capacity, capped
at what the market sustains. Tier k's frontier price and demand:
    price_k = c_F markup_k m^(pass_k),        D_rk = D1_rk m^(-eps pass_k).
Demand above capacity at m_max is rationed by allocation.py.
"""
from __future__ import annotations

import jax.numpy as jnp

from kernels.params import Params


def scarcity(p: Params, total_demand, capacity):
    ratio = total_demand / jnp.maximum(capacity, 1e-30)
    return jnp.clip(ratio ** (1.0 / p.elasticity), 1.0, jnp.maximum(p.scarcity_cap, 1.0))


def tier_prices(p: Params, frontier_cost, multiplier):
    """(tier,) price of frontier tokens [USD/1M tokens]."""
    return frontier_cost * p.markup * multiplier**p.scarcity_passthrough


def respond(p: Params, demand1, multiplier):
    """(region, tier) demand after the scarcity price response."""
    return demand1 * multiplier ** (-p.elasticity * p.scarcity_passthrough)
