"""Staged release, security restrictions and scheduled policy windows.

Staged release. Each frontier generation reaches the trusted tier first and the public
W months later (W = release_window); while a security restriction holds, the generations
released then wait W_R = max(restrict_window, W) months. Generations have memory: the
public's gap G (months its newest frontier release trails the trusted tier's) moves as
    restricted:      G(t+1) = min(max(W, n, G + 1 if G > W), W_R)
    not restricted:  G(t+1) = W                    once n > W,
                     G(t+1) = min(G + 1, W_R)      before,
where n is the months the current state has lasted, this one included (the first month of
a restriction counts u, the part of it left after the restriction began). Generation r
reaches the public at r + w(r); the newest generation released before a restriction keeps
the gap at W until the restriction has lasted W months, after which it grows a month a
month (n), plateaus at W_R, and ends W months after the restriction does: the first
generation released after the end reaches the public then. G = W at the start. This is the
generation count exactly (tests/kernels/test_release.py) except when a restriction begins again
within W months of the last one's end (the third term then carries the gap on).
The cells a release is withheld from (blocked) are every tier but trusted, and trusted
too where the region has no trusted access; their frontier class lags by G, and the mid
class distilled from it by at least G (menu.py).

Restriction (a two-state Markov chain, one step a month):
    not restricted -> restricted      with probability h  = restrict_hazard
    restricted     -> not restricted  with probability 1/D, D = restrict_duration
u in (0, 1) is the part of the month left after the restriction began (uniform: it can
start on any day). A Bernoulli(p) event is drawn as z < Phi^{-1}(p) from a standard normal
z, so every month consumes the same shocks whatever the probabilities (common random
numbers); given the event, u = Phi(z) / p is uniform on (0, 1), so the start time needs no
extra draw.
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


SINCE_CAP = 1e4  # months: n is only ever compared with W <= 1200


def restriction_step(p: Params, restricted, z_start, z_end):
    """Advance the restriction chain one month; returns (restricted (bool), u: the part of
    the month left after a restriction began, in (0, 1))."""
    hazard = jnp.clip(p.restrict_hazard, 0.0, 1.0)
    starts = bernoulli(z_start, hazard)
    ends = bernoulli(z_end, 1.0 / jnp.maximum(p.restrict_duration, 1.0))
    now = jnp.where(restricted > 0, ~ends, starts)
    left = jnp.clip(ndtr(z_start) / jnp.maximum(hazard, 1e-30), 0.0, 1.0)
    return now, left


def release_step(p: Params, was, now, left, gap, since):
    """The public's gap one month on: (gap, since). was, now: restricted last month and
    this month (bool); left: u; gap: G; since: n, the months the current state had lasted
    before this one (SINCE_CAP at the start)."""
    w = p.release_window
    w_r = jnp.maximum(p.restrict_window, w)
    start = jnp.where(now & ~was, left, 1.0)  # the first month of a restriction counts u
    since = jnp.minimum(jnp.where(now != was, 0.0, since) + start, SINCE_CAP)  # n
    carried = jnp.where(gap > w, gap + 1.0, 0.0)  # the public's newest release ages a whole month
    restricted = jnp.minimum(jnp.maximum(jnp.maximum(w, since), carried), w_r)
    catching_up = jnp.minimum(gap + 1.0, w_r)
    gap = jnp.where(now, restricted, jnp.where(since > w, w, catching_up))
    return gap, since


def blocked(p: Params, n_tiers: int):
    """(region, tier) 1.0 where releases reach the users with the public (the staged
    release's window, longer under a restriction): every tier but trusted, and trusted too
    where the region has no trusted access (trusted_access = 0)."""
    r = p.trusted_access.shape[0]
    out = jnp.ones((r, n_tiers), p.trusted_access.dtype)
    return out.at[:, 0].set(1.0 - p.trusted_access)


def moratorium_active(p: Params, hit, t):
    """(region,) 1.0 where this trajectory's moratorium holds in month t."""
    return hit * window(p.moratorium_start, p.moratorium_end, t)
