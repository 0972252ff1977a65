"""Compute supply by region, limited by power, with hardware retirement.

Power capacity P_r (GW of AI data-centre capacity) grows by a trend plus shocks:
    gP_r(t) = gP_inf + (gP0_r - gP_inf) 2^(-t / power_halflife) + buildout_r 1[window]
    x_r = gP_r dt + sigma_P sqrt(dt) e''_r,   log P_r(t+dt) = log P_r + (f_r x_r if x_r > 0 else x_r)
with f_r = moratorium_growth_factor while region r's moratorium holds (construction stops;
setbacks still happen), else 1. Leakage: of the capacity a moratorium blocks,
B = sum_r P_r (e^(x_r) - e^(f_r x_r)) [GW] over regions under it with x_r > 0, the share
lambda = moratorium_leakage is built elsewhere: region j gets lambda B P_j / sum_i P_i over
the regions that may host the labs' chips (hosts_frontier) and are not under a moratorium
(capex is conserved: the rest, 1 - lambda, is not built; with no region to take it, none
is). Hardware: installed compute K_r (H100e) drawing W_r (GW). Each month a share dt/L
of both retires (L = hardware_lifetime: exponential lifetimes, the average vintage goes);
the buildout wanted is
    A_r = max(K_r (exp(g_r dt + sigma_K sqrt(dt) e'_r) - 1) + K_r dt / L, 0)
with the wanted growth rate (calibrated to shipments)
    trend_r(t) = g_inf_r + (g0_r - g_inf_r) 2^(-t / halflife)
    dev_r(t+dt) = dev_r(t) - kappa dev_r(t) dt + sigma_g sqrt(dt) e_r
    g_r = min(trend_r + dev_r + buildout_r 1[window], cap_r)
and only what the power left over can run is installed, at the power per H100e of new
hardware w(t) = kw_per_h100e0 exp(-g_power_eff t) [kW]:
    add_r = min(A_r, max(P_r - W_r, 0) 1e6 / w(t), max(L_r - K_r, 0)),  K_r += add_r,  W_r += add_r w(t) / 1e6,
where L_r = compute_licence is the installed compute the chip exporters license region r
to hold (export-control country tiers; a scenario states what it grants).
Buildout programmes: a region's budget S_r (buildout_budget, USD billion per year, spent
while the buildout window holds, on top of the market's buildout) buys sites and the chips
to fill them at the all-in cost of a GW, c_GW(t) = C_fac + C_hw e^(-g_hw t) 1e6 / (1e9 w(t))
[USD bn/GW]:
    F_r = min(S_r dt / c_GW(t), max(L_r - K_r, 0) w(t) / 1e6)   [GW]
(no more than the licence lets it fill), added to the power capacity with the leakage and
to the buildout wanted as F_r 1e6 / w(t) H100e, so that within the month the market builds
what it would have (unless the licence binds). Later months' market buildout grows with
the larger stock (the calibrated growth is a rate on the installed stock).
Since every vintage draws at least w(t) per H100e, K_r <= W_r 1e6 / w(t) <= P_r 1e6 / w(t).
Shocks are regional with a common factor: e = sqrt(rho) z_common + sqrt(1 - rho) z_r.

Capex: what the month's buildout costs, annualised [USD billion per year],
    capex_r = 12 (add_r C_hw e^(-g_hw t) + max(P_r(t+dt) - P_r(t), 0) 1e9 C_fac) / 1e9
C_hw = hardware_cost0 (an H100e's price falls with price-performance, as in the cost
floor, cost.py), C_fac = facility_capex [USD billion per GW of facility power; buildings,
grid connection, cooling]; replacing retired hardware buys chips, not sites, and a setback
(P falling) refunds nothing. A moratorium's relocated capacity is paid for where it is built.
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from kernels import cost, events
from kernels.params import Params

KW_PER_GW = 1e6


class SupplyState(NamedTuple):
    """A month's supply, (region,) each: installed compute [H100e], the power it draws
    [GW], log power capacity [log GW], and the wanted growth rate's deviation from trend."""

    compute: object
    power_draw: object
    log_power: object
    growth_dev: object


def trend(g0, g_inf, halflife, t_years):
    """Growth rate moving from g0 to g_inf with the given half-life (years)."""
    return g_inf + (g0 - g_inf) * jnp.exp2(-t_years / halflife)


def correlated(rho, z_common, z):
    return jnp.sqrt(rho) * z_common + jnp.sqrt(1.0 - rho) * z


def kw_new(p: Params, t_years):
    """Facility power per H100e of hardware installed at time t [kW]."""
    return p.kw_per_h100e0 * jnp.exp(-p.g_power_eff * t_years)


def initial(p: Params):
    """(compute, power_draw, log_power) at the start. The fleet draws at least what new
    hardware would (older hardware is never more efficient)."""
    draw = p.compute0 * jnp.maximum(p.fleet_kw0, p.kw_per_h100e0) / KW_PER_GW
    return p.compute0, draw, jnp.log(draw * (1.0 + p.power_headroom0))


def step(p: Params, s: SupplyState, moratorium_hit, noise, t, dt) -> tuple[SupplyState, object]:
    """One month of supply: (the next SupplyState, the month's capex (region,))."""
    compute, power_draw, log_power, growth_dev = s
    t_years = t * dt
    sqdt = jnp.sqrt(dt)
    building = events.window(p.buildout_start, p.buildout_end, t)
    halted = events.moratorium_active(p, moratorium_hit, t) > 0
    factor = jnp.where(halted, p.moratorium_growth_factor, 1.0)
    g_power = trend(p.power_growth0, p.power_growth_inf, p.power_halflife, t_years) + p.buildout_extra_growth * building
    shock = p.power_vol * sqdt * correlated(p.shock_corr, noise.power_common, noise.power)
    change = g_power * dt + shock
    grown = log_power + jnp.where(change > 0, factor * change, change)  # a moratorium stops growth only
    retire = dt / p.hardware_lifetime
    kept = compute * (1.0 - retire)
    w = kw_new(p, t_years + dt)  # hardware installed during the month is the month's newest
    funded = programme(p, kept, w, building, t_years, dt)
    power_before = jnp.exp(log_power)
    extra = relocated(p, power_before, change, factor, halted) + funded
    log_power = jnp.where(extra > 0, jnp.log(jnp.exp(grown) + extra), grown)

    dev = (growth_dev - p.growth_reversion * growth_dev * dt
           + p.growth_vol * sqdt * correlated(p.shock_corr, noise.growth_common, noise.growth))
    growth = trend(p.growth0, p.growth_inf, p.growth_halflife, t_years) + dev + p.buildout_extra_growth * building
    growth = jnp.minimum(growth, p.growth_cap)
    level = p.compute_vol * sqdt * correlated(p.shock_corr, noise.compute_common, noise.compute_level)
    wanted = jnp.maximum(compute * (jnp.expm1(growth * dt + level) + retire), 0.0) + funded * KW_PER_GW / w
    compute = kept
    power_draw = power_draw * (1.0 - retire)
    room = jnp.maximum(jnp.exp(log_power) - power_draw, 0.0) * KW_PER_GW / w
    added = jnp.minimum(jnp.minimum(wanted, room), jnp.maximum(p.compute_licence - compute, 0.0))
    built = jnp.maximum(jnp.exp(log_power) - power_before, 0.0)
    return (SupplyState(compute + added, power_draw + added * w / KW_PER_GW, log_power, dev),
            capex(p, added, built, t_years, dt))


def programme(p: Params, compute, w, building, t_years, dt):
    """(region,) GW of sites (with the chips to fill them) the buildout budgets buy this
    month, within what the licence lets the region fill. compute: after retirement."""
    per_gw = p.facility_capex + cost.hardware_price(p, t_years) * KW_PER_GW / (w * 1e9)
    licensed = jnp.maximum(p.compute_licence - compute, 0.0) * w / KW_PER_GW
    return jnp.minimum(p.buildout_budget * building * dt / per_gw, licensed)


def capex(p: Params, added, built, t_years, dt):
    """(region,) the month's capex, annualised [USD billion per year]: added H100e at the
    hardware price of the month, built GW of facility power at facility_capex."""
    chips = added * cost.hardware_price(p, t_years) / 1e9
    return (chips + built * p.facility_capex) / dt


def relocated(p: Params, power, change, factor, active):
    """(region,) GW of blocked capacity built in each other region this month (leakage)."""
    blocked = jnp.sum(jnp.where(active & (change > 0), power * (jnp.exp(change) - jnp.exp(factor * change)), 0.0))
    takes = p.hosts_frontier * (1.0 - active) * power
    return p.moratorium_leakage * blocked * takes / jnp.maximum(jnp.sum(takes), 1e-30)


def capacity(p: Params, compute, throughput):
    """(region,) frontier tokens per month each region's inference fleet can serve."""
    return p.inference_share * compute * throughput
