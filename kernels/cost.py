"""Inference cost: the frontier stays expensive while old capability gets cheap.

    log c_F(t+dt) = log c_F(t) + (g_front - g_hw - g_serve) dt + sigma_c sqrt(dt) z
    c(t, L)       = c_F(t) exp(-(g_alg + g_front) L / 12)      (a model L months behind)
    c_fixed(t)    = c(t, 12 t_years) = capability of the start, served at t
    q(t)          = q0 exp((g_serve - g_front) t_years)       (frontier tokens per H100e-month)
So a fixed capability gets cheaper at g_hw + g_serve + g_alg per year.
"""
from __future__ import annotations

import jax.numpy as jnp

from kernels.params import Params


def step(p: Params, log_cost, z, dt):
    return log_cost + (p.g_front - p.g_hw - p.g_serve) * dt + p.cost_vol * jnp.sqrt(dt) * z


def lagged(p: Params, log_cost, lag_months):
    """Cost per 1M tokens of a model lag_months behind the frontier [USD]."""
    return jnp.exp(log_cost - (p.g_alg + p.g_front) * lag_months / 12.0)


def throughput(p: Params, t_years):
    """Frontier tokens served per H100e per month."""
    return p.tokens_per_h100e * jnp.exp((p.g_serve - p.g_front) * t_years)
