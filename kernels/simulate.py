"""Batches of trajectories: the month loop (one month is kernels.month).

`start` gives a batch's parameters and initial state (its Carry); `advance`
draws each month's shocks, vmaps the month over the batch, loops it over a block of months
and hands each month's (trajectory, series) outputs to a reducer (kernels.reduce), then
returns the Carry for the next block: forecast.engine.lockstep advances a run's whole population
this way. `run_chunk` is both over all months at once (tests, benchmarks).
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from kernels import keys, reduce
from kernels.layout import SeriesLayout
from kernels.month import adoption_start_noise, flatten, init, initial_state, month_noise, step
from kernels.params import Params, Prior, params_from
from kernels.state import State


# Debug aid and test hook: how many times the chunk runner has been traced.
TRACE_COUNT = {"advance": 0, "run_paths": 0}


def output_sizes(n_regions: int) -> list[int]:
    return list(SeriesLayout(n_regions).sizes)


def log_scale_mask(n_regions: int, n_scenarios: int = 1) -> jax.Array:
    """(series,) True for series whose bands are resolved in log space (SeriesLayout.log_mask)."""
    return jnp.array(SeriesLayout(n_regions, n_scenarios).log_mask)


def ratio_mask(n_regions: int) -> jax.Array:
    """(series,) True for the series of RATIO_OUTPUTS, whose paired differences are log ratios."""
    return jnp.array(SeriesLayout(n_regions).ratio_mask)


def n_series(n_regions: int, n_scenarios: int = 1) -> int:
    """Series per month: n_scenarios output blocks and n_scenarios - 1 difference blocks."""
    return SeriesLayout(n_regions, n_scenarios).total


def paired_differences(out, ratio):
    """(scenario, series) outputs -> (scenario - 1, series) differences from scenario 0:
    log(b / a) for the series of strictly positive outputs (ratio_mask), b - a otherwise;
    positive exactly where b > a and zero exactly where b == a."""
    y = jnp.where(ratio, jnp.log(jnp.maximum(out, reduce.TINY)), out)
    d = y[1:] - y[:1]
    b, a = out[1:], out[:1]
    # Keep the sign of b - a where float32 logs of nearly equal values coincide, so that
    # P(higher) and P(equal) count the values themselves.
    tiny = jnp.asarray(reduce.TINY, out.dtype)
    return jnp.where(b > a, jnp.maximum(d, tiny), jnp.where(b < a, jnp.minimum(d, -tiny), jnp.where(b == a, 0.0, d)))


class Carry(NamedTuple):
    """What a batch of trajectories carries from one block of months to the next: their
    parameters and state (one Params and one State per scenario of a paired run, in
    tuples) and their first-month values (batch, series; NaN before month 0 is simulated),
    which P(widening) compares against."""

    params: Params | tuple
    state: State | tuple
    x0: jax.Array


def _paired(prior: Prior) -> int:
    """Scenarios stacked on the prior's leading axis (paired runs), or 0 for one scenario."""
    return prior.loc.compute0.shape[0] if prior.loc.compute0.ndim == 2 else 0


def _keys(seed_key, first, batch_size):
    return jax.vmap(keys.trajectory_key, in_axes=(None, 0))(seed_key, first + jnp.arange(batch_size, dtype=jnp.int32))


@partial(jax.jit, static_argnames=("batch_size",))
def start(seed_key, prior: Prior, first, *, batch_size: int) -> Carry:
    """Trajectories [first, first + batch_size) at the start: their Carry before month 0.

    prior: one scenario's, or several stacked on a leading axis (paired scenarios). Every
    scenario of a trajectory uses the trajectory's keys: the same parameter normals,
    posterior row and once-events (common random numbers)."""
    traj_keys = _keys(seed_key, first, batch_size)
    n_scen = _paired(prior)
    dtype = prior.loc.compute0.dtype
    x0 = jnp.full((batch_size, n_series(prior.loc.compute0.shape[-1], max(n_scen, 1))), jnp.nan, dtype)
    if not n_scen:
        return Carry(*jax.vmap(init, in_axes=(0, None))(traj_keys, prior), x0)
    inits = [jax.vmap(init, in_axes=(0, None))(traj_keys, jax.tree.map(lambda a, i=i: a[i], prior))
             for i in range(n_scen)]
    return Carry(tuple(p for p, _ in inits), tuple(st for _, st in inits), x0)


@partial(jax.jit, static_argnames=("batch_size", "n_months", "reducer", "sample"))
def advance(seed_key, prior: Prior, first, n_valid, carry: Carry, t0, n_live, *, batch_size: int, n_months: int,
            reducer: str, sample: int = 0):
    """Months [t0, t0 + n_live) of trajectories [first, first + batch_size), from their
    Carry at month t0 (`start` gives month 0's), each month's outputs reduced by `reducer`.

    A run advances its whole population this way in lockstep (forecast.engine.lockstep): every
    batch through a block of months, then the next block. n_valid: how many of the batch's
    trajectories are real (the rest pad the last batch and are masked out); n_live: the
    months simulated, at most n_months (the outputs' leading axis; rows past n_live are
    left zero). n_live is an argument so that XLA cannot see the loop's trip count: a loop
    of one known trip is inlined and fused with its surroundings, and rounds differently in
    the last bit from the same month inside a longer loop; so values do not depend on how
    the months are blocked. reducer: a name in kernels.reduce.REDUCERS. sample:
    with a reducer whose outputs are a dict, add the batch's first `sample` trajectories
    whole: "head", their values (n_months, sample, series), NaN where padding or
    non-finite, and "param<i>/<name>" (sample, ...), their parameters under scenario i.
    Returns (the per-month outputs, the Carry after the last live month, (batch,) flags of
    trajectories that are valid and stayed finite).

    Callers keep batch_size fixed for a whole run (forecast.engine.run uses one per backend): XLA
    compiles each shape separately, and different programs may round differently in the
    last bit. One shape means one program, so every call sees the same values.
    """
    TRACE_COUNT["advance"] += 1
    traj_keys = _keys(seed_key, first, batch_size)
    valid = jnp.arange(batch_size) < n_valid
    n_scen = _paired(prior)
    base_mask = ratio_mask(prior.loc.compute0.shape[-1])
    reduce_fn = reduce.REDUCERS[reducer]
    params = carry.params

    def body(state, x0, i):
        t = t0 + i
        state, out = _batch_month(params, state, t, traj_keys, n_scen, base_mask)
        # Values are computed once, behind a barrier, so that every reducer's program sees
        # bit-identical numbers (XLA may otherwise recompute them inside different fusions,
        # where vectorised exp/log can differ by an ulp).
        out = jax.lax.optimization_barrier(out)
        x0 = jnp.where(t == 0, out, x0)  # each trajectory's first month
        ys = reduce_fn(out, x0, valid)
        if sample:
            ys = dict(ys, head=jnp.where(valid[:, None] & jnp.isfinite(out), out, jnp.nan)[:sample])
        return state, x0, ys

    shapes = jax.eval_shape(lambda: body(carry.state, carry.x0, jnp.int32(0))[2])
    bufs = jax.tree.map(lambda a: jnp.zeros((n_months,) + a.shape, a.dtype), shapes)

    def month(c):
        i, state, x0, out = c
        state, x0, ys = body(state, x0, i)
        out = jax.tree.map(lambda b, y: jax.lax.dynamic_update_index_in_dim(b, y, i, 0), out, ys)
        return i + 1, state, x0, out

    _, state, x0, ys = jax.lax.while_loop(lambda c: c[0] < n_live, month,
                                          (jnp.int32(0), carry.state, carry.x0, bufs))
    finite = jnp.all(jnp.stack([s.finite for s in state]), axis=0) if n_scen else state.finite
    if sample:
        for i, ps in enumerate(params if n_scen else [params]):
            ys = dict(ys, **{f"param{i}/{name}": v[:sample] for name, v in ps._asdict().items()})
    return ys, Carry(params, state, x0), finite & valid


def _batch_month(params, state, t, traj_keys, n_scen, ratio):
    """Month t of a batch: (the new state, (batch, series) values): one scenario's outputs,
    or each paired scenario's followed by their differences from the first.

    Scenarios are unrolled, not vmapped: each one's ops then have exactly the shapes of a
    single-scenario run, so XLA computes the same bits and compare() reproduces run()."""
    n_regions = (params[0] if n_scen else params).compute0.shape[-1]
    dtype = (params[0] if n_scen else params).compute0.dtype

    def one(p, st, t, key):
        new, out = step(p, st, t, month_noise(key, t, n_regions, dtype))
        return new, flatten(out, dtype)

    if not n_scen:
        return jax.vmap(one, in_axes=(0, 0, None, 0))(params, state, t, traj_keys)
    res = [jax.vmap(one, in_axes=(0, 0, None, 0))(params[j], state[j], t, traj_keys) for j in range(n_scen)]
    outs = jnp.stack([r[1] for r in res], axis=1)  # (traj, scenario, series)
    diffs = jax.vmap(paired_differences, in_axes=(0, None))(outs, ratio)
    batch = outs.shape[0]
    return tuple(r[0] for r in res), jnp.concatenate([outs.reshape(batch, -1), diffs.reshape(batch, -1)], axis=1)


def run_chunk(seed_key, prior: Prior, first, n_valid, *, batch_size: int, n_months: int,
              reducer: str = "materialize", sample: int = 0):
    """Trajectories [first, first + batch_size) over months [0, n_months), in one call:
    `start`, then `advance` through every month (the same two programs a run uses, so the
    same values). Returns (the per-month outputs, (batch,) flags of valid, finite
    trajectories)."""
    carry = start(seed_key, prior, first, batch_size=batch_size)
    ys, _, finite = advance(seed_key, prior, first, n_valid, carry, 0, n_months, batch_size=batch_size,
                            n_months=n_months, reducer=reducer, sample=sample)
    return ys, finite


@partial(jax.jit, static_argnames=("n_months", "select"))
def run_paths(seed_key, prior: Prior, z, rows, noise_index, *, n_months: int, select: tuple):
    """Trajectories from given inputs, with the selected series at every month kept.

    For designed experiments (forecast.analysis.sensitivity): z (batch, n_entries) parameter normals
    and rows (batch, n_entries) posterior rows, laid out as params.params_from takes them;
    noise_index (batch, 2) int: the trajectory keys whose process noise the trajectory
    uses, [:, 0] for the monthly market shocks (compute, power, cost, demand) and [:, 1]
    for the events (whether a moratorium happens, when restrictions start and end), so
    that a design can vary the two apart. select: indices into a month's flattened outputs
    (flatten). Returns ((n_months, batch, len(select)) values, (batch,) flags of
    trajectories that stayed finite)."""
    TRACE_COUNT["run_paths"] += 1
    key_shocks = jax.vmap(keys.trajectory_key, in_axes=(None, 0))(seed_key, noise_index[:, 0])
    key_events = jax.vmap(keys.trajectory_key, in_axes=(None, 0))(seed_key, noise_index[:, 1])
    dtype = prior.loc.compute0.dtype
    n_regions = prior.loc.compute0.shape[-1]
    pick = jnp.asarray(select, jnp.int32)

    def start(key, key_shock, zi, ri):
        p = params_from(prior, zi, ri)
        z_once = jax.random.normal(keys.stream_key(key, keys.ONCE), p.compute0.shape, dtype)
        return p, initial_state(p, z_once, adoption_start_noise(key_shock, p))

    params, state = jax.vmap(start)(key_events, key_shocks, z.astype(dtype), rows)

    def one(p, st, t, ks, ke):
        shocks, events = month_noise(ks, t, n_regions, dtype), month_noise(ke, t, n_regions, dtype)
        nz = shocks._replace(restrict_start=events.restrict_start, restrict_end=events.restrict_end)
        new, out = step(p, st, t, nz)
        return new, flatten(out, dtype)[pick]

    def body(state, t):
        return jax.vmap(one, in_axes=(0, 0, None, 0, 0))(params, state, t, key_shocks, key_events)

    state, ys = jax.lax.scan(body, state, jnp.arange(n_months))
    return ys, state.finite
