"""Mergeable reducers applied to each month's (trajectory, series) outputs inside the loop.

Quantile bands come from exact integer counts over passes of the same trajectories
(counter-based keys and one compiled batch shape make every pass reproduce the values bit
for bit):

- pass A: a histogram of n_bins equal bins over [lo, lo + n_bins / inv_w) per series in a
  transformed space (log for positive quantities), with an underflow and an overflow bin;
  plus the batch's moments, the per-series min/max, the non-finite count, and the exact
  counts behind the probabilities (values > 0, == 0, > the trajectory's first month).
- keep (small runs instead of all the passes): pass A's outputs plus every value, from
  which the host reads exact order statistics.
- refine (pass B, and pass C where needed): the bins that hold target quantiles ("slots")
  are split into n_sub sub-bins and counted again, with the min and max of the values in
  every sub-bin, so that a reported quantile is always one of the simulated values.

Sub-bin layout of a slot (width n_sub + 4), in value order:
    0: values equal to eq_lo (a known point mass at the bottom: the series' minimum in
       pass B, the refined sub-bin's minimum in pass C), 1: underflow, 2..n_sub + 1: the
    n_sub equal sub-bins, n_sub + 2: overflow, n_sub + 3: values equal to eq_hi.
Counts are integers and min/max are exact, so merging batches, devices or hosts is exact
and independent of how the run was split. Non-finite values and padding trajectories are
left out and counted.
"""
from __future__ import annotations

import jax.numpy as jnp

TINY = 1e-30  # log-space floor: zeros of a positive quantity land at log(TINY)
LOG_TINY = -69.07755  # log(TINY) in float32


def transform(x, log_mask):
    """Series values in the space where bins are equal: log for log-scale series."""
    return jnp.where(log_mask, jnp.log(jnp.maximum(x, TINY)), x)


def coarse_index(y, lo, inv_w, n_bins):
    """Bin of each value: 0 underflow, 1..n_bins regular, n_bins + 1 overflow."""
    v = jnp.clip((y - lo) * inv_w, -1.0, jnp.asarray(n_bins, y.dtype))
    return jnp.floor(v).astype(jnp.int32) + 1


def moments(x, ok):
    """Over the batch, per series: count, mean, and M2 / scale^2 with its scale.

    M2 is taken around the batch mean and divided by scale^2 (scale = max |x|) so that
    squares of large quantities (tokens ~1e18) stay inside float32.
    """
    xz = jnp.where(ok, x, 0.0)
    count = jnp.sum(ok, axis=0).astype(x.dtype)
    mean = jnp.sum(xz, axis=0) / jnp.maximum(count, 1.0)
    scale = jnp.maximum(jnp.max(jnp.abs(xz), axis=0), TINY)
    dev = jnp.where(ok, (xz - mean) / scale, 0.0)
    return count, mean, jnp.sum(dev * dev, axis=0), scale


def pass_a(x, y, x0, valid, consts, config):
    """x: (traj, series) values; y: the same in bin space (transform); x0: each
    trajectory's first-month values; valid: (traj,).

    Besides the histogram and moments, exact counts of values above zero (P(>0): for a
    difference series, P(higher)), equal to zero (for a difference, P(equal)) and above
    the trajectory's first month (P(widening) for a gap measure)."""
    lo, inv_w = consts
    (n_bins,) = config
    n, s = x.shape
    finite = jnp.isfinite(x)
    ok = valid[:, None] & finite
    b = coarse_index(y, lo, inv_w, n_bins)
    width = n_bins + 2
    flat = jnp.where(ok, b + width * jnp.arange(s, dtype=jnp.int32), s * width)
    hist = jnp.bincount(flat.ravel(), length=s * width + 1)[:-1].astype(jnp.int32)
    count, mean, m2, scale = moments(x, ok)
    return dict(
        hist=hist,
        count=count,
        mean=mean,
        m2=m2,
        scale=scale,
        # Smallest value above the log floor: where the lowest bins start when zeros are a
        # point mass of a log-scale series.
        ymin_above=jnp.min(jnp.where(ok & (y > LOG_TINY + 1.0), y, jnp.inf), axis=0),
        xmin=jnp.min(jnp.where(ok, x, jnp.inf), axis=0),
        xmax=jnp.max(jnp.where(ok, x, -jnp.inf), axis=0),
        nonfinite=jnp.sum(valid[:, None] & ~finite, axis=0).astype(jnp.int32),
        positive=jnp.sum(ok & (x > 0), axis=0).astype(jnp.int32),
        zero=jnp.sum(ok & (x == 0), axis=0).astype(jnp.int32),
        above_start=jnp.sum(ok & (x > x0), axis=0).astype(jnp.int32),
    )


def refine(x, y, x0, valid, consts, config):
    """Count the values of the chosen bins into sub-bins, with each sub-bin's min and max.

    consts (per month): pass B gives the first seven, pass C all twelve:
      lo, inv_w (series,): pass A's layout; table (series, n_bins + 2): pass-A bin -> slot
      (-1: none); b_lo, b_inv, b_eq_lo, b_eq_hi (series, slot): each slot's split into
      n_sub sub-bins and its point masses; then, for pass C, table2 (series, slot,
      n_sub + 4): sub-bin -> final slot (-1: none), and c_lo, c_inv, c_eq_lo, c_eq_hi
      (series, slot): the final slot's split and point masses.
    config: (n_bins, n_sub).
    """
    lo, inv_w, table, b_lo, b_inv, b_eq_lo, b_eq_hi = consts[:7]
    n_bins, n_sub = config
    n, s = x.shape
    q = b_lo.shape[1]
    width = n_sub + 4
    ok = valid[:, None] & jnp.isfinite(x)
    col = jnp.arange(s, dtype=jnp.int32)[None, :]
    slot = table[col, coarse_index(y, lo, inv_w, n_bins)]
    k = jnp.maximum(slot, 0)
    sub = layout_index(x, y, b_lo[col, k], b_inv[col, k], b_eq_lo[col, k], b_eq_hi[col, k], n_sub)
    final = slot
    if len(consts) > 7:  # pass C: one sub-bin of a slot, split again
        table2, c_lo, c_inv, c_eq_lo, c_eq_hi = consts[7:]
        final = jnp.where(slot >= 0, table2[col, k, sub], -1)
        k = jnp.maximum(final, 0)
        sub = layout_index(x, y, c_lo[col, k], c_inv[col, k], c_eq_lo[col, k], c_eq_hi[col, k], n_sub)
    dump = s * q * width
    flat = jnp.where(ok & (final >= 0), (col * q + k) * width + sub, dump).ravel()
    xs = x.ravel()
    return dict(
        counts=jnp.bincount(flat, length=dump + 1)[:-1].astype(jnp.int32),
        sub_min=jnp.full((dump + 1,), jnp.inf, x.dtype).at[flat].min(xs)[:-1],
        sub_max=jnp.full((dump + 1,), -jnp.inf, x.dtype).at[flat].max(xs)[:-1],
    )


def layout_index(x, y, lo, inv_w, eq_lo, eq_hi, n_sub):
    """Index in a slot layout (see the module docstring).

    Pass C's first level indexes with pass B's consts and this same rule, so a sub-bin
    chosen after pass B holds exactly the values it held there.
    """
    i = coarse_index(y, lo, inv_w, n_sub) + 1
    return jnp.where(x == eq_lo, 0, jnp.where(x == eq_hi, n_sub + 3, i))


def keep(x, y, x0, valid, consts, config):
    """pass_a's outputs plus every value, (series, traj) with padding and non-finite values
    as NaN: for a run small enough that the host keeps all its values and reads exact order
    statistics (one pass). Series lead so that the host appends each batch contiguously."""
    ok = valid[:, None] & jnp.isfinite(x)
    return dict(pass_a(x, y, x0, valid, consts, config), values=jnp.where(ok, x, jnp.nan).T)


def materialize(x, y, x0, valid, consts, config):
    """Every value, padding masked as NaN: for tests on small runs only."""
    return jnp.where(valid[:, None], x, jnp.nan)


REDUCERS = {"pass_a": pass_a, "refine": refine, "keep": keep, "materialize": materialize}
