"""Affordability: who is priced out of each tier's plan.

Income in region r is lognormal with mean gni_per_capita_r and Gini G_r, so its log-sd is
    sigma_r = sqrt(2) Phi^-1((1 + G_r) / 2)       (the lognormal's Gini is 2 Phi(sigma/sqrt 2) - 1)
and its median monthly income is m_r = gni_r / 12 exp(-sigma_r^2 / 2). A user (or an
employer, per worker) spends at most ai_budget_share_k of monthly income on tier k, whose
plan costs u(t) price_k / 1e6 a month (u: the tokens of a basic assisted-use plan,
demand.plan_tokens, at the tier's price per 1M tokens).
The share of adults for whom the plan costs more than that budget,
    priced_out_rk = Phi((log(u price_k 1e-6 / budget_k) - log m_r) / sigma_r),
rises with price and falls with income (shares within 1e-6 of 0 or 1 are reported as 0 or
1). For trusted and enterprise users this prices the frontier class: the priced-out choose
among the cheaper classes (menu.py). Consumers pay a flat regional plan instead,
plan_price_r USD a month (PPP and regional plans such as ChatGPT Go): priced out of it,
    po_r = Phi((log(plan_price_r / budget_consumer) - log m_r) / sigma_r),
they keep the free tier.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import ndtr, ndtri

from kernels.params import Params

RESOLUTION = 1e-6


def income_sigma(p: Params):
    """(region,) log-sd of income from its Gini."""
    return jnp.sqrt(2.0) * ndtri(0.5 * (1.0 + jnp.clip(p.income_gini, 1e-6, 1.0 - 1e-6)))


def priced_out(p: Params, price, tokens_per_user):
    """(region, tier) share of adults whose budget is below the tier's plan cost.

    price: (tier,) USD per 1M tokens; tokens_per_user: () tokens of a plan per month."""
    return share_above(p, jnp.log(tokens_per_user * price * 1e-6)[None, :] - jnp.log(p.ai_budget_share))


def plan_priced_out(p: Params, consumer: int):
    """(region,) share of adults for whom the regional paid plan costs more than their budget."""
    return share_above(p, (jnp.log(p.plan_price) - jnp.log(p.ai_budget_share[consumer]))[:, None])[:, 0]


def share_above(p: Params, log_need):
    """(region, n) share of adults whose monthly income is below exp(log_need) (broadcast
    against (region, 1))."""
    sigma = income_sigma(p)
    log_median = jnp.log(p.gni_per_capita / 12.0) - 0.5 * sigma**2
    share = ndtr((log_need - log_median[:, None]) / sigma[:, None])
    # Resolved to one adult in a million: below it, float32 rounding of 1 - share would
    # decide whether a priced-out trickle exists at all.
    return jnp.where(share < RESOLUTION, 0.0, jnp.where(share > 1.0 - RESOLUTION, 1.0, share))
