"""One month of one trajectory, the time loop, and chunks of trajectories.

A month, top to bottom: events -> supply -> cost -> demand -> prices -> allocation ->
outputs. The chunk runner vmaps the month over trajectories, scans it over months and
hands each month's (trajectory, series) outputs to a reducer, so that no
trajectories x months x series array is ever built (except by the `materialize` reducer,
which exists for tests on small runs).
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from kernels import allocation, cost, demand, events, keys, prices, reduce, supply
from kernels.params import Params, Prior, sample_params
from kernels.state import State, noise_size, split_noise

N_TIERS = 3  # trusted, enterprise, consumer: priority order
DT = 1.0 / 12.0  # years per step


class OutputSpec(NamedTuple):
    name: str
    dims: str  # "", "region", "tier" or "region,tier"
    log_scale: bool  # bands are resolved in log space (non-negative quantities spanning
    # orders of magnitude; exact zeros are a point mass counted apart)


OUTPUTS: tuple[OutputSpec, ...] = (
    OutputSpec("compute", "region", True),
    OutputSpec("cost_frontier", "", True),
    OutputSpec("cost_fixed_capability", "", True),
    OutputSpec("price", "tier", True),
    OutputSpec("demand_tokens", "region,tier", True),
    OutputSpec("served_tokens", "region,tier", True),
    OutputSpec("tokens_per_capita", "region", True),
    OutputSpec("north_south_ratio", "", True),
    OutputSpec("access_gini", "", False),
    OutputSpec("unmet_share", "", True),
    OutputSpec("capability_lag", "region,tier", True),
    OutputSpec("adoption", "region", False),
)

# Debug aid and test hook: how many times the chunk runner has been traced.
TRACE_COUNT = {"run_chunk": 0}


def output_sizes(n_regions: int) -> list[int]:
    size = {"": 1, "region": n_regions, "tier": N_TIERS, "region,tier": n_regions * N_TIERS}
    return [size[o.dims] for o in OUTPUTS]


def log_scale_mask(n_regions: int) -> jax.Array:
    """(series,) True for series whose bands are resolved in log space."""
    flags = [o.log_scale for o, n in zip(OUTPUTS, output_sizes(n_regions)) for _ in range(n)]
    return jnp.array(flags)


def init(traj_key, prior: Prior) -> tuple[Params, State]:
    """A trajectory's parameters and starting state."""
    p = sample_params(keys.stream_key(traj_key, keys.PARAMS), prior, keys.stream_key(traj_key, keys.POSTERIOR))
    n_regions = p.compute0.shape[0]
    z_once = jax.random.normal(keys.stream_key(traj_key, keys.ONCE), (n_regions,), p.compute0.dtype)
    zero = jnp.zeros((), p.compute0.dtype)
    state = State(
        log_compute=jnp.log(p.compute0),
        growth_dev=jnp.zeros_like(p.compute0),
        log_cost=jnp.log(p.cost_frontier0),
        log_enterprise=jnp.log(p.enterprise0),
        restricted=zero,
        restricted_months=zero,
        moratorium_hit=events.bernoulli(z_once, p.moratorium_probability).astype(zero.dtype),
        finite=jnp.array(True),
    )
    return p, state


def step(p: Params, s: State, t, traj_key) -> tuple[State, jax.Array]:
    """One month: returns the new state and the month's (series,) output vector."""
    n_regions = p.compute0.shape[0]
    dtype = p.compute0.dtype
    t = t.astype(dtype)
    t_years = t * DT
    z = jax.random.normal(keys.month_key(traj_key, t.astype(jnp.int32)), (noise_size(n_regions),), dtype)
    nz = split_noise(z, n_regions)

    restricted, frozen = events.restriction_step(
        p, s.restricted, s.restricted_months, nz.restrict_start, nz.restrict_end
    )
    log_compute, growth_dev = supply.step(p, s.log_compute, s.growth_dev, s.moratorium_hit, nz, t, DT)
    log_cost = cost.step(p, s.log_cost, nz.cost, DT)
    log_enterprise = demand.enterprise_step(p, s.log_enterprise, nz.enterprise, t, DT)

    capacity = supply.inference_capacity(p, log_compute, cost.throughput(p, t_years))
    demand1 = demand.unconstrained(p, log_enterprise, log_cost, t_years)
    multiplier = prices.scarcity(p, jnp.sum(demand1), capacity)
    wanted = prices.respond(p, demand1, multiplier)
    weight = jnp.maximum(p.access_weight, p.guarantee * events.window(p.guarantee_start, jnp.inf, t))
    fill = allocation.allocate(wanted, weight, capacity)  # exactly 1.0 where fully served
    served = wanted * fill
    unserved = 1.0 - fill
    lag = events.frozen_lag(p, frozen, N_TIERS) + unserved * p.fallback_lag
    per_capita = jnp.sum(served, axis=1) / p.population
    north = p.north
    ratio = (jnp.sum(north * per_capita * p.population) / jnp.sum(north * p.population)) / (
        jnp.sum((1 - north) * per_capita * p.population) / jnp.sum((1 - north) * p.population)
    )
    share = p.population / jnp.sum(p.population)
    mean_pc = jnp.sum(share * per_capita)
    gini = jnp.sum(share[:, None] * share[None, :] * jnp.abs(per_capita[:, None] - per_capita[None, :])) / (
        2.0 * mean_pc
    )
    outputs = (
        jnp.exp(log_compute),
        jnp.exp(log_cost),
        cost.lagged(p, log_cost, 12.0 * t_years),
        prices.tier_prices(p, jnp.exp(log_cost), multiplier),
        wanted,
        served,
        per_capita,
        ratio,
        gini,
        jnp.sum(wanted * unserved) / jnp.sum(wanted),  # exactly 0 when all is served
        lag,
        demand.adoption(p, t_years),
    )
    out = jnp.concatenate([jnp.ravel(o) for o in outputs]).astype(dtype)
    state = State(
        log_compute=log_compute,
        growth_dev=growth_dev,
        log_cost=log_cost,
        log_enterprise=log_enterprise,
        restricted=restricted,
        restricted_months=frozen,
        moratorium_hit=s.moratorium_hit,
        finite=s.finite & jnp.all(jnp.isfinite(out)),
    )
    return state, out


@partial(jax.jit, static_argnames=("batch_size", "n_months", "reducer", "config"))
def run_chunk(seed_key, prior: Prior, start, n_valid, consts, *, batch_size: int, n_months: int,
              reducer: str, config: tuple = ()):
    """Simulate trajectories [start, start + batch_size) and reduce them month by month.

    seed_key: the run's key; start: first global trajectory index; n_valid: how many of the
    batch's trajectories are real (the rest pad the last batch and are masked out);
    consts: the reducer's arrays (bin layouts), each with a leading time axis; reducer:
    "pass_a", "refine" or "materialize"; config: the reducer's static integers. Returns the
    reducer's per-month outputs stacked over months, plus (batch,) flags of trajectories
    that stayed finite.

    Callers keep batch_size fixed for a whole run (forecast.run uses one per backend): XLA
    compiles each shape separately, and different programs may round differently in the
    last bit. One shape means one program, so every pass sees the same values.
    """
    TRACE_COUNT["run_chunk"] += 1
    index = start + jnp.arange(batch_size, dtype=jnp.int32)
    valid = jnp.arange(batch_size) < n_valid
    traj_keys = jax.vmap(keys.trajectory_key, in_axes=(None, 0))(seed_key, index)
    params, state = jax.vmap(init, in_axes=(0, None))(traj_keys, prior)
    n_regions = prior.loc.compute0.shape[0]
    log_mask = log_scale_mask(n_regions)
    reduce_fn = reduce.REDUCERS[reducer]

    def body(state, t):
        state, out = jax.vmap(step, in_axes=(0, 0, None, 0))(params, state, t, traj_keys)
        # Values and their bin-space transform are computed once, behind a barrier, so that
        # every pass's program sees bit-identical numbers (XLA may otherwise recompute them
        # inside different fusions, where vectorised exp/log can differ by an ulp).
        out, y = jax.lax.optimization_barrier((out, reduce.transform(out, log_mask)))
        month_consts = jax.tree.map(lambda c: c[t], consts)  # consts lead with a time axis
        return state, reduce_fn(out, y, valid, month_consts, config)

    state, ys = jax.lax.scan(body, state, jnp.arange(n_months))
    return ys, state.finite & valid
