"""Compute supply: installed AI compute per region, K_r(t) in H100-equivalents.

Growth rate (annual, log) of region r:
    trend_r(t) = g_inf_r + (g0_r - g_inf_r) * 2^(-t / halflife)
    dev_r(t+dt) = dev_r(t) - kappa dev_r(t) dt + sigma_g sqrt(dt) e_r
    g_r(t) = min(trend_r + dev_r + buildout_r * 1[buildout window], cap_r)
    log K_r(t+dt) = log K_r(t) + f_r (g_r dt + sigma_K sqrt(dt) e'_r)
where e_r = sqrt(rho) z_common + sqrt(1 - rho) z_r (regional shocks with a common factor),
f_r = moratorium_growth_factor while region r's moratorium holds, else 1. dt = 1/12 yr.
With sigma_g = 0 and a constant trend, log K is a random walk with drift: log K(T) is
normal with mean log K0 + g T and variance sigma_K^2 T.
"""
from __future__ import annotations

import jax.numpy as jnp

from kernels import events
from kernels.params import Params


def trend(g0, g_inf, halflife, t_years):
    """Growth rate moving from g0 to g_inf with the given half-life (years)."""
    return g_inf + (g0 - g_inf) * jnp.exp2(-t_years / halflife)


def correlated(rho, z_common, z):
    return jnp.sqrt(rho) * z_common + jnp.sqrt(1.0 - rho) * z


def step(p: Params, log_compute, growth_dev, moratorium_hit, noise, t, dt):
    """One month of compute supply; returns (log_compute, growth_dev)."""
    t_years = t * dt
    sqdt = jnp.sqrt(dt)
    dev = (
        growth_dev
        - p.growth_reversion * growth_dev * dt
        + p.growth_vol * sqdt * correlated(p.shock_corr, noise.growth_common, noise.growth)
    )
    growth = trend(p.growth0, p.growth_inf, p.growth_halflife, t_years) + dev
    growth = growth + p.buildout_extra_growth * events.window(p.buildout_start, p.buildout_end, t)
    growth = jnp.minimum(growth, p.growth_cap)
    factor = jnp.where(
        events.moratorium_active(p, moratorium_hit, t) > 0, p.moratorium_growth_factor, 1.0
    )
    level = p.compute_vol * sqdt * correlated(p.shock_corr, noise.compute_common, noise.compute_level)
    return log_compute + factor * (growth * dt + level), dev


def inference_capacity(p: Params, log_compute, throughput):
    """Frontier tokens per month the global inference pool can serve."""
    return p.inference_share * jnp.sum(jnp.exp(log_compute)) * throughput
