"""Adoption's process noise and a published edition's shock (kernels/demand.py,
kernels/month.py: adoption, adoption_observed; docs/model.md).

The diffusion rate's deviation d is an Ornstein-Uhlenbeck process discretised exactly,
d_{t+1} = phi d_t + s zeta_t with phi = e^(-theta dt), s = sigma sqrt((1 - phi^2) / (2 theta)),
zeta = sqrt(rho) z_c + sqrt(1 - rho) z_r; the logit position's shift D_{t+1} = D_t + d_{t+1} dt.
From d_0 = D_0 = 0 both are Gaussian with
    Var d_t = s^2 (1 - phi^(2t)) / (1 - phi^2),
    Var D_t = dt^2 s^2 sum_{m=1..t} ((1 - phi^m) / (1 - phi))^2,
and every region pair correlates rho in both. A run starts d from its stationary law,
d_0 ~ N(0, v0), v0 = sigma^2 / (2 theta) = s^2 / (1 - phi^2), which adds
dt^2 v0 (phi (1 - phi^t) / (1 - phi))^2 to Var D_t. Checked against these closed forms, through
the kernel function and through whole runs; a published figure adds one edition shock
common to every region and the figure's own scatter.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import expit, logit

import forecast
from forecast.scenario import load, with_months, with_params
from kernels import demand
from kernels.month import DT, init

from conftest import columns, materialize, series

MONTHS = 24
A0 = {"us": 0.3, "europe": 0.25, "china": 0.2, "other_north": 0.35, "global_south": 0.12}
CURVE = {"adoption0": {"dist": "fixed", "value": A0}, "adoption_ceiling": {"dist": "fixed", "value": 0.8},
         "adoption_rate": {"dist": "fixed", "value": 0.4}}


def _fixed(**values):
    return {k: {"dist": "fixed", "value": v} for k, v in values.items()}


def _scenario(**params):
    return with_months(with_params(load("baseline", calibration="none"), **params), MONTHS)


def _closed_form(sigma, theta, t, stationary=False):
    """(sd of d_t, sd of D_t) for months t = 1, 2, ..., from d_0 = 0 or (stationary) from
    d_0 ~ N(0, sigma^2 / (2 theta))."""
    phi = np.exp(-theta * DT)
    s = sigma * np.sqrt(-np.expm1(-2 * theta * DT) / (2 * theta))
    m = np.arange(1, t + 1)
    v0 = sigma**2 / (2 * theta) if stationary else 0.0
    var_d = s**2 * (1 - phi ** (2 * t)) / (1 - phi**2) + v0 * phi ** (2 * t)
    var_shift = DT**2 * (s**2 * np.sum(((1 - phi**m) / (1 - phi)) ** 2) + v0 * (phi * (1 - phi**t) / (1 - phi)) ** 2)
    return np.sqrt(var_d), np.sqrt(var_shift)


@pytest.mark.parametrize("theta", [1.0, 0.05])
def test_rate_deviation_and_shift_match_the_ar1_closed_forms(theta):
    """adoption_step from zero, n independent paths of T months: the sd of d_T and of D_T
    within 5 Monte Carlo sd of the closed forms (an sd's estimate has relative sd
    1/sqrt(2n)), their means within 5 sd of 0, and each region pair's correlation within
    5 sd ((1 - rho^2) / sqrt(n)) of rho."""
    sigma, rho, n, t_months = 0.3, 0.4, 20000, 36
    p, _ = init(jax.random.key(0), load("baseline", calibration="none").prior)
    p = p._replace(adoption_rate_vol=jnp.float32(sigma), adoption_rate_reversion=jnp.float32(theta),
                   adoption_common=jnp.float32(rho))
    r = p.adoption0.shape[0]
    z = jax.random.normal(jax.random.key(1), (t_months, n, r + 2))

    def month(c, zt):
        d, shift = jax.vmap(lambda d, s, zz: demand.adoption_step(p, d, s, zz, DT))(*c, zt)
        return (d, shift), None

    (d, shift), _ = jax.lax.scan(month, (jnp.zeros((n, r)), jnp.zeros((n, r))), z)
    d, shift = np.asarray(d, np.float64), np.asarray(shift, np.float64)
    sd_d, sd_shift = _closed_form(sigma, theta, t_months)
    for x, sd in ((d, sd_d), (shift, sd_shift)):
        assert np.all(np.abs(x.std(axis=0) / sd - 1) < 5 / np.sqrt(2 * n)), (x.std(axis=0), sd)
        assert np.all(np.abs(x.mean(axis=0)) < 5 * sd / np.sqrt(n))
        c = np.corrcoef(x.T)[np.triu_indices(r, 1)]
        assert np.all(np.abs(c - rho) < 5 * (1 - rho**2) / np.sqrt(n)), c


def test_the_deviation_starts_from_its_stationary_law():
    """adoption_dev0: sd sigma / sqrt(2 theta) in every region (within 5 MC sd), region pairs
    correlated rho; the exact step keeps that law (sd of one step on from it unchanged)."""
    sigma, theta, rho, n = 0.3, 0.7, 0.4, 20000
    p, _ = init(jax.random.key(0), load("baseline", calibration="none").prior)
    p = p._replace(adoption_rate_vol=jnp.float32(sigma), adoption_rate_reversion=jnp.float32(theta),
                   adoption_common=jnp.float32(rho))
    r = p.adoption0.shape[0]
    d0 = jax.vmap(lambda z: demand.adoption_dev0(p, z))(jax.random.normal(jax.random.key(2), (n, r + 1)))
    d1, _ = jax.vmap(lambda d, z: demand.adoption_step(p, d, jnp.zeros(r), z, DT))(
        d0, jax.random.normal(jax.random.key(3), (n, r + 2)))
    for d in (np.asarray(d0, np.float64), np.asarray(d1, np.float64)):
        assert np.all(np.abs(d.std(axis=0) / (sigma / np.sqrt(2 * theta)) - 1) < 5 / np.sqrt(2 * n)), d.std(axis=0)
        c = np.corrcoef(d.T)[np.triu_indices(r, 1)]
        assert np.all(np.abs(c - rho) < 5 * (1 - rho**2) / np.sqrt(n)), c


def test_no_rate_noise_is_the_fitted_logistic():
    """With adoption_rate_vol = 0, D stays 0 and adoption is the logistic of the fitted
    curve, A sigmoid(logit(a0 / A) + rate t), in every month (float32 rounding apart)."""
    sc = _scenario(**CURVE, **_fixed(adoption_rate_vol=0.0))
    x = materialize(sc, n=64, seed=2)
    a = series(sc, x, "adoption").astype(np.float64)  # (time, trajectory, region)
    t = np.arange(MONTHS)[:, None] * DT
    expected = np.stack([0.8 * expit(logit(v / 0.8) + 0.4 * t[:, 0]) for v in A0.values()], axis=-1)
    np.testing.assert_allclose(a, np.broadcast_to(expected[:, None], a.shape), rtol=3e-6)


@pytest.mark.slow
def test_a_runs_adoption_bands_are_the_logistic_shifted_by_the_integrated_deviation():
    """Fixed curve and noise: adoption's q-band at month t is A sigmoid(x0 + r t + sd_t
    Phi^-1(q)), sd_t the closed form's sd of D_t from the stationary start. At each
    reported band v the closed-form CDF is within 5 Monte Carlo sd of q (the honesty
    test's rule)."""
    sigma, theta, rho, n = 0.4, 0.5, 0.5, 8192
    sc = _scenario(**CURVE, **_fixed(adoption_rate_vol=sigma, adoption_rate_reversion=theta, adoption_common=rho))
    ds = forecast.run(sc, n_trajectories=n, seed=4)
    q = ds["quantile"].values
    v = ds["adoption"].values.astype(np.float64)  # (quantile, time, region)
    t = np.arange(MONTHS) * DT
    center = np.stack([logit(a / 0.8) + 0.4 * t for a in A0.values()], axis=-1)  # (time, region)
    sd = np.array([_closed_form(sigma, theta, m, stationary=True)[1] if m else 0.0 for m in range(MONTHS)])
    z = (logit(v / 0.8) - center[None]) / np.where(sd > 0, sd, 1.0)[None, :, None]
    cdf = stats.norm.cdf(z)[:, 1:]  # month 0 has no noise yet: every band is the start
    tol = 5 * np.sqrt(q * (1 - q) / n) + 2e-4
    assert np.all(np.abs(cdf - q[:, None, None]) <= tol[:, None, None]), np.max(np.abs(cdf - q[:, None, None]))
    np.testing.assert_allclose(v[:, 0], np.broadcast_to(0.8 * expit(center[0]), v[:, 0].shape), rtol=1e-6)


@pytest.mark.slow
def test_a_published_figure_adds_one_edition_shock_common_to_every_region():
    """logit(adoption_observed) - logit(adoption) = e z_e + s z_r: N(0, e^2 + s^2) in each
    region (KS), every region pair covarying e^2 (the shared z_e: correlation e^2 / (e^2 +
    s^2) within 5 sd), fresh each month. With s = 0 the residual is the same number in
    every region. A different edition sd leaves every other output bit-identical."""
    e, s, n = 0.3, 0.2, 4096
    sc = _scenario(**_fixed(adoption_edition_sd=e, adoption_obs_sd=s))
    x = materialize(sc, n=n, seed=7)
    a = series(sc, x, "adoption").astype(np.float64)
    res = logit(series(sc, x, "adoption_observed").astype(np.float64)) - logit(a)  # (time, traj, region)
    total = np.sqrt(e**2 + s**2)
    assert stats.kstest(res[:, :, 0].ravel() / total, "norm").pvalue > 1e-4
    rho = e**2 / total**2
    flat = res.reshape(-1, res.shape[-1])
    c = np.corrcoef(flat.T)[np.triu_indices(res.shape[-1], 1)]
    assert np.all(np.abs(c - rho) < 5 * (1 - rho**2) / np.sqrt(flat.shape[0])), c
    assert abs(np.corrcoef(res[3, :, 0], res[4, :, 0])[0, 1]) < 5 / np.sqrt(n)

    sc0 = _scenario(**_fixed(adoption_edition_sd=e, adoption_obs_sd=0.0))
    x0 = materialize(sc0, n=256, seed=7)
    r0 = logit(series(sc0, x0, "adoption_observed").astype(np.float64)) - logit(series(sc0, x0, "adoption"))
    np.testing.assert_allclose(r0, np.broadcast_to(r0[..., :1], r0.shape), atol=2e-5)
    assert stats.kstest(r0[:, :, 0].ravel() / e, "norm").pvalue > 1e-4

    sc2 = _scenario(**_fixed(adoption_edition_sd=2 * e, adoption_obs_sd=s))
    x2 = materialize(sc2, n=n, seed=7)
    keep = np.ones(x.shape[-1], bool)
    keep[columns(sc, "adoption_observed")] = False
    np.testing.assert_array_equal(x2[..., keep], x[..., keep])



@pytest.mark.slow
def test_the_noise_fit_recovers_known_rate_and_edition_noise_from_synthetic_editions():
    """Synthetic regional aggregates made the kernel's way (NumPy): each region's rate
    deviation stepped exactly month by month (from its stationary law), summed into the
    logit shift, plus one shock per edition common to the regions and a small error;
    8 regions, 8 quarterly editions. The fit (priors.models.adoption_noise, the
    baseline's hand-set priors) puts the true rate volatility and edition sd inside their
    95% posterior intervals, and those intervals are narrower in log than the priors' (the
    data, not the prior, placed them: the true edition sd is above the prior's 95th
    percentile)."""
    import jax.numpy as jnp

    from forecast.analysis.calibrate import context
    from priors.fit import Settings, fit
    from priors.models import Prepared, Site
    from priors.models import adoption_noise as noise

    sigma, theta, rho, tau, s = 0.35, 1.0, 0.5, 0.12, 0.02
    n_r, n_e = 8, 8
    rng = np.random.default_rng(11)
    months = np.arange(0, 3 * n_e, 3) + 60  # quarterly editions after a 5-year burn-in
    phi = np.exp(-theta * DT)
    step_sd = sigma * np.sqrt((1 - phi**2) / (2 * theta))
    d = rng.standard_normal(n_r) * sigma / np.sqrt(2 * theta)
    shift, path = np.zeros(n_r), []
    for m in range(months[-1] + 1):
        path.append(shift.copy())
        z_c = rng.standard_normal()
        d = phi * d + step_sd * (np.sqrt(rho) * z_c + np.sqrt(1 - rho) * rng.standard_normal(n_r))
        shift = shift + d * DT
    t = (months - months[-1]) * DT  # years, the last edition at 0
    x0, k = rng.normal(-1.0, 0.5, n_r), rng.normal(0.3, 0.1, n_r)
    y = (x0[None] + k[None] * t[:, None] + np.array(path)[months] + tau * rng.standard_normal(n_e)[:, None]
         + s * rng.standard_normal((n_e, n_r)))  # (edition, region)
    ctx = context(load("baseline", calibration="none"))
    inputs = {"t": jnp.asarray(np.repeat(t, n_r), jnp.float32), "region": jnp.asarray(np.tile(np.arange(n_r), n_e)),
              "edition": jnp.asarray(np.repeat(np.arange(n_e), n_r)), "mean_y": jnp.asarray(y.mean(0), jnp.float32),
              "y": jnp.asarray(y.ravel(), jnp.float32), "priors": {n: ctx.prior(n) for n in noise.KERNEL_PARAMS}}
    import pandas as pd

    rows = pd.DataFrame({"y": y.ravel(), "train": True})
    result = fit(noise, Prepared(inputs, {"obs": Site(rows, "sigmoid", "share")}),
                 Settings(chains=2, warmup=250, samples=300))
    assert result.diagnostics["divergences"] == 0
    for name, truth in (("adoption_rate_vol", sigma), ("adoption_edition_sd", tau)):
        draws = result.samples[name]
        lo, hi = np.quantile(draws, [0.025, 0.975])
        loc, scale = ctx.prior(name)
        assert lo <= truth <= hi, (name, lo, hi, truth)
        # a scale's interval, compared in log: the prior's 95% is 2 x 1.96 x its sigma wide
        assert np.log(hi / lo) < 0.8 * 2 * 1.96 * scale, (name, lo, hi, scale)
    assert tau > np.exp(ctx.prior("adoption_edition_sd")[0] + 1.645 * ctx.prior("adoption_edition_sd")[1])
