"""Reducers applied to each month's (trajectory, series) outputs inside the loop.

- lockstep: every value of the month (for the host's exact order statistics) with the
  batch's exact counts and moments; what forecast.engine.lockstep reads, month by month.
- materialize: every value, for tests.

Non-finite values and padding trajectories are left out and counted.
"""
from __future__ import annotations

import jax.numpy as jnp

TINY = 1e-30  # floor of logs and of divisions


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


def lockstep(x, x0, valid):
    """A month of a batch for a run that advances in lockstep (forecast.engine.lockstep): every
    value, (series, traj) with padding and non-finite values as NaN and -0.0 as 0.0 (so
    that equal values have equal bits, whatever order a sort leaves them in), plus the
    batch's exact counts and moments: "count" (finite values), "nonfinite", "positive"
    (values above zero: for a difference series, P(higher)), "zero" (for a difference,
    P(equal)), "above_start" (above the trajectory's first month: P(widening) for a gap
    measure), and "mean", "m2", "scale" (see moments)."""
    finite = jnp.isfinite(x)
    ok = valid[:, None] & finite
    count, mean, m2, scale = moments(x, ok)
    return dict(
        values=jnp.where(ok, jnp.where(x == 0, 0.0, x), jnp.nan).T,
        count=jnp.sum(ok, axis=0).astype(jnp.int32),
        mean=mean, m2=m2, scale=scale,
        nonfinite=jnp.sum(valid[:, None] & ~finite, axis=0).astype(jnp.int32),
        positive=jnp.sum(ok & (x > 0), axis=0).astype(jnp.int32),
        zero=jnp.sum(ok & (x == 0), axis=0).astype(jnp.int32),
        above_start=jnp.sum(ok & (x > x0), axis=0).astype(jnp.int32),
    )


def materialize(x, x0, valid):
    """Every value, padding masked as NaN: for tests on small runs only."""
    return jnp.where(valid[:, None], x, jnp.nan)


REDUCERS = {"lockstep": lockstep, "materialize": materialize}
