"""Security restrictions and scheduled policy windows.

Restriction (a two-state Markov chain, one step a month):
    not restricted -> restricted      with probability h  = restrict_hazard
    restricted     -> not restricted  with probability 1/D, D = restrict_duration
While restricted, the public frontier is frozen: non-trusted tiers (and trusted tiers in
regions without trusted access) fall one month further behind each month,
    freeze(t+1) = freeze(t) + 1 if restricted else 0.
A Bernoulli(p) event is drawn as z < Phi^{-1}(p) from a standard normal z, so every month
consumes the same shocks whatever the probabilities (common random numbers).
"""
from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import ndtri

from kernels.params import Params


def bernoulli(z, p):
    """True with probability p, from a standard normal z."""
    return z < ndtri(jnp.clip(p, 0.0, 1.0))


def window(start, end, t):
    """1.0 for months t with start <= t < end."""
    return ((t >= start) & (t < end)).astype(jnp.result_type(t))


def restriction_step(p: Params, restricted, freeze_months, z_start, z_end):
    """Advance the restriction chain one month; returns (restricted, freeze_months)."""
    starts = bernoulli(z_start, p.restrict_hazard)
    ends = bernoulli(z_end, 1.0 / jnp.maximum(p.restrict_duration, 1.0))
    now = jnp.where(restricted > 0, ~ends, starts).astype(freeze_months.dtype)
    return now, jnp.where(now > 0, freeze_months + 1.0, 0.0)


def frozen_lag(p: Params, freeze_months, n_tiers: int):
    """(region, tier) months behind the frontier caused by restrictions.

    Tier 0 (trusted) keeps frontier access where trusted_access is 1.
    """
    lag = jnp.broadcast_to(freeze_months, (p.trusted_access.shape[0], n_tiers))
    return lag.at[:, 0].multiply(1.0 - p.trusted_access)


def moratorium_active(p: Params, hit, t):
    """(region,) 1.0 where this trajectory's moratorium holds in month t."""
    return hit * window(p.moratorium_start, p.moratorium_end, t)
