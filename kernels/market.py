"""The month's market: list prices, wanted tokens and plan shares, from the menu's choice
(kernels.menu), affordability and sticky prices (kernels.prices)."""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from kernels import affordability, demand, events, menu, prices
from kernels.layout import N_TIERS
from kernels.params import Params


class Market(NamedTuple):
    """The month's market. q: (class,) compute per token of each class; lag: (region,
    tier, class) months behind the frontier; log_price: (tier, class) log list prices;
    want: (region, tier, class) wanted tokens at those prices; priced: (region, tier) the
    share priced out; paid: (region,) the share on a paid plan; units0: the compute all
    wanted tokens need at last month's prices (the scarcity multiplier's numerator)."""

    q: object
    lag: object
    log_price: object
    want: object
    priced: object
    paid: object
    units0: object


def market(p: Params, log_price_prev, log_cost, log_enterprise, log_trusted, capacity, gap, t_years, dt, adopted):
    """The month's Market (list prices, wanted tokens, plan shares). adopted: (region,)
    the month's adoption share (demand.adoption).

    Choice is first evaluated at last month's prices to set the scarcity multiplier (the
    compute all wanted tokens need over the capacity), prices move toward their targets
    (prices.py), and the choice is evaluated again at the new prices."""
    q = menu.compute_per_token(p)
    totals = demand.unconstrained(p, log_enterprise, log_trusted, log_cost, t_years, adopted)
    users = p.population * adopted
    per_user = demand.tokens_per_user(p, t_years) * demand.price_response(p, log_cost)
    # Where the labs' models are not on offer, the frontier class is never chosen: its lag stays 0.
    withheld = events.blocked(p, N_TIERS) * p.frontier_access[:, None]
    lag = menu.lags(p, gap, withheld)
    plan = demand.plan_tokens(p, t_years)
    po_plan = affordability.plan_priced_out(p, menu.CONSUMER)
    paid = p.paid_propensity * (1.0 - po_plan)

    def want_at(price):
        po = affordability.priced_out(p, price[:, 0], plan).at[:, menu.CONSUMER].set(po_plan)
        return menu.wanted(p, totals, users, per_user, price, lag, po, paid), po

    w0, _ = want_at(jnp.exp(log_price_prev))
    multiplier = prices.scarcity(p, jnp.sum(w0 * q), jnp.sum(capacity))
    log_price = prices.sticky(p, log_price_prev, prices.targets(p, jnp.exp(log_cost), q, multiplier), dt)
    want, priced = want_at(jnp.exp(log_price))
    return Market(q=q, lag=lag, log_price=log_price, want=want, priced=priced, paid=paid, units0=jnp.sum(w0 * q))
