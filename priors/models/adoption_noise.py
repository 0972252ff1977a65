"""(a') Adoption's process noise and a published edition's shock, from the regional
aggregates of the report's editions.

Data: `ai_user_share` (adoption's metric), aggregated per region and edition (date) as the
forecast defines a region: the working-age-population-weighted mean of its countries'
shares (priors.usage.weighted_by_region).

The forecast's adoption is a logistic whose logit position drifts by D_r(t), the integral
of an Ornstein-Uhlenbeck deviation d_r of the diffusion rate (kernels/demand.py), and a
published figure adds an edition's shock e common to every region (kernels/simulate.py).
Over the few years the editions span, a region's logit aggregate is a line plus those two:
    y_re = x_r + k_r t_e + D_r(t_e) + e_e + s eps_re,
x_r, k_r per region (N(mean y_r, 2) and N(0.3, 0.5): wide), e_e ~ N(0, tau_e) per edition,
s ~ HalfNormal(0.05) the aggregate's own error, and D with d stationary (the rate has been
wandering before the first edition): Cov(D_r(t1), D_q(t2)) = c_rq K(t1, t2) with c_rr = 1,
c_rq = rho, and, with I(t) = int_{t0}^{t} d, v = sigma^2 / (2 theta) and
F(x) = 2 v (theta x - 1 + e^(-theta x)) / theta^2 = Var I over a span x,
    K(t1, t2) = (F(t1 - t0) + F(t2 - t0) - F(|t1 - t2|)) / 2.
D, e and eps are integrated out: y ~ MultivariateNormal(x_r + k_r t, K (x) C + tau_e^2 E + s^2 I),
E_ij = 1 for figures of one edition. sigma, theta, rho and tau_e take the forecast's
hand-set priors (adoption_rate_vol, adoption_rate_reversion, adoption_common,
adoption_edition_sd) and hand their posteriors on. (The kernel steps d exactly by month and
sums it, a Riemann sum of this integral.)

What the data can say: the lines take two figures a region, so with E editions and R
regions R (E - 2) numbers inform the noise. Three editions leave five, and a common rate
shock and an edition's shock are then nearly the same thing to the data (the curvature of
one period); the split between them, and theta, stay close to their priors.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from priors.models.base import CalibrationError, Prepared, Site, hand_set, rows_of
from priors.population import population, weighted_by_region
from priors.usage import regions as region_table

NAME = "adoption_noise"
KERNEL_PARAMS = ("adoption_rate_vol", "adoption_rate_reversion", "adoption_common", "adoption_edition_sd")
METRIC = "ai_user_share"
LATENTS = {
    "x": ("1 (logit)", "a region's logit aggregate at the start (the line's intercept)"),
    "k": ("1/yr (logit)", "a region's logit aggregate's trend over the editions"),
    "s": ("1 (logit)", "a regional aggregate's own error"),
}
DIM_NAMES = {"x_dim_0": "region", "k_dim_0": "region"}


def labels(prepared) -> dict:
    return {"region": list(prepared.info["regions"])}


def aggregates(data, regions):
    """Published adoption per (date, region): the population-weighted mean of the region's
    country shares on that date (fraction). Columns: date, region, observed, countries."""
    import pandas as pd

    rows = rows_of(data, [METRIC])
    rows = rows[rows["entity"].isin(set(region_table()["country"]))]
    weights = population().set_index("country")["working_age_share"]
    out = []
    for date, g in rows.groupby("date_parsed"):
        values = pd.Series(g["value_num"].to_numpy(np.float64) / 100.0, index=g["entity"].to_numpy())
        for _, r in weighted_by_region(values, weights).iterrows():
            if r["region"] in regions:
                out.append({"date": pd.Timestamp(date), "region": r["region"], "observed": r["value"],
                            "countries": int(r["countries"])})
    return pd.DataFrame(out, columns=["date", "region", "observed", "countries"])


def prepare(data, ctx) -> Prepared:
    agg = aggregates(data, ctx.regions)
    agg = agg[ctx.train(agg["date"])].reset_index(drop=True)
    if agg.empty:
        raise CalibrationError(f"adoption_noise: no {METRIC!r} rows for the regions {list(ctx.regions)}"
                               + (f" dated before the cutoff {ctx.cutoff.date()}" if ctx.cutoff is not None else ""))
    regions = [r for r in ctx.regions if r in set(agg["region"])]
    share = agg["observed"].to_numpy(np.float64)
    y = np.log(share) - np.log1p(-share)
    t = ctx.years(agg["date"])
    dates = sorted(set(agg["date"]))
    rows = agg.assign(date_parsed=agg["date"], t=t, series=agg["region"], label=agg["region"], y=y, train=True)
    mean_y = np.array([y[agg["region"].to_numpy() == r].mean() for r in regions])
    inputs = {
        "t": jnp.asarray(t, jnp.float32),
        "region": jnp.asarray(agg["region"].map({r: i for i, r in enumerate(regions)}).to_numpy()),
        "edition": jnp.asarray(agg["date"].map({d: i for i, d in enumerate(dates)}).to_numpy()),
        "mean_y": jnp.asarray(mean_y, jnp.float32),
        "y": jnp.asarray(y, jnp.float32),
        "priors": {n: ctx.prior(n) for n in KERNEL_PARAMS},
    }
    return Prepared(inputs, {"obs": Site(rows, "sigmoid", "share of working-age population")},
                    {"regions": regions, "editions": [str(d.date()) for d in dates]})


def integrated_ou_cov(t, sigma, theta):
    """K(t_i, t_j): covariances of the integral of a stationary OU process (variance
    sigma^2 / (2 theta), reversion theta) from min(t) to t_i and to t_j."""
    v = sigma**2 / (2.0 * theta)

    def span(x):
        x = jnp.abs(x)
        return 2.0 * v * (theta * x + jnp.expm1(-theta * x)) / theta**2

    u = t - jnp.min(t)
    return 0.5 * (span(u)[:, None] + span(u)[None, :] - span(u[:, None] - u[None, :]))


def model(inputs, observed=True):
    pri = inputs["priors"]
    n_r = inputs["mean_y"].shape[0]
    with numpyro.plate("region", n_r):
        x = numpyro.sample("x", dist.Normal(inputs["mean_y"], 2.0))
        k = numpyro.sample("k", dist.Normal(0.3, 0.5))
    sigma = hand_set("adoption_rate_vol", pri["adoption_rate_vol"], "exp")
    theta = hand_set("adoption_rate_reversion", pri["adoption_rate_reversion"], "exp")
    rho = hand_set("adoption_common", pri["adoption_common"], "sigmoid")
    tau = hand_set("adoption_edition_sd", pri["adoption_edition_sd"], "exp")
    s = numpyro.sample("s", dist.HalfNormal(0.05))
    t, r, e = inputs["t"], inputs["region"], inputs["edition"]
    same_region = (r[:, None] == r[None, :]).astype(jnp.float32)
    same_edition = (e[:, None] == e[None, :]).astype(jnp.float32)
    cov = (integrated_ou_cov(t, sigma, theta) * (rho + (1.0 - rho) * same_region) + tau**2 * same_edition
           + (s**2 + 1e-6) * jnp.eye(t.shape[0]))
    numpyro.sample("obs", dist.MultivariateNormal(x[r] + k[r] * t, covariance_matrix=cov),
                   obs=inputs["y"] if observed else None)


def kernel(samples, prepared, ctx) -> dict:
    return {n: np.asarray(samples[n], np.float64) for n in KERNEL_PARAMS}
