"""Security restrictions and scheduled policy windows.

Restriction (a two-state Markov chain, one step a month):
    not restricted -> restricted      with probability h  = restrict_hazard
    restricted     -> not restricted  with probability 1/D, D = restrict_duration
While restricted, non-trusted tiers (and trusted tiers in regions without trusted access)
lose the frontier: their frontier demand goes to lagging models, the best of which is the
last public release, frozen months behind, or an open-weight model, whichever is nearer,
    freeze(t+1) = freeze(t) + 1  while restricted,   u  in the month it starts,   0 otherwise,
where u in (0, 1) is the part of the month left after the restriction began (uniform: a
restriction can start on any day). A Bernoulli(p) event is drawn as z < Phi^{-1}(p) from a
standard normal z, so every month consumes the same shocks whatever the probabilities
(common random numbers); given the event, u = Phi(z) / p is uniform on (0, 1), so the
start time needs no extra draw.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import ndtr, ndtri

from kernels.params import Params


def bernoulli(z, p):
    """True with probability p, from a standard normal z."""
    return z < ndtri(jnp.clip(p, 0.0, 1.0))


def window(start, end, t):
    """1.0 for months t with start <= t < end."""
    return ((t >= start) & (t < end)).astype(jnp.result_type(t))


def restriction_step(p: Params, restricted, freeze_months, z_start, z_end):
    """Advance the restriction chain one month; returns (restricted, freeze_months)."""
    hazard = jnp.clip(p.restrict_hazard, 0.0, 1.0)
    starts = bernoulli(z_start, hazard)
    ends = bernoulli(z_end, 1.0 / jnp.maximum(p.restrict_duration, 1.0))
    was = restricted > 0
    now = jnp.where(was, ~ends, starts)
    left = jnp.clip(ndtr(z_start) / jnp.maximum(hazard, 1e-30), 0.0, 1.0)  # part of the month left
    frozen = jnp.where(now, jnp.where(was, freeze_months + 1.0, left), 0.0)
    return now.astype(freeze_months.dtype), frozen


def blocked(p: Params, n_tiers: int):
    """(region, tier) 1.0 where a restricted release is withheld: every tier but trusted,
    and trusted too where the region has no trusted access (trusted_access = 0)."""
    r = p.trusted_access.shape[0]
    out = jnp.ones((r, n_tiers), p.trusted_access.dtype)
    return out.at[:, 0].set(1.0 - p.trusted_access)


def moratorium_active(p: Params, hit, t):
    """(region,) 1.0 where this trajectory's moratorium holds in month t."""
    return hit * window(p.moratorium_start, p.moratorium_end, t)
