"""One month of one trajectory (docs/model.md), top to bottom: events -> supply (power,
hardware) -> cost (frontier, floor) -> demand (total tokens) -> the market (the menu's
choice, affordability and sticky prices; kernels.market) -> allocation (guarantees,
contracts, then down the menu; regional pools and trade) -> outputs. `init` gives a
trajectory's parameters and starting state; `month_noise` the month's shocks, a pure
function of the trajectory's key and the month; `step` the next state and the month's
Outputs.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from kernels import allocation, cost, demand, events, keys, menu, prices, supply
from kernels.layout import OUTPUTS
from kernels.market import market
from kernels.params import Params, Prior, sample_params
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
    throughput0 = m.units0 / (p.scarcity0 * jnp.maximum(units, 1e-30))
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
    sup, capex = supply.step(p, supply.SupplyState(s.compute, s.power_draw, s.log_power, s.growth_dev),
                             s.moratorium_hit, nz, t, DT)
    log_cost = cost.step(p, s.log_cost, nz.cost, t_years, DT)
    log_enterprise = demand.enterprise_step(p, s.log_enterprise, nz.enterprise, t, DT, s.log_excess)
    log_trusted = demand.trusted_step(p, s.log_trusted, DT, s.log_excess)

    capacity = supply.capacity(p, sup.compute, cost.throughput(p, s.throughput0, t_years))
    adoption = demand.adoption(p, t_years, s.adoption_shift)
    m = market(p, s.log_price, log_cost, log_enterprise, log_trusted, capacity, gap, t_years, DT, adoption)
    guarantee_on = events.window(p.guarantee_start, jnp.inf, t)
    alloc = allocation.serve(p, m.want, m.q, capacity, guarantee_on)
    sv = _served(p, s, t, m, alloc)
    adoption_dev, adoption_shift = demand.adoption_step(p, s.adoption_dev, s.adoption_shift, nz.adoption, DT)
    out = Outputs(
        compute=sup.compute,
        power=jnp.exp(sup.log_power),
        capex=capex,
        cost_frontier=jnp.exp(log_cost),
        cost_fixed_capability=cost.lagged(p, log_cost, 12.0 * t_years, t_years),
        cost_floor=cost.floor(p, t_years),
        price=jnp.exp(m.log_price[:, 0]),
        class_price=jnp.exp(m.log_price),
        demand_tokens=sv.wanted,
        class_tokens=alloc.served,
        frontier_tokens=sv.front,
        lagging_tokens=alloc.served[..., 1] + alloc.served[..., 2],
        tokens_per_capita=sv.per_capita,
        access_index=sv.access,
        north_south_ratio=sv.ratio,
        access_gini=sv.gini,
        unmet_share=sv.unmet,
        capability_lag=sv.lag,
        trusted_gap=sv.trusted_gap,
        gap_persistence=sv.gap_hit,
        priced_out=m.priced,
        unserved_share=sv.unserved,
        free_share=1.0 - m.paid,
        open_share=sv.open,
        adoption=adoption,
        **_observed(p, nz, t_years, adoption, sup, log_cost, sv.log_served, sv.log_served0),
    )
    state = State(
        compute=sup.compute, power_draw=sup.power_draw, log_power=sup.log_power, growth_dev=sup.growth_dev,
        log_cost=log_cost, log_enterprise=log_enterprise, log_trusted=log_trusted, log_price=m.log_price,
        log_excess=jnp.maximum(jnp.log(m.units0 / jnp.maximum(jnp.sum(capacity) * p.scarcity0, 1e-30)), 0.0),
        restricted=now.astype(dtype), public_gap=gap, release_since=since, gap_run=sv.gap_run,
        gap_hit=sv.gap_hit, moratorium_hit=s.moratorium_hit, throughput0=s.throughput0,
        log_served0=sv.log_served0, finite=s.finite & jnp.all(jnp.isfinite(flatten(out, dtype))),
        adoption_dev=adoption_dev, adoption_shift=adoption_shift,
    )
    return state, out


class Service(NamedTuple):
    """What the month's Allocation means for the cells: tokens wanted (region, tier) and
    frontier tokens served (region, tier); the log of all tokens served, and at month 0;
    the token-weighted lag of what is served (region, tier); frontier tokens per person;
    the trusted gap, its run of months over the threshold and whether it has persisted;
    access (region), its North/South ratio and Gini; the rationed share and the unserved
    shares (region, tier); the open-model share (region)."""

    wanted: jax.Array
    front: jax.Array
    log_served: jax.Array
    log_served0: jax.Array
    lag: jax.Array
    per_capita: jax.Array
    trusted_gap: jax.Array
    gap_run: jax.Array
    gap_hit: jax.Array
    access: jax.Array
    ratio: jax.Array
    gini: jax.Array
    unmet: jax.Array
    unserved: jax.Array
    open: jax.Array


def _served(p: Params, s: State, t, m, alloc) -> Service:
    """The month's Service from its Market and Allocation."""
    served, at_choice = alloc
    dtype = p.compute0.dtype
    wanted = jnp.sum(m.want, axis=-1)
    got = jnp.sum(served, axis=-1)
    front = served[..., 0]
    log_served = jnp.log(jnp.maximum(jnp.sum(got), 1e-30))
    # Token-weighted lag of what is served; where nothing is, the smallest lag among the
    # classes on offer to the cell (the capability it is offered), not a lag prior of a
    # class it is not offered.
    on = menu.offered(p)[:, None, :] > 0
    best = jnp.min(jnp.where(on, m.lag, jnp.inf), axis=-1)
    # Trusted gap: the best lag on offer to the public (the enterprise tier; consumers are
    # offered the same) minus the trusted tier's.
    trusted_gap = jnp.maximum(best[:, 1] - best[:, 0], 0.0)
    gap_run = jnp.where(trusted_gap > p.gap_threshold, s.gap_run + 1.0, 0.0)
    access = access_index(p, served, m.lag)
    ratio, gini = north_south(p, access)
    total = jnp.sum(wanted)
    unmet = jnp.where(total > 0, jnp.clip(1.0 - jnp.sum(at_choice) / jnp.maximum(total, 1e-30), 0.0, 1.0), 0.0)
    unserved = jnp.where(wanted > 0, jnp.clip(1.0 - got / jnp.maximum(wanted, 1e-30), 0.0, 1.0), 0.0)
    return Service(
        wanted=wanted, front=front, log_served=log_served,
        log_served0=jnp.where(t == 0, log_served, s.log_served0),
        lag=jnp.where(got > 0, jnp.sum(served * m.lag, axis=-1) / jnp.maximum(got, 1e-30), best),
        per_capita=jnp.sum(front, axis=1) / p.population,
        trusted_gap=trusted_gap, gap_run=gap_run,
        # gap_duration comes through a float32 log and exp: a whole number of months may read
        # a hair above itself (12 -> 12.0000003), which must not cost a month.
        gap_hit=jnp.maximum(s.gap_hit, (gap_run >= p.gap_duration - 1e-3).astype(dtype)),
        access=access, ratio=ratio, gini=gini,
        unmet=jnp.where(unmet < allocation.RESOLUTION, 0.0, unmet),  # float32 residue of a sum of full fills
        unserved=jnp.where(unserved < allocation.RESOLUTION, 0.0, unserved),
        open=jnp.where(jnp.sum(got, axis=1) > 0, jnp.sum(served[..., 2], axis=1)
                       / jnp.maximum(jnp.sum(got, axis=1), 1e-30), 0.0),
    )


def _observed(p: Params, nz: Noise, t_years, adoption, sup, log_cost, log_served, log_served0) -> dict:
    """The published figures' outputs: each latent quantity as a series publishes it, with
    the series' level and its noise."""
    return dict(
        # a published figure: the latent share, its series' level and drift (0 for the
        # Microsoft share the adoption model fits), an edition's shock common to every
        # region, and the figure's own scatter, each on the logit
        adoption_observed=jax.nn.sigmoid(jnp.log(adoption) - jnp.log1p(-adoption) + p.adoption_obs_sd * nz.observe[0]
                                         + p.adoption_edition_sd * nz.adoption[-1]
                                         + p.adoption_obs_level + p.adoption_obs_drift * t_years),
        compute_observed=jnp.sum(sup.compute) * jnp.exp(p.compute_obs_sd * nz.observe[1, 0]),
        # The heavy-tailed noise is clipped (OBS_LOG_CLIP) so that a rare draw cannot
        # overflow float32 and cost the trajectory every band.
        tokens_observed=jnp.exp(p.tokens_obs_level + log_served - log_served0 + jnp.clip(
            p.tokens_obs_sd * student_t4(nz.observe_tails[0:5]), -OBS_LOG_CLIP, OBS_LOG_CLIP)),
        list_price_observed=p.list_price0 * jnp.exp(log_cost - jnp.log(p.cost_frontier0) + jnp.clip(
            asymmetric_laplace(nz.observe_tails[5:9], p.list_price_scale, LIST_PRICE_QUANTILE),
            -OBS_LOG_CLIP, OBS_LOG_CLIP)),
        chip_power_observed=jnp.sum(sup.power_draw) / p.power_overhead * jnp.exp(
            p.chip_power_obs_sd * nz.observe_tails[9]),
    )
