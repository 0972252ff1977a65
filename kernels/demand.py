"""Token demand per region and tier, before the scarcity response.

Adoption (share of working-age people using generative AI), a logistic with ceiling A
whose diffusion rate wanders:
    a_r(t) = A_r sigmoid(logit(a0_r / A_r) + rate_r t_years + D_r(t)),
    D_r(t + dt) = D_r(t) + d_r(t + dt) dt,   D_r(0) = 0,
    d_r(t + dt) = e^(-theta dt) d_r(t) + sigma sqrt((1 - e^(-2 theta dt)) / (2 theta)) (sqrt(rho) z_c + sqrt(1 - rho) z_r),
an Ornstein-Uhlenbeck deviation d of the rate (discretised exactly; theta =
adoption_rate_reversion, sigma = adoption_rate_vol, rho = adoption_common the share of its
shocks' variance common to the regions), which starts from its stationary law (today's
rate is not known to be the fitted trend's; priors/models/adoption_noise.py fits it so):
    d_r(0) = sigma / sqrt(2 theta) (sqrt(rho) z_c + sqrt(1 - rho) z_r).
With sigma = 0, D = 0 and a is the fitted logistic.
Agentic share s_r(t) likewise, with start and ceiling scaled by regional income,
    s_r(t) = logistic(s0 v_r, ceiling v_r, rate),  v_r = (gni_r / gni_max)^agentic_income
(the richest region has v = 1: automation is ~77% of API traffic, ~50% of consumer-app use,
and API use concentrates in rich economies). Tokens per user per month:
    u_r(t) = tokens_assisted exp(assisted_growth t_years) ((1 - s_r) + s_r M),  M = agentic multiplier
Consumer demand:   C_r = population_r a_r u_r(t)
Enterprise demand: log E_r(t+dt) = log E_r + (trend_E(t) - phi x(t)) dt + sigma_E sqrt(dt) z_r,
                   x(t) = max(0, log(U / (K scarcity0))) last month (U: compute the wanted
                   tokens need at the classes chosen, K: capacity; phi = demand_feedback):
                   demand rationed beyond the start's scarcity stops compounding (firms do not
                   build the workflows they cannot run), so wanted compute settles near
                   scarcity0 K exp(growth gap / phi); the fitted growth holds at the start's,
                   scaled by the region's agentic mix relative to the start.
Trusted demand is its own quantity, sized from public government and defence programmes,
with its own growth and the same feedback (contracts grow into the capacity there is):
    log T_r(t+dt) = log T_r + (trusted_growth - phi x(t)) dt,   T_r(0) = trusted0_r.
All demand responds to the frontier cost with elasticity eps: (c_F / c_F0)^(-eps).
This is demand for all tokens (what the total-token series measure); menu.py splits it
across the model classes, and consumers' across the free and paid plans.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from kernels.params import Params
from kernels.supply import trend


def logistic(start, ceiling, rate, t_years):
    ratio = jnp.clip(start / ceiling, 1e-6, 1.0 - 1e-6)
    return ceiling * jax.nn.sigmoid(jnp.log(ratio) - jnp.log1p(-ratio) + rate * t_years)


def adoption(p: Params, t_years, shift=0.0):
    """(region,) share of the working-age population using generative AI; shift: D(t), the
    logit position's departure from the fitted logistic (adoption_step)."""
    return logistic(p.adoption0, p.adoption_ceiling, p.adoption_rate * t_years + shift, 1.0)


def _rate_shock(p: Params, z, r):
    """(region,) unit-variance rate shocks, a share adoption_common of their variance
    common: z[0:r] regional, z[r] common."""
    rho = p.adoption_common
    return jnp.sqrt(rho) * z[r] + jnp.sqrt(1.0 - rho) * z[:r]


def adoption_dev0(p: Params, z):
    """(region,) the rate deviation at the start, from its stationary law. z: (region + 1,)
    normals, [0:R] regional, [R] common."""
    sd = p.adoption_rate_vol / jnp.sqrt(2.0 * p.adoption_rate_reversion)
    return sd * _rate_shock(p, z, z.shape[0] - 1)


def adoption_step(p: Params, dev, shift, z, dt):
    """(d, D) one month on. z: (region + 2,) normals, [0:R] regional, [R] common shocks."""
    decay = jnp.exp(-p.adoption_rate_reversion * dt)
    sd = p.adoption_rate_vol * jnp.sqrt(-jnp.expm1(-2.0 * p.adoption_rate_reversion * dt)
                                        / (2.0 * p.adoption_rate_reversion))
    dev = decay * dev + sd * _rate_shock(p, z, dev.shape[0])
    return dev, shift + dev * dt


def agentic_mix(p: Params, t_years):
    """(region,) tokens per user relative to an assisted user: (1 - s_r) + s_r M."""
    reach = (p.gni_per_capita / jnp.max(p.gni_per_capita)) ** p.agentic_income
    s = logistic(p.agentic_share0 * reach, p.agentic_ceiling * reach, p.agentic_rate, t_years)
    return 1.0 - s + s * p.agentic_multiplier


def enterprise_step(p: Params, log_enterprise, z, t, dt, log_excess):
    """log_excess: () max(0, log(wanted compute / (capacity scarcity0))) last month."""
    g = trend(p.enterprise_growth0, p.enterprise_growth_inf, p.enterprise_halflife, t * dt)
    return log_enterprise + (g - p.demand_feedback * log_excess) * dt + p.enterprise_vol * jnp.sqrt(dt) * z


def trusted_step(p: Params, log_trusted, dt, log_excess):
    """log T_r one month on (log_excess as in enterprise_step)."""
    return log_trusted + (p.trusted_growth - p.demand_feedback * log_excess) * dt


def tokens_per_user(p: Params, t_years):
    """(region,) tokens a consumer user wants per month, u_r(t) (before the price response)."""
    return p.tokens_assisted * jnp.exp(p.assisted_growth * t_years) * agentic_mix(p, t_years)


def plan_tokens(p: Params, t_years):
    """Tokens in a basic (assisted-use) plan per month: what affordability prices. Agentic
    use on top scales with what a user can spend, through the price response."""
    return p.tokens_assisted * jnp.exp(p.assisted_growth * t_years)


def price_response(p: Params, log_cost):
    """Demand relative to the start's from the frontier cost's move: (c_F / c_F0)^(-eps)."""
    return jnp.exp(-p.elasticity * (log_cost - jnp.log(p.cost_frontier0)))


def unconstrained(p: Params, log_enterprise, log_trusted, log_cost, t_years, adopted):
    """(region, tier) token demand per month, every class together. adopted: (region,) the
    month's adoption share.

    Tiers: trusted, enterprise, consumer (the consumer column is every user's wanted tokens,
    before the free tier's allowance caps the free users' share: menu.wanted)."""
    consumer = p.population * adopted * tokens_per_user(p, t_years)
    enterprise = jnp.exp(log_enterprise) * agentic_mix(p, t_years) / agentic_mix(p, 0.0)
    tiers = jnp.stack([jnp.exp(log_trusted), enterprise, consumer], axis=-1)
    return tiers * price_response(p, log_cost)
