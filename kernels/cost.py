"""Inference cost: the frontier stays expensive while old capability gets cheap, never free.

Serving efficiency gains saturate: their rate s(t) = g_serve 2^(-t / serve_halflife), so
their cumulative effect is S(t) = g_serve h / ln 2 (1 - 2^(-t/h)) (bounded: numeric formats
and batching have limits). The frontier's cost per token:
    log c_F(t+dt) = log c_F(t) + (g_front - g_hw - s(t)) dt + sigma_c sqrt(dt) z
    q(t) = q0 exp(S(t) - g_front t)       (frontier tokens per H100e-month)
The floor: what the smallest model with the start's frontier capability costs to serve,
hardware amortisation plus energy per H100e-month over its tokens per H100e-month,
    floor(t) = 1e6 (C_hw e^(-g_hw t) / (12 L) + kW e^(-g_power_eff t) 730 h p_e) / q_floor
A model L months behind the frontier, and a fixed capability (the start's frontier) at t:
    c(t, L)      = floor(t) + c_F(t) exp(-(g_alg + g_front) L / 12)
    c_fixed(t)   = c(t, 12 t) = floor(t) + c_F0 exp(-(g_hw + g_alg) t - S(t)) (noise aside)
so a fixed capability first gets cheaper at g_hw + g_serve + g_alg a year (Epoch's
decline factors) and then saturates at the floor, which falls only with hardware.
"""
from __future__ import annotations

import jax.numpy as jnp

from kernels.params import Params

HOURS_PER_MONTH = 730.0


def serving_rate(p: Params, t_years):
    return p.g_serve * jnp.exp2(-t_years / p.serve_halflife)


def serving_gain(p: Params, t_years):
    """S(t): cumulative log serving efficiency gain since the start."""
    h = p.serve_halflife
    return p.g_serve * h / jnp.log(2.0) * (1.0 - jnp.exp2(-t_years / h))


def step(p: Params, log_cost, z, t_years, dt):
    """One month of the frontier's log cost (the serving rate taken at the month's start)."""
    drift = p.g_front - p.g_hw - serving_rate(p, t_years)
    return log_cost + drift * dt + p.cost_vol * jnp.sqrt(dt) * z


def hardware_price(p: Params, t_years):
    """Price of an H100e of new hardware [USD]: it falls with price-performance (g_hw)."""
    return p.hardware_cost0 * jnp.exp(-p.g_hw * t_years)


def floor(p: Params, t_years):
    """Cost floor of the start's frontier capability [USD per 1M tokens]."""
    capital = hardware_price(p, t_years) / (12.0 * p.hardware_lifetime)
    energy = p.kw_per_h100e0 * jnp.exp(-p.g_power_eff * t_years) * HOURS_PER_MONTH * p.electricity_price
    return 1e6 * (capital + energy) / p.floor_tokens_per_h100e


def lagged(p: Params, log_cost, lag_months, t_years):
    """Cost of a model lag_months behind the frontier [USD per 1M tokens]."""
    return floor(p, t_years) + jnp.exp(log_cost - (p.g_alg + p.g_front) * lag_months / 12.0)


def throughput(p: Params, throughput0, t_years):
    """Frontier tokens served per H100e per month."""
    return throughput0 * jnp.exp(serving_gain(p, t_years) - p.g_front * t_years)
