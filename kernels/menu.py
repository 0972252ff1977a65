"""The menu of model classes: what each costs and lags, and how demand splits across them.

Classes, in CLASSES order: frontier (the labs' flagship), mid (their distilled mini/flash
tier), open (open weights; China's own stack among them). Compute per token relative to
the frontier's:
    q_F = 1,   q_M = mid_compute,   q_O = mid_compute open_compute      (q_O <= q_M <= 1)
Capability lag behind the frontier [months]: frontier 0 for the trusted tier, and for
users the newest release is withheld from, the public's gap G (events.py: staged release); mid
mid_lag, and for those users max(mid_lag, G): the mid class is distilled from the labs'
frontier, so a release policy that holds a generation back holds back what is distilled
from it (a security restriction withholds a capability, not a product); open
min(open_lag, stack_lag_r) (a region's own stack may be nearer; open weights come from
other developers, whom the labs' release policy does not bind).
List-price targets are per tier and class (prices.py); a class's cost is c_F q_c.

On offer: the open class everywhere; frontier and mid only where frontier_access (the labs'
closed models). Tier k in region r picks among the classes on offer with logit shares
    V_rkc = a_c - lag_aversion lag_rkc - theta_rk log price_kc
    a_F = 0, a_M = mid_appeal, a_O = open_appeal,
    theta_rk = price_sensitivity tier_sensitivity_k (gni_max / gni_r)^income_sensitivity
(willingness to pay falls with income; gni_max is the richest region's).

Wanted tokens W_rkc, from the tier totals T_rk (demand.py):
- trusted and enterprise: T_rk ((1 - po_rk) s_rkc + po_rk s'_rkc), s' the shares without
  the frontier (po_rk: the share priced out of the frontier, affordability.py);
- consumer: users_r (paid_r u_r s_rc + (1 - paid_r) min(u_r, free_allowance) e_free), where
  u is tokens per user, paid_r = paid_propensity (1 - po_r) the paid share (po_r: priced
  out of the regional paid plan) and e_free the free tier's class: mid where the labs'
  models are on offer, open otherwise. free_share_r = 1 - paid_r.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from kernels.params import Params

CLASSES = ("frontier", "mid", "open")
N_CLASSES = len(CLASSES)
CONSUMER = 2  # the consumer tier's index (tiers: trusted, enterprise, consumer)


def compute_per_token(p: Params):
    """(class,) compute per token relative to the frontier's."""
    one = jnp.ones_like(p.mid_compute)
    return jnp.stack([one, p.mid_compute, p.mid_compute * p.open_compute])


def lags(p: Params, gap, withheld):
    """(region, tier, class) months behind the frontier of each class on offer.

    gap: () months the public's newest frontier release trails the trusted tier's (G);
    withheld: (region, tier) 1.0 where releases reach the users with the public."""
    r, k = withheld.shape
    front = withheld * gap
    mid = jnp.maximum(p.mid_lag, front)
    open_ = jnp.broadcast_to(jnp.minimum(p.open_lag, p.stack_lag)[:, None], (r, k))
    return jnp.stack([front, mid, open_], axis=-1)


def offered(p: Params):
    """(region, class) 1.0 where the class is on offer to the region's users."""
    closed = p.frontier_access
    return jnp.stack([closed, closed, jnp.ones_like(closed)], axis=-1)


def price_sensitivity(p: Params):
    """(region, tier) theta_rk: the weight of log price in the choice."""
    income = jnp.max(p.gni_per_capita) / p.gni_per_capita
    return p.price_sensitivity * p.tier_sensitivity[None, :] * income[:, None] ** p.income_sensitivity


def shares(p: Params, price, lag, available):
    """(region, tier, class) logit shares over the classes available.

    price: (tier, class) list prices; lag: (region, tier, class); available: broadcastable
    to (region, tier, class), 1.0 where a class may be chosen (at least one per cell)."""
    appeal = jnp.stack([jnp.zeros_like(p.mid_appeal), p.mid_appeal, p.open_appeal])
    theta = price_sensitivity(p)
    v = appeal - p.lag_aversion * lag - theta[..., None] * jnp.log(price)[None]
    v = jnp.where(available > 0, v, -jnp.inf)
    return jax.nn.softmax(v, axis=-1)


def free_class(p: Params):
    """(region, class) one-hot: the free tier's class (mid where on offer, else open)."""
    closed = p.frontier_access
    zero = jnp.zeros_like(closed)
    return jnp.stack([zero, closed, 1.0 - closed], axis=-1)


def wanted(p: Params, totals, users, per_user, price, lag, priced, paid):
    """(region, tier, class) wanted tokens.

    totals: (region, tier) tokens the trusted and enterprise tiers want (the consumer
    column is ignored); users: (region,) consumer users; per_user: (region,) tokens a
    consumer user wants; price: (tier, class); lag: (region, tier, class); priced: (region, tier)
    shares priced out (of the frontier for trusted and enterprise, of the paid plan for
    consumers); paid: (region,) paid share of consumer users."""
    on = offered(p)[:, None, :]
    all_ = shares(p, price, lag, on)
    no_front = shares(p, price, lag, on * jnp.array([0.0, 1.0, 1.0], on.dtype))
    business = totals[..., None] * ((1.0 - priced)[..., None] * all_ + priced[..., None] * no_front)
    free = jnp.minimum(per_user, p.free_allowance)
    consumer = users[:, None] * (paid[:, None] * per_user[:, None] * all_[:, CONSUMER]
                                 + (1.0 - paid)[:, None] * free[:, None] * free_class(p))
    return business.at[:, CONSUMER].set(consumer)
