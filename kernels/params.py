"""Parameter registry, prior arrays and per-trajectory parameter sampling.

Every number the model uses is a named parameter here: its dims (scalar, per region or per
tier), its support (which fixes the prior family), its unit and meaning. Defaults, priors
and sources live in the scenario files (``forecast/scenarios/baseline.toml``), never here.

A prior is stored in the parameter's unconstrained space as ``(loc, scale)`` arrays:
``value = transform(loc + scale * z)`` with ``z ~ N(0, 1)``, where the transform is ``exp``
for positive parameters (a lognormal prior), the logistic function for parameters in [0, 1]
(a logit-normal prior) and the identity otherwise (a normal prior). A fixed value has
``scale = 0``. Because the family is a property of the parameter, not of the scenario,
changing any prior's numbers never changes the compiled program.

A calibrated prior adds a table of posterior draws (``draws``, one row per draw, columns
in the flat registry order, unconstrained) and a mask of the entries it supplies
(``from_draws``): each trajectory picks one row by its own key and takes those entries from
it; every other entry comes from ``loc + scale * z`` as before. An uncalibrated prior has a
one-row table and an all-false mask, so both cases are one program.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class ParamSpec(NamedTuple):
    name: str
    dims: str  # "" (scalar), "region" or "tier"
    support: str  # "positive" | "unit" | "real" | "month"
    unit: str
    doc: str


SUPPORTS = ("positive", "unit", "real", "month")

SPECS: tuple[ParamSpec, ...] = (
    # compute supply (supply.py)
    ParamSpec("compute0", "region", "positive", "H100e", "installed AI compute at the start"),
    ParamSpec("growth0", "region", "positive", "1/yr", "initial log growth rate of compute"),
    ParamSpec("growth_inf", "region", "positive", "1/yr", "long-run log growth rate of compute"),
    ParamSpec("growth_halflife", "", "positive", "yr", "half-life of the move from growth0 to growth_inf"),
    ParamSpec("growth_reversion", "", "positive", "1/yr", "mean-reversion rate of growth-rate shocks"),
    ParamSpec("growth_vol", "", "positive", "1/yr^1.5", "volatility of growth-rate shocks"),
    ParamSpec("compute_vol", "", "positive", "1/yr^0.5", "volatility of log compute level shocks"),
    ParamSpec("shock_corr", "", "unit", "1", "share of shock variance common to all regions"),
    ParamSpec("inference_share", "", "unit", "1", "share of compute serving inference"),
    ParamSpec("tokens_per_h100e", "", "positive", "tokens/(H100e month)", "frontier tokens one H100e serves per month at the start"),
    # policies acting on supply (supply.py)
    ParamSpec("moratorium_probability", "region", "unit", "1", "probability that the region's moratorium happens"),
    ParamSpec("moratorium_start", "", "month", "month", "first month of the moratorium"),
    ParamSpec("moratorium_end", "", "month", "month", "first month after the moratorium"),
    ParamSpec("moratorium_growth_factor", "", "unit", "1", "growth multiplier while a moratorium holds"),
    ParamSpec("buildout_extra_growth", "region", "real", "1/yr", "log growth added by an accelerated or sovereign buildout"),
    ParamSpec("buildout_start", "", "month", "month", "first month of the buildout"),
    ParamSpec("buildout_end", "", "month", "month", "first month after the buildout"),
    ParamSpec("growth_cap", "region", "positive", "1/yr", "cap on the log growth rate (export controls)"),
    # inference cost (cost.py)
    ParamSpec("cost_frontier0", "", "positive", "USD/1M tokens", "cost of serving frontier tokens at the start"),
    ParamSpec("g_hw", "", "positive", "1/yr", "log rate of hardware price-performance improvement"),
    ParamSpec("g_alg", "", "positive", "1/yr", "log rate at which algorithms cut the cost of a fixed capability"),
    ParamSpec("g_front", "", "positive", "1/yr", "log growth of frontier compute per token"),
    ParamSpec("g_serve", "", "positive", "1/yr", "log rate of serving efficiency gains for the frontier model"),
    ParamSpec("cost_vol", "", "positive", "1/yr^0.5", "volatility of log frontier cost"),
    # prices (prices.py)
    ParamSpec("markup", "tier", "positive", "1", "price over cost per tier"),
    ParamSpec("scarcity_passthrough", "tier", "unit", "1", "exponent on the scarcity multiplier in each tier's price"),
    ParamSpec("elasticity", "", "positive", "1", "price elasticity of token demand"),
    ParamSpec("scarcity_cap", "", "positive", "1", "largest scarcity multiplier the market sustains"),
    # token demand (demand.py)
    ParamSpec("population", "region", "positive", "people", "working-age (15-64) population"),
    ParamSpec("north", "region", "unit", "1", "1 for Global North regions, 0 for Global South"),
    ParamSpec("adoption0", "region", "unit", "1", "share of working-age people using generative AI at the start"),
    ParamSpec("adoption_ceiling", "region", "unit", "1", "long-run ceiling of adoption"),
    ParamSpec("adoption_rate", "region", "positive", "1/yr", "logistic rate of adoption diffusion"),
    ParamSpec("tokens_assisted", "", "positive", "tokens/(user month)", "frontier tokens per assisted user per month at the start"),
    ParamSpec("assisted_growth", "", "real", "1/yr", "log growth of tokens per assisted user"),
    ParamSpec("agentic_share0", "", "unit", "1", "agentic share of use at the start"),
    ParamSpec("agentic_ceiling", "", "unit", "1", "long-run ceiling of the agentic share"),
    ParamSpec("agentic_rate", "", "positive", "1/yr", "logistic rate of the shift to agentic use"),
    ParamSpec("agentic_multiplier", "", "positive", "1", "tokens per agentic user over tokens per assisted user"),
    ParamSpec("enterprise0", "region", "positive", "tokens/month", "enterprise frontier-token demand at the start"),
    ParamSpec("enterprise_growth0", "", "positive", "1/yr", "initial log growth of enterprise demand"),
    ParamSpec("enterprise_growth_inf", "", "positive", "1/yr", "long-run log growth of enterprise demand"),
    ParamSpec("enterprise_halflife", "", "positive", "yr", "half-life of the move between the two growth rates"),
    ParamSpec("enterprise_vol", "", "positive", "1/yr^0.5", "volatility of log enterprise demand"),
    ParamSpec("trusted_share", "region", "unit", "1", "trusted-tier demand as a share of enterprise demand"),
    # allocation (allocation.py)
    ParamSpec("access_weight", "region", "unit", "1", "regional access weight within a tier when rationed"),
    ParamSpec("guarantee", "region", "unit", "1", "1 where an access guarantee sets the weight to 1"),
    ParamSpec("guarantee_start", "", "month", "month", "first month of access guarantees"),
    ParamSpec("fallback_lag", "", "positive", "month", "how far behind the frontier the fallback model is"),
    # security restrictions (events.py)
    ParamSpec("restrict_hazard", "", "unit", "1/month", "monthly probability that a frontier release is restricted"),
    ParamSpec("restrict_duration", "", "positive", "month", "mean duration of a restriction"),
    ParamSpec("trusted_access", "region", "unit", "1", "1 where the trusted tier keeps frontier access during a restriction"),
)

NAMES: tuple[str, ...] = tuple(s.name for s in SPECS)
SPEC_BY_NAME: dict[str, ParamSpec] = {s.name: s for s in SPECS}

# A NamedTuple with one array field per parameter, in registry order (a pytree).
Params = NamedTuple("Params", [(n, jax.Array) for n in NAMES])  # type: ignore[misc]


class Prior(NamedTuple):
    """Priors in unconstrained space; each leaf of loc and scale has the parameter's shape.

    draws: (n_draws, n_entries) posterior draws, unconstrained, in the flat registry order;
    from_draws: (n_entries,) bool, the entries taken from the trajectory's draw.
    """

    loc: Params
    scale: Params
    draws: jax.Array
    from_draws: jax.Array


def n_entries(loc: Params) -> int:
    """Length of the flat parameter vector (every parameter raveled, registry order)."""
    return sum(int(jnp.size(l)) for l in loc)


def param_shape(spec: ParamSpec, n_regions: int, n_tiers: int) -> tuple[int, ...]:
    return {"": (), "region": (n_regions,), "tier": (n_tiers,)}[spec.dims]


def constrain(support: str, u: jax.Array) -> jax.Array:
    """Map an unconstrained value to the parameter's support."""
    if support == "positive":
        return jnp.exp(u)
    if support == "unit":
        return jax.nn.sigmoid(u)
    return u


def sample_params(key: jax.Array, prior: Prior, draw_key: jax.Array) -> Params:
    """Draw one trajectory's parameters: a single normal vector split field by field.

    The draw order is the registry order, so a scenario that fixes a parameter (scale 0)
    still consumes its normals and leaves every other parameter's draw unchanged: common
    random numbers across scenarios. draw_key picks the trajectory's row of the posterior
    table (uniformly); entries flagged in prior.from_draws come from that row.
    """
    sizes = [int(jnp.size(l)) for l in prior.loc]
    dtype = prior.loc[0].dtype
    z = jax.random.normal(key, (sum(sizes),), dtype=dtype)
    row = prior.draws[jax.random.randint(draw_key, (), 0, prior.draws.shape[0])].astype(dtype)
    out, offset = [], 0
    for spec, loc, scale, size in zip(SPECS, prior.loc, prior.scale, sizes):
        zi = z[offset : offset + size].reshape(jnp.shape(loc))
        di = row[offset : offset + size].reshape(jnp.shape(loc))
        mi = prior.from_draws[offset : offset + size].reshape(jnp.shape(loc))
        offset += size
        # scale == 0 keeps infinite locs (a fixed 0 or 1 in logit space) finite: no inf*0.
        u = jnp.where(mi, di, jnp.where(scale > 0, loc + scale * zi, loc))
        out.append(constrain(spec.support, u))
    return Params(*out)
