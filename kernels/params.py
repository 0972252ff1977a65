"""Parameter registry, prior arrays and per-trajectory parameter sampling.

Every number the model uses is a named parameter here: its dims (scalar, per region or per
tier), its support (which fixes the prior family), its unit and meaning. Defaults, priors
and sources live in the scenario files (``forecast/scenario/builtin/baseline.toml``), never here.

A prior is stored in the parameter's unconstrained space as ``(loc, scale)`` arrays:
``value = transform(loc + scale * z)`` with ``z ~ N(0, 1)``, where the transform is ``exp``
for positive parameters (a lognormal prior), the logistic function for parameters in [0, 1]
(a logit-normal prior) and the identity otherwise (a normal prior). A fixed value has
``scale = 0``. Because the family is a property of the parameter, not of the scenario,
changing any prior's numbers never changes the compiled program.

A calibrated prior adds posterior draws (``draws``, a Params-shaped pytree whose leaves are
``(n_draws, *shape)``, unconstrained) and a mask per leaf of the entries they supply
(``from_draws``): each trajectory picks one draw index by its own key and takes those
entries from it; every other entry comes from ``loc + scale * z`` as before. An
uncalibrated prior has one draw and all-false masks, so both cases are one program.
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
    # compute supply: power, hardware, retirement (supply.py)
    ParamSpec("compute0", "region", "positive", "H100e", "installed AI compute at the start"),
    ParamSpec("growth0", "region", "positive", "1/yr", "initial log growth rate of the compute buildout wanted"),
    ParamSpec("growth_inf", "region", "positive", "1/yr", "long-run log growth rate of the compute buildout wanted"),
    ParamSpec("growth_halflife", "", "positive", "yr", "half-life of the move from growth0 to growth_inf"),
    ParamSpec("growth_reversion", "", "positive", "1/yr", "mean-reversion rate of growth-rate shocks"),
    ParamSpec("growth_vol", "", "positive", "1/yr^1.5", "volatility of growth-rate shocks"),
    ParamSpec("compute_vol", "", "positive", "1/yr^0.5", "volatility of log compute level shocks"),
    ParamSpec("shock_corr", "", "unit", "1", "share of shock variance common to all regions"),
    ParamSpec("hardware_lifetime", "", "positive", "yr", "mean service life of AI hardware before retirement"),
    ParamSpec("fleet_kw0", "", "positive", "kW/H100e", "facility power per H100e of the installed fleet at the start"),
    ParamSpec("kw_per_h100e0", "", "positive", "kW/H100e", "facility power per H100e of hardware installed at the start"),
    ParamSpec("g_power_eff", "", "positive", "1/yr", "log rate at which new hardware's power per H100e falls"),
    ParamSpec("power_headroom0", "", "positive", "1", "AI power capacity over the fleet's draw at the start, minus 1"),
    ParamSpec("power_growth0", "region", "positive", "1/yr", "initial log growth rate of AI power capacity"),
    ParamSpec("power_growth_inf", "", "positive", "1/yr", "long-run log growth rate of AI power capacity"),
    ParamSpec("power_halflife", "", "positive", "yr", "half-life of the move from power_growth0 to power_growth_inf"),
    ParamSpec("power_vol", "", "positive", "1/yr^0.5", "volatility of log power capacity shocks"),
    ParamSpec("inference_share", "", "unit", "1", "share of compute serving inference"),
    ParamSpec("scarcity0", "", "positive", "1", "compute the wanted tokens need (every class, as chosen) over capacity at the start"),
    # policies acting on supply (supply.py)
    ParamSpec("moratorium_probability", "region", "unit", "1", "probability that the region's moratorium happens"),
    ParamSpec("moratorium_start", "", "month", "month", "first month of the moratorium"),
    ParamSpec("moratorium_end", "", "month", "month", "first month after the moratorium"),
    ParamSpec("moratorium_growth_factor", "", "unit", "1", "power-capacity growth multiplier while a moratorium holds"),
    ParamSpec("buildout_extra_growth", "region", "real", "1/yr", "log growth added to power and hardware while the buildout window holds (no budget: capex says what it costs)"),
    ParamSpec("buildout_start", "", "month", "month", "first month of the buildout"),
    ParamSpec("buildout_end", "", "month", "month", "first month after the buildout"),
    ParamSpec("growth_cap", "region", "positive", "1/yr", "cap on the hardware growth rate (export controls)"),
    ParamSpec("moratorium_leakage", "", "unit", "1", "share of the power capacity a moratorium blocks that is built in other regions instead"),
    ParamSpec("compute_licence", "region", "positive", "H100e", "installed compute the chip exporters license the region to hold (export-control country tiers)"),
    # inference cost: frontier, lagging, floor (cost.py)
    ParamSpec("cost_frontier0", "", "positive", "USD/1M tokens", "cost of serving frontier tokens at the start"),
    ParamSpec("g_hw", "", "positive", "1/yr", "log rate of hardware price-performance improvement"),
    ParamSpec("g_alg", "", "positive", "1/yr", "log rate at which algorithms cut the cost of a fixed capability above its floor"),
    ParamSpec("g_front", "", "positive", "1/yr", "log growth of frontier compute per token"),
    ParamSpec("g_serve", "", "positive", "1/yr", "initial log rate of serving efficiency gains"),
    ParamSpec("serve_halflife", "", "positive", "yr", "half-life of the serving efficiency gain rate (the gains saturate)"),
    ParamSpec("cost_vol", "", "positive", "1/yr^0.5", "volatility of log frontier cost"),
    ParamSpec("hardware_cost0", "", "positive", "USD/H100e", "purchase cost of one H100e of new hardware at the start"),
    ParamSpec("electricity_price", "", "positive", "USD/kWh", "price of electricity for data centres"),
    ParamSpec("floor_tokens_per_h100e", "", "positive", "tokens/(H100e month)", "tokens per H100e-month of the smallest model with the start's frontier capability"),
    # the menu of model classes: frontier, mid, open (menu.py)
    ParamSpec("mid_compute", "", "unit", "1", "compute per mid-class token over the frontier's"),
    ParamSpec("open_compute", "", "unit", "1", "compute per open-class token over the mid class's"),
    ParamSpec("mid_lag", "", "positive", "month", "how far the labs' mid class trails the frontier"),
    ParamSpec("open_lag", "", "positive", "month", "how far open-weight models trail the frontier"),
    ParamSpec("stack_lag", "region", "positive", "month", "how far the region's own model stack trails the frontier"),
    ParamSpec("mid_appeal", "", "real", "1", "appeal of the mid class over the frontier at equal lag and price (logit)"),
    ParamSpec("open_appeal", "", "real", "1", "appeal of the open class over the frontier at equal lag and price (logit)"),
    ParamSpec("lag_aversion", "", "positive", "1/month", "fall in a class's logit utility per month of capability lag"),
    ParamSpec("price_sensitivity", "", "positive", "1", "fall in logit utility per unit of log list price: enterprise tier, richest region"),
    ParamSpec("tier_sensitivity", "tier", "positive", "1", "each tier's price sensitivity over the enterprise tier's"),
    ParamSpec("income_sensitivity", "", "positive", "1", "exponent of (richest GNI / region's GNI) on price sensitivity"),
    # consumer plans (menu.py, affordability.py)
    ParamSpec("free_allowance", "", "positive", "tokens/(user month)", "monthly token allowance of the free tier (mid class)"),
    ParamSpec("plan_price", "region", "positive", "USD/month", "price of the paid consumer plan (frontier access) in the region"),
    ParamSpec("paid_propensity", "", "unit", "1", "share of consumer users who can afford the paid plan that buy it"),
    # prices (prices.py)
    ParamSpec("markup", "tier", "positive", "1", "price over cost per tier"),
    ParamSpec("scarcity_passthrough", "tier", "unit", "1", "exponent on the market-clearing multiplier in each tier's frontier price target"),
    ParamSpec("premium_max", "", "positive", "1", "largest frontier-over-mid list-price ratio users pay for capability"),
    ParamSpec("price_halflife", "", "positive", "yr", "half-life of a list price's move toward its target"),
    ParamSpec("elasticity", "", "positive", "1", "price elasticity of token demand"),
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
    ParamSpec("agentic_income", "", "positive", "1", "exponent of (region's GNI / richest GNI) on the agentic share and its ceiling"),
    ParamSpec("enterprise0", "region", "positive", "tokens/month", "enterprise frontier-token demand at the start"),
    ParamSpec("enterprise_growth0", "", "positive", "1/yr", "initial log growth of enterprise demand"),
    ParamSpec("enterprise_growth_inf", "", "positive", "1/yr", "long-run log growth of enterprise demand"),
    ParamSpec("enterprise_halflife", "", "positive", "yr", "half-life of the move between the two growth rates"),
    ParamSpec("enterprise_vol", "", "positive", "1/yr^0.5", "volatility of log enterprise demand"),
    ParamSpec("demand_feedback", "", "positive", "1/yr", "fall in enterprise demand growth per unit of log excess scarcity over the start's"),
    ParamSpec("trusted0", "region", "positive", "tokens/month", "trusted-tier token demand at the start (government, defence, critical infrastructure)"),
    ParamSpec("trusted_growth", "", "positive", "1/yr", "log growth of trusted-tier token demand"),
    # affordability (affordability.py)
    ParamSpec("gni_per_capita", "region", "positive", "USD/yr", "gross national income per capita (the mean of the income distribution)"),
    ParamSpec("income_gini", "region", "unit", "1", "Gini coefficient of income within the region"),
    ParamSpec("ai_budget_share", "tier", "unit", "1", "share of income a user (or an employer, per worker) will spend on the tier's plan"),
    # regional pools and trade (allocation.py)
    ParamSpec("hosts_frontier", "region", "unit", "1", "1 where the region's capacity may serve the frontier model"),
    ParamSpec("frontier_access", "region", "unit", "1", "1 where the region's users may be served the frontier model"),
    ParamSpec("frontier_home", "region", "unit", "1", "1 for the region(s) whose capacity backs access guarantees"),
    ParamSpec("import_friction", "region", "unit", "1", "share of imported tokens lost to sovereignty and latency friction"),
    ParamSpec("access_weight", "region", "unit", "1", "regional priority weight when pooled capacity is rationed"),
    ParamSpec("tier_weight", "tier", "unit", "1", "tier priority weight when capacity is rationed"),
    ParamSpec("upgrade_weight", "", "unit", "1", "priority of an upgrade from mid to frontier relative to one from open to mid"),
    ParamSpec("guarantee", "region", "unit", "1", "share of the home region's frontier capacity reserved for the region"),
    ParamSpec("guarantee_start", "", "month", "month", "first month of access guarantees"),
    # staged release and security restrictions (events.py)
    ParamSpec("release_window", "", "positive", "month", "months each frontier generation stays with the trusted tier before the public gets it"),
    ParamSpec("restrict_window", "", "positive", "month", "the release window while a security restriction holds"),
    ParamSpec("restrict_hazard", "", "unit", "1/month", "monthly probability that a security restriction begins"),
    ParamSpec("restrict_duration", "", "positive", "month", "mean duration of a security restriction"),
    ParamSpec("trusted_access", "region", "unit", "1", "1 where the trusted tier gets each frontier release first (and keeps it during a restriction)"),
    # capability-weighted access and the trusted gap (simulate.py)
    ParamSpec("capability_halflife", "", "positive", "month", "months behind the frontier at which a token counts half in access_index"),
    ParamSpec("gap_threshold", "", "positive", "month", "k: a trusted gap above k months counts toward gap_persistence"),
    ParamSpec("gap_duration", "", "positive", "month", "m: consecutive months above k that make a lasting gap (gap_persistence)"),
    # how published figures scatter around the simulated quantities (simulate.py: *_observed)
    ParamSpec("adoption_obs_sd", "", "positive", "logit", "sd of a published adoption share around the adoption curve (logit)"),
    ParamSpec("compute_obs_sd", "", "positive", "log", "sd of a published compute-stock estimate around installed compute (log)"),
    ParamSpec("tokens_obs_level", "", "real", "log tokens/month", "log level at the start of the published token series tokens_observed stands for"),
    ParamSpec("tokens_obs_sd", "", "positive", "log", "scale of a published token volume's Student-t(4) scatter around its path (log)"),
    ParamSpec("list_price0", "", "positive", "USD/1M tokens", "top-decile list price of the models released at the start"),
    ParamSpec("list_price_scale", "", "positive", "log", "scale of released models' log list prices around the top decile (asymmetric Laplace)"),
    ParamSpec("power_overhead", "", "positive", "1", "facility power over chip power (servers, networking, cooling)"),
    ParamSpec("chip_power_obs_sd", "", "positive", "log", "sd of a published installed-chip-power estimate around the installed hardware's chip power (log)"),
    # what the buildout costs (supply.py; last, so that adding it kept every other entry's normal)
    ParamSpec("facility_capex", "", "positive", "USD bn/GW", "capex of a GW of AI data-centre facility power (buildings, grid connection, cooling), chips apart"),
    ParamSpec("buildout_budget", "region", "positive", "USD bn/yr", "a buildout programme's spend on sites and chips while the buildout window holds, on top of the market's"),
    # adoption's process noise and a published edition's common shock (demand.py,
    # simulate.py; last, so that adding them kept every other entry's normal)
    ParamSpec("adoption_rate_vol", "", "positive", "1/yr^1.5", "volatility of the shocks to a region's adoption diffusion rate (logit)"),
    ParamSpec("adoption_rate_reversion", "", "positive", "1/yr", "mean-reversion rate of the adoption diffusion rate's deviation"),
    ParamSpec("adoption_common", "", "unit", "1", "share of the adoption rate shocks' variance common to all regions"),
    ParamSpec("adoption_edition_sd", "", "positive", "logit", "sd of a published adoption edition's shock, common to every region (method, panel, question)"),
    ParamSpec("adoption_obs_level", "", "real", "logit", "logit level at the start of the published adoption series adoption_observed stands for, over the adoption curve"),
    ParamSpec("adoption_obs_drift", "", "real", "logit/yr", "logit drift of that series over the adoption curve (its definition's own growth)"),
)

NAMES: tuple[str, ...] = tuple(s.name for s in SPECS)
SPEC_BY_NAME: dict[str, ParamSpec] = {s.name: s for s in SPECS}

# A NamedTuple with one array field per parameter, in registry order (a pytree).
Params = NamedTuple("Params", [(n, jax.Array) for n in NAMES])  # type: ignore[misc]


class Prior(NamedTuple):
    """Priors in unconstrained space; each leaf of loc and scale has the parameter's shape.

    draws: Params whose leaves are (n_draws, *shape) posterior draws, unconstrained;
    from_draws: Params of bool leaves with the parameter's shape, True for the entries the
    trajectory takes from its draw.
    """

    loc: Params
    scale: Params
    draws: Params
    from_draws: Params


def param_shape(spec: ParamSpec, n_regions: int, n_tiers: int) -> tuple[int, ...]:
    return {"": (), "region": (n_regions,), "tier": (n_tiers,)}[spec.dims]


def constrain(support: str, u):
    """Map an unconstrained value to the parameter's support (exp, logistic or identity)."""
    if support == "positive":
        return jnp.exp(u)
    if support == "unit":
        return jax.nn.sigmoid(u)
    return u


def unconstrain(support: str, x):
    """Inverse of constrain: log, logit or identity (0 and 1 map to -inf and inf in logit
    space). Scenarios and posterior files use it on host arrays (float32 results)."""
    x = jnp.asarray(x, jnp.float32)
    if support == "positive":
        return jnp.log(x)
    if support == "unit":
        return jnp.log(x) - jnp.log1p(-x)
    return x


def sample_params(key: jax.Array, prior: Prior, draw_key: jax.Array) -> Params:
    """Draw one trajectory's parameters: a single normal vector split field by field.

    The draw order is the registry order, so a scenario that fixes a parameter (scale 0)
    still consumes its normals and leaves every other parameter's draw unchanged: common
    random numbers across scenarios. draw_key picks the trajectory's row of the posterior
    draws (uniformly); entries flagged in prior.from_draws come from that row.
    """
    sizes = [int(jnp.size(l)) for l in prior.loc]
    dtype = prior.loc[0].dtype
    z = jax.random.normal(key, (sum(sizes),), dtype=dtype)
    n_draws = prior.draws[0].shape[0]
    row = jax.random.randint(draw_key, (), 0, n_draws)
    out, offset = [], 0
    for spec, loc, scale, draws, mask, size in zip(SPECS, prior.loc, prior.scale, prior.draws, prior.from_draws,
                                                   sizes):
        zi = z[offset : offset + size].reshape(jnp.shape(loc))
        offset += size
        out.append(_value(spec, loc, scale, draws[row].astype(dtype), mask, zi))
    return Params(*out)


def _value(spec, loc, scale, drawn, mask, zi):
    # scale == 0 keeps infinite locs (a fixed 0 or 1 in logit space) finite: no inf*0.
    u = jnp.where(mask, drawn, jnp.where(scale > 0, loc + scale * zi, loc))
    return constrain(spec.support, u)


def n_entries(prior: Prior) -> int:
    """Entries of all parameters together: the length of a trajectory's normal vector."""
    return sum(int(jnp.size(l)) for l in prior.loc)


def params_from(prior: Prior, z, rows) -> Params:
    """One trajectory's parameters from given normals and posterior rows, entry by entry.

    z: (n_entries,) normals in registry order (sample_params draws the same layout);
    rows: (n_entries,) int, the posterior row each entry flagged in prior.from_draws takes
    (a sensitivity design gives each fitted model its own row). Same values as
    sample_params when every row is the trajectory's row and z its normals."""
    dtype = prior.loc[0].dtype
    out, offset = [], 0
    for spec, loc, scale, draws, mask in zip(SPECS, prior.loc, prior.scale, prior.draws, prior.from_draws):
        shape = jnp.shape(loc)
        size = int(jnp.size(loc))
        zi = z[offset : offset + size].reshape(shape)
        ri = rows[offset : offset + size].reshape(shape)
        offset += size
        drawn = jnp.take_along_axis(draws, ri[None], axis=0)[0].astype(dtype)
        out.append(_value(spec, loc, scale, drawn, mask, zi))
    return Params(*out)


# The physical range of each parameter's values, in its own unit: the widest any source or
# physical argument allows. A scenario's value or median outside it, or a posterior draw
# outside it, is refused by name (a unit slip or a broken file, never a forecast); the
# bounds are inclusive. Month parameters have none (any month is allowed).
RANGES: dict[str, tuple[float, float]] = {
    "compute0": (1e3, 1e10), "growth0": (0.0, 5.0), "growth_inf": (0.0, 5.0), "growth_halflife": (0.05, 100.0),
    "growth_reversion": (0.0, 100.0), "growth_vol": (0.0, 5.0), "compute_vol": (0.0, 5.0), "shock_corr": (0.0, 1.0),
    "hardware_lifetime": (0.5, 30.0), "fleet_kw0": (0.05, 20.0), "kw_per_h100e0": (0.05, 20.0),
    "g_power_eff": (0.0, 3.0), "power_headroom0": (0.0, 1e4), "power_growth0": (0.0, 5.0),
    "power_growth_inf": (0.0, 5.0), "power_halflife": (0.05, 100.0), "power_vol": (0.0, 5.0),
    "inference_share": (0.0, 1.0), "scarcity0": (0.01, 100.0),
    "moratorium_probability": (0.0, 1.0), "moratorium_growth_factor": (0.0, 1.0),
    "buildout_extra_growth": (-5.0, 5.0), "growth_cap": (0.0, 100.0),
    "moratorium_leakage": (0.0, 1.0), "compute_licence": (0.0, 1e13),
    "cost_frontier0": (1e-4, 1e4), "g_hw": (0.0, 3.0), "g_alg": (0.0, 20.0), "g_front": (0.0, 5.0),
    "g_serve": (0.0, 5.0), "serve_halflife": (0.05, 100.0), "cost_vol": (0.0, 5.0), "hardware_cost0": (100.0, 1e6),
    "electricity_price": (1e-3, 2.0), "floor_tokens_per_h100e": (1e6, 1e16),
    "mid_compute": (0.0, 1.0), "open_compute": (0.0, 1.0), "mid_lag": (0.0, 120.0),
    "open_lag": (0.0, 240.0), "stack_lag": (0.0, 1000.0), "mid_appeal": (-20.0, 20.0), "open_appeal": (-20.0, 20.0),
    "lag_aversion": (0.0, 5.0), "price_sensitivity": (0.0, 10.0), "tier_sensitivity": (0.0, 100.0), "income_sensitivity": (0.0, 5.0),
    "free_allowance": (0.0, 1e10), "plan_price": (0.1, 1e4), "paid_propensity": (0.0, 1.0),
    "markup": (0.1, 100.0), "scarcity_passthrough": (0.0, 1.0), "premium_max": (1.0, 100.0),
    "price_halflife": (0.01, 20.0), "elasticity": (0.0, 10.0),
    "population": (1e3, 1e10), "north": (0.0, 1.0), "adoption0": (0.0, 1.0), "adoption_ceiling": (0.0, 1.0),
    "adoption_rate": (0.0, 10.0), "tokens_assisted": (1.0, 1e10), "assisted_growth": (-5.0, 5.0),
    "agentic_share0": (0.0, 1.0), "agentic_ceiling": (0.0, 1.0), "agentic_rate": (0.0, 20.0),
    "agentic_multiplier": (0.01, 1e4), "enterprise0": (1e6, 1e22), "enterprise_growth0": (0.0, 20.0),
    "enterprise_growth_inf": (0.0, 20.0), "enterprise_halflife": (0.05, 100.0), "enterprise_vol": (0.0, 5.0), "demand_feedback": (0.0, 20.0),
    "trusted0": (0.0, 1e20), "trusted_growth": (0.0, 5.0), "agentic_income": (0.0, 5.0), "gni_per_capita": (10.0, 1e6), "income_gini": (0.0, 1.0),
    "ai_budget_share": (0.0, 1.0), "hosts_frontier": (0.0, 1.0), "frontier_access": (0.0, 1.0),
    "frontier_home": (0.0, 1.0), "import_friction": (0.0, 1.0), "access_weight": (0.0, 1.0), "tier_weight": (0.0, 1.0), "upgrade_weight": (0.0, 1.0),
    "guarantee": (0.0, 1.0), "release_window": (0.0, 1200.0), "restrict_window": (0.0, 1200.0),
    "capability_halflife": (0.1, 1200.0), "gap_threshold": (0.0, 1200.0), "gap_duration": (1.0, 1200.0), "restrict_hazard": (0.0, 1.0), "restrict_duration": (0.01, 1200.0),
    "trusted_access": (0.0, 1.0), "adoption_obs_sd": (0.0, 10.0), "compute_obs_sd": (0.0, 5.0),
    "tokens_obs_level": (0.0, 60.0), "tokens_obs_sd": (0.0, 10.0), "list_price0": (1e-4, 1e4),
    "list_price_scale": (0.0, 10.0),
    # Physically >= 1 (PUE and server overhead are each >= 1); 0.8, because the shipped fit's
    # lognormal prior leaves 0.2% of its draws at 0.93-1.0 (priors/models/power.py: OVERHEAD).
    "power_overhead": (0.8, 4.0), "chip_power_obs_sd": (0.0, 5.0), "facility_capex": (0.1, 200.0),
    "buildout_budget": (0.0, 1e4), "adoption_rate_vol": (0.0, 5.0), "adoption_rate_reversion": (0.0, 100.0),
    "adoption_common": (0.0, 1.0), "adoption_edition_sd": (0.0, 5.0), "adoption_obs_level": (-10.0, 10.0),
    "adoption_obs_drift": (-5.0, 5.0),
}
# Parameters that say yes (1) or no (0): a scenario must fix them at exactly 0 or 1.
FLAGS = frozenset({"north", "hosts_frontier", "frontier_access", "frontier_home", "trusted_access"})
