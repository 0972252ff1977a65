"""The per-trajectory state carried from month to month, and the month's noise."""
from __future__ import annotations

from typing import NamedTuple

import jax


class State(NamedTuple):
    """State of one trajectory at the start of a month.

    compute:           (region,) installed AI compute [H100e]
    power_draw:        (region,) facility power the installed hardware draws [GW]
    log_power:         (region,) log of AI data-centre power capacity [log GW]
    growth_dev:        (region,) deviation of the wanted hardware growth rate from its trend [1/yr]
    log_cost:          ()        log cost of serving frontier tokens [log USD/1M tokens]
    log_enterprise:    (region,) log enterprise token demand [log tokens/month]
    log_trusted:       (region,) log trusted-tier token demand [log tokens/month]
    log_price:         (tier, class) log list prices (sticky: prices.py) [log USD/1M tokens]
    log_excess:        ()        max(0, log(compute wanted / (capacity scarcity0))) last month (demand.py)
    restricted:        ()        1.0 while a security restriction holds
    public_gap:        ()        G: months the public's newest frontier release trails the
                                 trusted tier's (events.py: staged release) [month]
    release_since:     ()        n: months the current restriction state (restricted or not) has lasted,
                                 capped at events.SINCE_CAP [month]
    gap_run:           (region,) consecutive months the trusted gap has exceeded gap_threshold [month]
    gap_hit:           (region,) 1.0 once a run has lasted gap_duration months (gap_persistence)
    moratorium_hit:    (region,) 1.0 where this trajectory's moratorium happens (drawn once)
    throughput0:       ()        frontier tokens per H100e-month at the start, set so that
                                 frontier demand / capacity = scarcity0 [tokens/(H100e month)]
    log_served0:       ()        log of all tokens served in the first month (0 before it is
                                 simulated) [log tokens/month]
    finite:            ()        True while every output so far was finite
    adoption_dev:      (region,) deviation of the adoption diffusion rate from its fitted rate
                                 (from its stationary law at the start: demand.py) [logit/yr]
    adoption_shift:    (region,) the deviations' integral: the logit adoption position's departure
                                 from the fitted logistic (demand.py) [logit]
    """

    compute: jax.Array
    power_draw: jax.Array
    log_power: jax.Array
    growth_dev: jax.Array
    log_cost: jax.Array
    log_enterprise: jax.Array
    log_trusted: jax.Array
    log_price: jax.Array
    log_excess: jax.Array
    restricted: jax.Array
    public_gap: jax.Array
    release_since: jax.Array
    gap_run: jax.Array
    gap_hit: jax.Array
    moratorium_hit: jax.Array
    throughput0: jax.Array
    log_served0: jax.Array
    finite: jax.Array
    adoption_dev: jax.Array
    adoption_shift: jax.Array


class Noise(NamedTuple):
    """One month's standard-normal shocks for one trajectory.

    compute_level: (region,)  compute_common: ()  growth: (region,)  growth_common: ()
    power: (region,)  power_common: ()  cost: ()  enterprise: (region,)
    restrict_start: ()  restrict_end: ()
    observe: (2, region) measurement noise of the published figures, from a stream of its
        own (keys.OBSERVE): [0] adoption by region, [1, 0] the world's compute stock
    observe_tails: (10,) normals for the heavier-tailed measurement noise, from a stream of
        its own (keys.OBSERVE_TAILS): [0:5] a Student-t(4) for a published token volume,
        [5:9] two exponentials for a released model's list price (asymmetric Laplace), [9]
        a normal for the world's installed chip power
    adoption: (region + 2,) normals from a stream of their own (keys.ADOPTION): [0:R] each
        region's adoption rate shock, [R] the shock common to the regions, [R + 1] a
        published adoption edition's shock (common to every region)
    """

    compute_level: jax.Array
    compute_common: jax.Array
    growth: jax.Array
    growth_common: jax.Array
    power: jax.Array
    power_common: jax.Array
    cost: jax.Array
    enterprise: jax.Array
    restrict_start: jax.Array
    restrict_end: jax.Array
    observe: jax.Array | None = None
    observe_tails: jax.Array | None = None
    adoption: jax.Array | None = None


def noise_size(n_regions: int) -> int:
    return 4 * n_regions + 6


def split_noise(z: jax.Array, n_regions: int) -> Noise:
    """Split a (4R + 6,) normal vector into named shocks, always in the same order."""
    r = n_regions
    return Noise(
        compute_level=z[0:r],
        compute_common=z[r],
        growth=z[r + 1 : 2 * r + 1],
        growth_common=z[2 * r + 1],
        power=z[2 * r + 2 : 3 * r + 2],
        power_common=z[3 * r + 2],
        cost=z[3 * r + 3],
        enterprise=z[3 * r + 4 : 4 * r + 4],
        restrict_start=z[4 * r + 4],
        restrict_end=z[4 * r + 5],
    )
