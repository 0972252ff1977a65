"""One month of one trajectory, the month loop, and batches of trajectories.

A month, top to bottom (docs/model.md): events -> supply (power, hardware) -> cost
(frontier, floor) -> demand (total tokens) -> the menu's choice, affordability and sticky
prices -> allocation (guarantees, contracts, then down the menu; regional pools and trade)
-> outputs. `start` gives a batch's parameters and initial state (its Carry); `advance`
draws each month's shocks, vmaps the month over the batch, loops it over a block of months
and hands each month's (trajectory, series) outputs to a reducer (kernels.reduce), then
returns the Carry for the next block: forecast.lockstep advances a run's whole population
this way. `run_chunk` is both over all months at once (tests, benchmarks).
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from kernels import affordability, allocation, cost, demand, events, keys, menu, prices, reduce, supply
from kernels.layout import N_TIERS, OUTPUTS, SeriesLayout
from kernels.params import Params, Prior, params_from, sample_params
from kernels.state import Noise, State, noise_size, split_noise

DT = 1.0 / 12.0  # years per step
LIST_PRICE_QUANTILE = 0.9  # list_price0 is this quantile of released models' prices (priors.models.prices)
# Bound on the log of the heavy-tailed published-figure noise (a factor of 1e13): a t(4)
# draw past it at the fitted scale 0.3 (|t| > 100) has probability 6e-8, but one that
# overflows float32 (e^(level + noise), at |t| ~ 90-170) would drop the trajectory from
# every band (seen once in 20,000 x 120 months before the clip).
OBS_LOG_CLIP = 30.0


# A month's outputs, one field per OUTPUTS entry (same order), each with its dims' shape.
Outputs = NamedTuple("Outputs", [(o.name, jax.Array) for o in OUTPUTS])  # type: ignore[misc]

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


def flatten(out: Outputs, dtype) -> jax.Array:
    """(series,) the month's outputs in OUTPUTS order, each raveled."""
    return jnp.concatenate([jnp.ravel(o) for o in out]).astype(dtype)


def month_noise(traj_key, t, n_regions: int, dtype) -> Noise:
    """Month t's shocks: a pure function of the trajectory's key and t."""
    z = jax.random.normal(keys.month_key(traj_key, t), (noise_size(n_regions),), dtype)
    observe = jax.random.normal(keys.month_key(traj_key, t, keys.OBSERVE), (2, n_regions), dtype)
    tails = jax.random.normal(keys.month_key(traj_key, t, keys.OBSERVE_TAILS), (10,), dtype)
    adopt = jax.random.normal(keys.month_key(traj_key, t, keys.ADOPTION), (n_regions + 2,), dtype)
    return split_noise(z, n_regions)._replace(observe=observe, observe_tails=tails, adoption=adopt)


def student_t4(z):
    """A Student-t(4) draw from five standard normals: z0 / sqrt(chi2_4 / 4)."""
    return z[0] / jnp.sqrt(jnp.mean(jnp.square(z[1:5])))


def asymmetric_laplace(z, scale, quantile):
    """A draw of numpyro's AsymmetricLaplaceQuantile(0, scale, quantile) (quantile of its
    mass below 0) from four standard normals: two Exp(1) = chi2_2 / 2, u and v, and
    -scale_left u + scale_right v with k = sqrt(q / (1 - q)), scale_classic = scale k / q,
    scale_left = scale_classic k, scale_right = scale_classic / k."""
    u = 0.5 * (jnp.square(z[0]) + jnp.square(z[1]))
    v = 0.5 * (jnp.square(z[2]) + jnp.square(z[3]))
    k = (quantile / (1.0 - quantile)) ** 0.5
    classic = scale * k / quantile
    return -classic * k * u + classic / k * v


def market(p: Params, log_price_prev, log_cost, log_enterprise, log_trusted, capacity, gap, t_years, dt, adopted):
    """The month's list prices, wanted tokens and plan shares: a dict. adopted: (region,)
    the month's adoption share (demand.adoption).

    Choice is first evaluated at last month's prices to set the scarcity multiplier (the
    compute all wanted tokens need over the capacity), prices move toward their targets
    (prices.py), and the choice is evaluated again at the new prices."""
    q = menu.compute_per_token(p)
    totals = demand.unconstrained(p, log_enterprise, log_trusted, log_cost, t_years, adopted)
    users = p.population * adopted
    per_user = demand.tokens_per_user(p, t_years) * demand.price_response(p, log_cost)
    # Where the labs' models are not on offer, the frontier class is never chosen: its lag stays 0.
    withheld = events.blocked(p, N_TIERS) * p.frontier_access[:, None]
    lag = menu.lags(p, gap, withheld)
    plan = demand.plan_tokens(p, t_years)
    po_plan = affordability.plan_priced_out(p, menu.CONSUMER)
    paid = p.paid_propensity * (1.0 - po_plan)

    def want_at(price):
        po = affordability.priced_out(p, price[:, 0], plan).at[:, menu.CONSUMER].set(po_plan)
        return menu.wanted(p, totals, users, per_user, price, lag, po, paid), po

    w0, _ = want_at(jnp.exp(log_price_prev))
    multiplier = prices.scarcity(p, jnp.sum(w0 * q), jnp.sum(capacity))
    log_price = prices.sticky(p, log_price_prev, prices.targets(p, jnp.exp(log_cost), q, multiplier), dt)
    want, priced = want_at(jnp.exp(log_price))
    return dict(q=q, lag=lag, log_price=log_price, want=want, priced=priced, paid=paid, units0=jnp.sum(w0 * q))


def access_index(p: Params, served, lag):
    """(region,) capability-weighted tokens per person per month: every class's tokens,
    each weighted 2^(-lag / capability_halflife) (a frontier token counts 1)."""
    weight = jnp.exp2(-lag / p.capability_halflife)
    return jnp.sum(served * weight, axis=(1, 2)) / p.population


def north_south(p: Params, access):
    """(North/South ratio, population-weighted Gini) of access_index across regions.

    The ratio is of population-weighted means, 0 where the South is served nothing (a
    point mass the bands count apart: its P(>0) says how often); the Gini is
    sum_ij s_i s_j |a_i - a_j| / (2 mean), s the population shares, 0 where no one is served."""
    north = p.north
    n = jnp.sum(north * access * p.population) / jnp.sum(north * p.population)
    south = jnp.sum((1 - north) * access * p.population) / jnp.sum((1 - north) * p.population)
    ratio = jnp.where(south > 0, n / jnp.maximum(south, 1e-30), 0.0)
    share = p.population / jnp.sum(p.population)
    mean = jnp.sum(share * access)
    spread = jnp.sum(share[:, None] * share[None, :] * jnp.abs(access[:, None] - access[None, :]))
    return ratio, jnp.where(mean > 0, spread / (2.0 * jnp.maximum(mean, 1e-30)), 0.0)


def init(traj_key, prior: Prior) -> tuple[Params, State]:
    """A trajectory's parameters and starting state."""
    p = sample_params(keys.stream_key(traj_key, keys.PARAMS), prior, keys.stream_key(traj_key, keys.POSTERIOR))
    z_once = jax.random.normal(keys.stream_key(traj_key, keys.ONCE), p.compute0.shape, p.compute0.dtype)
    return p, initial_state(p, z_once, adoption_start_noise(traj_key, p))


def adoption_start_noise(traj_key, p: Params):
    """(region + 1,) normals of the adoption rate's deviation at the start (demand.adoption_dev0)."""
    return jax.random.normal(keys.stream_key(traj_key, keys.ADOPTION_START), (p.compute0.shape[0] + 1,),
                             p.compute0.dtype)


def initial_state(p: Params, z_once, z_adoption) -> State:
    """The starting state of a trajectory with parameters p; z_once: (region,) normals that
    decide the once-per-trajectory events (whether each region's moratorium happens);
    z_adoption: (region + 1,) normals of the adoption rate's deviation at the start.

    The start's list prices are their targets without a scarcity premium, and the start's
    frontier throughput is set from scarcity0: the compute all wanted tokens need (at the
    start's prices and choice) over all capacity equals scarcity0."""
    dtype = p.compute0.dtype
    zero = jnp.zeros((), dtype)
    compute, draw, log_power = supply.initial(p)
    log_cost = jnp.log(p.cost_frontier0)
    log_enterprise = jnp.log(p.enterprise0)
    q = menu.compute_per_token(p)
    log_price = jnp.log(prices.targets(p, p.cost_frontier0, q, 1.0))
    log_trusted = jnp.log(p.trusted0)
    m = market(p, log_price, log_cost, log_enterprise, log_trusted, jnp.ones_like(compute), p.release_window, zero, 1.0,
               demand.adoption(p, zero))
    units = jnp.sum(supply.capacity(p, compute, 1.0))
    throughput0 = m["units0"] / (p.scarcity0 * jnp.maximum(units, 1e-30))
    return State(
        compute=compute, power_draw=draw, log_power=log_power, growth_dev=jnp.zeros_like(p.compute0),
        log_cost=log_cost, log_enterprise=log_enterprise, log_trusted=log_trusted, log_price=log_price,
        log_excess=zero, restricted=zero, public_gap=p.release_window + zero,
        release_since=jnp.asarray(events.SINCE_CAP, dtype), gap_run=jnp.zeros_like(p.compute0),
        gap_hit=jnp.zeros_like(p.compute0), moratorium_hit=events.bernoulli(z_once, p.moratorium_probability).astype(dtype),
        throughput0=throughput0, log_served0=zero, finite=jnp.array(True),
        adoption_dev=demand.adoption_dev0(p, z_adoption), adoption_shift=jnp.zeros_like(p.compute0),
    )


def step(p: Params, s: State, t, nz: Noise) -> tuple[State, Outputs]:
    """One month: the new state and the month's outputs. nz: the month's shocks."""
    dtype = p.compute0.dtype
    t = t.astype(dtype)
    t_years = t * DT

    was = s.restricted > 0
    now, left = events.restriction_step(p, s.restricted, nz.restrict_start, nz.restrict_end)
    gap, since = events.release_step(p, was, now, left, s.public_gap, s.release_since)
    compute, draw, log_power, growth_dev, capex = supply.step(
        p, s.compute, s.power_draw, s.log_power, s.growth_dev, s.moratorium_hit, nz, t, DT)
    log_cost = cost.step(p, s.log_cost, nz.cost, t_years, DT)
    log_enterprise = demand.enterprise_step(p, s.log_enterprise, nz.enterprise, t, DT, s.log_excess)
    log_trusted = demand.trusted_step(p, s.log_trusted, DT, s.log_excess)

    capacity = supply.capacity(p, compute, cost.throughput(p, s.throughput0, t_years))
    adoption = demand.adoption(p, t_years, s.adoption_shift)
    m = market(p, s.log_price, log_cost, log_enterprise, log_trusted, capacity, gap, t_years, DT, adoption)
    guarantee_on = events.window(p.guarantee_start, jnp.inf, t)
    want = m["want"]
    served, at_choice = allocation.serve(p, want, m["q"], capacity, guarantee_on)
    frontier_cost = jnp.exp(log_cost)

    wanted = jnp.sum(want, axis=-1)
    got = jnp.sum(served, axis=-1)
    front = served[..., 0]
    log_served = jnp.log(jnp.maximum(jnp.sum(got), 1e-30))
    log_served0 = jnp.where(t == 0, log_served, s.log_served0)
    # Token-weighted lag of what is served; where nothing is, the smallest lag among the
    # classes on offer to the cell (the capability it is offered), not a lag prior of a
    # class it is not offered.
    on = menu.offered(p)[:, None, :] > 0
    best = jnp.min(jnp.where(on, m["lag"], jnp.inf), axis=-1)
    lag = jnp.where(got > 0, jnp.sum(served * m["lag"], axis=-1) / jnp.maximum(got, 1e-30), best)
    per_capita = jnp.sum(front, axis=1) / p.population
    # Trusted gap: the best lag on offer to the public (the enterprise tier; consumers are
    # offered the same) minus the trusted tier's.
    trusted_gap = jnp.maximum(best[:, 1] - best[:, 0], 0.0)
    gap_run = jnp.where(trusted_gap > p.gap_threshold, s.gap_run + 1.0, 0.0)
    # gap_duration comes through a float32 log and exp: a whole number of months may read a
    # hair above itself (12 -> 12.0000003), which must not cost a month.
    gap_hit = jnp.maximum(s.gap_hit, (gap_run >= p.gap_duration - 1e-3).astype(dtype))
    access = access_index(p, served, m["lag"])
    ratio, gini = north_south(p, access)
    adoption_dev, adoption_shift = demand.adoption_step(p, s.adoption_dev, s.adoption_shift, nz.adoption, DT)
    total = jnp.sum(wanted)
    unmet = jnp.where(total > 0, jnp.clip(1.0 - jnp.sum(at_choice) / jnp.maximum(total, 1e-30), 0.0, 1.0), 0.0)
    unmet = jnp.where(unmet < allocation.RESOLUTION, 0.0, unmet)  # float32 residue of a sum of full fills
    unserved = jnp.where(wanted > 0, jnp.clip(1.0 - got / jnp.maximum(wanted, 1e-30), 0.0, 1.0), 0.0)
    unserved = jnp.where(unserved < allocation.RESOLUTION, 0.0, unserved)
    out = Outputs(
        compute=compute,
        power=jnp.exp(log_power),
        capex=capex,
        cost_frontier=frontier_cost,
        cost_fixed_capability=cost.lagged(p, log_cost, 12.0 * t_years, t_years),
        cost_floor=cost.floor(p, t_years),
        price=jnp.exp(m["log_price"][:, 0]),
        class_price=jnp.exp(m["log_price"]),
        demand_tokens=wanted,
        class_tokens=served,
        frontier_tokens=front,
        lagging_tokens=served[..., 1] + served[..., 2],
        tokens_per_capita=per_capita,
        access_index=access,
        north_south_ratio=ratio,
        access_gini=gini,
        unmet_share=unmet,
        capability_lag=lag,
        trusted_gap=trusted_gap,
        gap_persistence=gap_hit,
        priced_out=m["priced"],
        unserved_share=unserved,
        free_share=1.0 - m["paid"],
        open_share=jnp.where(jnp.sum(got, axis=1) > 0, jnp.sum(served[..., 2], axis=1)
                             / jnp.maximum(jnp.sum(got, axis=1), 1e-30), 0.0),
        adoption=adoption,
        # a published figure: the latent share, its series' level and drift (0 for the
        # Microsoft share the adoption model fits), an edition's shock common to every
        # region, and the figure's own scatter, each on the logit
        adoption_observed=jax.nn.sigmoid(jnp.log(adoption) - jnp.log1p(-adoption) + p.adoption_obs_sd * nz.observe[0]
                                         + p.adoption_edition_sd * nz.adoption[-1]
                                         + p.adoption_obs_level + p.adoption_obs_drift * t_years),
        compute_observed=jnp.sum(compute) * jnp.exp(p.compute_obs_sd * nz.observe[1, 0]),
        # The heavy-tailed noise is clipped (OBS_LOG_CLIP) so that a rare draw cannot
        # overflow float32 and cost the trajectory every band.
        tokens_observed=jnp.exp(p.tokens_obs_level + log_served - log_served0 + jnp.clip(
            p.tokens_obs_sd * student_t4(nz.observe_tails[0:5]), -OBS_LOG_CLIP, OBS_LOG_CLIP)),
        list_price_observed=p.list_price0 * jnp.exp(log_cost - jnp.log(p.cost_frontier0) + jnp.clip(
            asymmetric_laplace(nz.observe_tails[5:9], p.list_price_scale, LIST_PRICE_QUANTILE),
            -OBS_LOG_CLIP, OBS_LOG_CLIP)),
        chip_power_observed=jnp.sum(draw) / p.power_overhead * jnp.exp(p.chip_power_obs_sd * nz.observe_tails[9]),
    )
    state = State(
        compute=compute, power_draw=draw, log_power=log_power, growth_dev=growth_dev, log_cost=log_cost,
        log_enterprise=log_enterprise, log_trusted=log_trusted, log_price=m["log_price"],
        log_excess=jnp.maximum(jnp.log(m["units0"] / jnp.maximum(jnp.sum(capacity) * p.scarcity0, 1e-30)), 0.0),
        restricted=now.astype(dtype), public_gap=gap, release_since=since, gap_run=gap_run, gap_hit=gap_hit,
        moratorium_hit=s.moratorium_hit, throughput0=s.throughput0, log_served0=log_served0,
        finite=s.finite & jnp.all(jnp.isfinite(flatten(out, dtype))),
        adoption_dev=adoption_dev, adoption_shift=adoption_shift,
    )
    return state, out


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

    A run advances its whole population this way in lockstep (forecast.lockstep): every
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

    Callers keep batch_size fixed for a whole run (forecast.run uses one per backend): XLA
    compiles each shape separately, and different programs may round differently in the
    last bit. One shape means one program, so every call sees the same values.
    """
    TRACE_COUNT["advance"] += 1
    traj_keys = _keys(seed_key, first, batch_size)
    valid = jnp.arange(batch_size) < n_valid
    n_scen = _paired(prior)
    n_regions = prior.loc.compute0.shape[-1]
    dtype = prior.loc.compute0.dtype
    base_mask = ratio_mask(n_regions)
    reduce_fn = reduce.REDUCERS[reducer]
    params = carry.params

    def one(p, st, t, key):
        new, out = step(p, st, t, month_noise(key, t, n_regions, dtype))
        return new, flatten(out, dtype)

    def body(state, x0, i):
        t = t0 + i
        if n_scen:
            res = [jax.vmap(one, in_axes=(0, 0, None, 0))(params[j], state[j], t, traj_keys) for j in range(n_scen)]
            state = tuple(r[0] for r in res)
            outs = jnp.stack([r[1] for r in res], axis=1)  # (traj, scenario, series)
            diffs = jax.vmap(paired_differences, in_axes=(0, None))(outs, base_mask)
            out = jnp.concatenate([outs.reshape(batch_size, -1), diffs.reshape(batch_size, -1)], axis=1)
        else:
            state, out = jax.vmap(one, in_axes=(0, 0, None, 0))(params, state, t, traj_keys)
        # (Scenarios are unrolled, not vmapped: each one's ops then have exactly the shapes
        # of a single-scenario run, so XLA computes the same bits and compare() reproduces
        # run().) Values are computed once, behind a barrier, so that every reducer's program sees
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

    For designed experiments (forecast.sensitivity): z (batch, n_entries) parameter normals
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
