"""Mergeable reducers applied to each month's (trajectory, series) outputs inside the loop.

Quantile bands come from exact integer counts, in two passes over the same trajectories
(counter-based keys make a second pass reproduce the first exactly):

- pass A: a histogram of n_bins equal bins over [lo, lo + n_bins / inv_w) per series in a
  transformed space (log for positive quantities), with an underflow and an overflow bin;
  plus per-block moments, the per-series min/max and the non-finite count.
- refine (pass B, and pass C where needed): for each series and target quantile, the one
  bin that holds the target rank is split into n_sub sub-bins and counted again, with the
  min and max of the values in it (so that tied values are reported exactly).

Counts are integers and blocks have a fixed size aligned to global trajectory indices, so
merging chunks, devices or hosts is exact and independent of how the run was split.
Values that are non-finite, or belong to padding trajectories, are left out and counted.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

TINY = 1e-30  # log-space floor: zeros of a positive quantity land at log(TINY)


def transform(x, log_mask):
    """Series values in the space where bins are equal: log for log-scale series."""
    return jnp.where(log_mask, jnp.log(jnp.maximum(x, TINY)), x)


def coarse_index(y, lo, inv_w, n_bins):
    """Bin of each value: 0 underflow, 1..n_bins regular, n_bins + 1 overflow."""
    v = jnp.clip((y - lo) * inv_w, -1.0, jnp.asarray(n_bins, y.dtype))
    return jnp.floor(v).astype(jnp.int32) + 1


def block_moments(x, ok, block: int):
    """Per block of `block` trajectories: count, mean, and M2 / scale^2 with its scale.

    M2 is computed around the block mean and divided by scale^2 (scale = max |x| in the
    block) so that squares of large quantities (tokens ~1e18) stay inside float32.
    """
    n, s = x.shape
    xb = jnp.where(ok, x, 0.0).reshape(n // block, block, s)
    okb = ok.reshape(n // block, block, s)
    count = jnp.sum(okb, axis=1).astype(x.dtype)
    mean = jnp.sum(xb, axis=1) / jnp.maximum(count, 1.0)
    scale = jnp.maximum(jnp.max(jnp.abs(xb), axis=1), TINY)
    dev = jnp.where(okb, (xb - mean[:, None, :]) / scale[:, None, :], 0.0)
    return count, mean, jnp.sum(dev * dev, axis=1), scale


def pass_a(x, y, valid, consts, config):
    """x: (traj, series) values; y: the same in bin space (transform); valid: (traj,)."""
    lo, inv_w = consts
    n_bins, block = config
    n, s = x.shape
    finite = jnp.isfinite(x)
    ok = valid[:, None] & finite
    b = coarse_index(y, lo, inv_w, n_bins)
    width = n_bins + 2
    flat = jnp.where(ok, b + width * jnp.arange(s, dtype=jnp.int32), s * width)
    hist = jnp.bincount(flat.ravel(), length=s * width + 1)[:-1].astype(jnp.int32)
    count, mean, m2, scale = block_moments(x, ok, block)
    return dict(
        hist=hist,
        count=count,
        mean=mean,
        m2=m2,
        scale=scale,
        ymin=jnp.min(jnp.where(ok, y, jnp.inf), axis=0),
        ymax=jnp.max(jnp.where(ok, y, -jnp.inf), axis=0),
        xmin=jnp.min(jnp.where(ok, x, jnp.inf), axis=0),
        xmax=jnp.max(jnp.where(ok, x, -jnp.inf), axis=0),
        nonfinite=jnp.sum(valid[:, None] & ~finite, axis=0).astype(jnp.int32),
    )


def refine(x, y, valid, consts, config):
    """Count the values of one chosen bin per (series, quantile) into finer sub-bins.

    consts: lo, inv_w (series, quantile) and n_layout () - the layout the chosen bin
    belongs to (n_layout is traced, so passes B and C share one compiled program);
    target (series, quantile) - the chosen bin's index in that layout (-1: none);
    sub_lo, sub_inv (series, quantile) - the chosen bin's own split into n_sub bins;
    eq_lo, eq_hi (series, quantile) - values (x space) whose exact repeats are counted.
    Both layouts index like coarse_index (0 under, 1..n regular, n + 1 over), so a bin
    refined here can be refined again by the next pass with the same code.
    """
    lo, inv_w, n_layout, target, sub_lo, sub_inv, eq_lo, eq_hi = consts
    (n_sub,) = config
    n, s = x.shape
    q = target.shape[1]
    ok = valid[:, None] & jnp.isfinite(x)
    y = y[:, :, None]
    match = (coarse_index(y, lo, inv_w, n_layout) == target) & ok[:, :, None]  # (traj, series, q)
    sub = coarse_index(y, sub_lo, sub_inv, n_sub)
    per_series = q * (n_sub + 2)
    flat = jnp.arange(s, dtype=jnp.int32)[:, None] * per_series + jnp.arange(q, dtype=jnp.int32) * (n_sub + 2) + sub
    flat = jnp.where(match, flat, s * per_series)
    counts = jnp.bincount(flat.ravel(), length=s * per_series + 1)[:-1].astype(jnp.int32)
    xm = x[:, :, None]
    return dict(
        counts=counts,
        bin_min=jnp.min(jnp.where(match, xm, jnp.inf), axis=0),
        bin_max=jnp.max(jnp.where(match, xm, -jnp.inf), axis=0),
        # Point masses at the extremes known from the pass before (e.g. exact zeros).
        n_eq_lo=jnp.sum(match & (xm == eq_lo), axis=0).astype(jnp.int32),
        n_eq_hi=jnp.sum(match & (xm == eq_hi), axis=0).astype(jnp.int32),
    )


def materialize(x, y, valid, consts, config):
    """Every value, padding masked as NaN: for tests on small runs only."""
    return jnp.where(valid[:, None], x, jnp.nan)


REDUCERS = {"pass_a": pass_a, "refine": refine, "materialize": materialize}
