"""Forecast honesty: observation-level bands and population-weighted regions.

Observation-level outputs (adoption_observed, compute_observed, tokens_observed,
list_price_observed, chip_power_observed) are the simulated quantity plus a published
figure's measurement noise; their bands are where a *new observation* falls. Checked against closed forms (fixed adoption curve), against simulated truth
(replicates drawn from the priors with NumPy, not the engine) and by the noise's own
distribution. Population weighting is checked on hand-made tables.
"""
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit, logit

import forecast
from forecast.scenario import load, with_months, with_params
from priors.models import adoption as adoption_model
from priors.population import derive_population, population, weighted_by_region
from priors.usage import shipped

from conftest import columns, materialize, series

MONTHS = 24
FIXED = {"adoption0": {"dist": "fixed", "value": {"us": 0.3, "europe": 0.25, "china": 0.2, "other_north": 0.35,
                                                  "global_south": 0.12}},
         "adoption_ceiling": {"dist": "fixed", "value": 0.8},
         "adoption_rate": {"dist": "fixed", "value": 0.4},
         # no rate noise and no edition shock: the curve is the fitted logistic
         # (tests/kernels/test_adoption_noise.py checks both)
         "adoption_rate_vol": {"dist": "fixed", "value": 0.0}, "adoption_edition_sd": {"dist": "fixed", "value": 0.0}}
NO_ADOPTION_NOISE = {k: FIXED[k] for k in ("adoption_rate_vol", "adoption_edition_sd")}


def _scenario(**params):
    return with_months(with_params(load("baseline", calibration="none"), **params), MONTHS)


def _logistic(a0, ceiling, rate, t_years):
    r = np.clip(a0 / ceiling, 1e-6, 1 - 1e-6)
    return ceiling * expit(np.log(r) - np.log1p(-r) + rate * t_years)


@pytest.mark.slow
def test_adoption_observed_bands_match_closed_form():
    """Fixed adoption curve a(t), noise sd s: the observed q-band is sigmoid(logit a + s
    Phi^-1(q)). At each reported band v, the closed-form CDF must be within Monte Carlo
    error of q (5 sd over ~840 cells); the latent band is a(t) itself."""
    sd, n = 0.3, 8192
    sc = _scenario(**FIXED, adoption_obs_sd={"dist": "fixed", "value": sd})
    ds = forecast.run(sc, n_trajectories=n, seed=3)
    q = ds["quantile"].values
    t_years = np.arange(MONTHS) / 12.0
    a = np.stack([_logistic(v, 0.8, 0.4, t_years) for v in (0.3, 0.25, 0.2, 0.35, 0.12)], axis=1)  # (time, region)
    v = ds["adoption_observed"].values  # (quantile, time, region)
    cdf = stats.norm.cdf((logit(v) - logit(a)[None]) / sd)
    tol = 5 * np.sqrt(q * (1 - q) / n) + 2e-4
    assert np.all(np.abs(cdf - q[:, None, None]) <= tol[:, None, None]), np.max(np.abs(cdf - q[:, None, None]))
    np.testing.assert_allclose(ds["adoption"].values, np.broadcast_to(a, v.shape), rtol=2e-5)


@pytest.mark.slow
def test_observation_noise_is_standard_normal_and_fresh_each_month():
    """log(compute_observed / world compute) / compute_obs_sd is N(0, 1), independent
    across months and of the latent value; the other outputs do not change when the noise
    does."""
    sd = 0.2
    sc = _scenario(compute_obs_sd={"dist": "fixed", "value": sd})
    x = materialize(sc, n=2048, seed=5)
    k = series(sc, x, "compute").astype(np.float64).sum(axis=2)  # (time, trajectory)
    ko = series(sc, x, "compute_observed")[..., 0].astype(np.float64)
    z = np.log(ko / k) / sd
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-4
    corr = np.corrcoef(z[3], z[4])[0, 1]
    assert abs(corr) < 5 / np.sqrt(2048), corr
    assert abs(np.corrcoef(z[10], np.log(k[10]))[0, 1]) < 5 / np.sqrt(2048)
    # a different noise sd leaves every latent output bit-identical
    sc2 = _scenario(compute_obs_sd={"dist": "fixed", "value": 2 * sd})
    x2 = materialize(sc2, n=2048, seed=5)
    np.testing.assert_array_equal(series(sc2, x2, "compute"), series(sc, x, "compute"))
    np.testing.assert_allclose(np.log(series(sc2, x2, "compute_observed")[..., 0] / k), 2 * np.log(ko / k),
                               rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_tokens_observed_is_the_series_level_grown_as_served_tokens_with_t4_scatter():
    """log(tokens_observed) - tokens_obs_level - log(served_t / served_0) over
    tokens_obs_sd is Student-t(4) (SciPy's CDF), fresh each month; served is all frontier and
    lagging tokens. A different level or scatter leaves every other output bit-identical."""
    level, sd, n = 34.0, 0.3, 2048
    sc = _scenario(tokens_obs_level={"dist": "fixed", "value": level}, tokens_obs_sd={"dist": "fixed", "value": sd})
    x = materialize(sc, n=n, seed=6)
    served = (series(sc, x, "frontier_tokens") + series(sc, x, "lagging_tokens")).astype(np.float64).sum(axis=(2, 3))
    obs = series(sc, x, "tokens_observed")[..., 0].astype(np.float64)  # (time, trajectory)
    z = (np.log(obs) - level - np.log(served / served[:1])) / sd
    assert stats.kstest(z.ravel(), stats.t(4).cdf).pvalue > 1e-4
    assert stats.kstest(z.ravel(), "norm").pvalue < 1e-6  # heavier tails than a normal: the t is real
    assert abs(np.corrcoef(z[3], z[4])[0, 1]) < 5 / np.sqrt(n)
    sc2 = _scenario(tokens_obs_level={"dist": "fixed", "value": level + 1.0},
                    tokens_obs_sd={"dist": "fixed", "value": 2 * sd})
    x2 = materialize(sc2, n=n, seed=6)
    keep = np.ones(x.shape[-1], bool)
    keep[columns(sc, "tokens_observed")] = False
    np.testing.assert_array_equal(x2[..., keep], x[..., keep])
    z2 = (np.log(series(sc2, x2, "tokens_observed")[..., 0]) - level - 1.0 - np.log(served / served[:1])) / (2 * sd)
    np.testing.assert_allclose(z2, z, atol=2e-3)


@pytest.mark.slow
def test_list_price_observed_is_the_top_decile_line_with_the_price_models_noise():
    """log(list_price_observed / list_price0) minus the frontier cost's log change since the
    start follows the price model's own likelihood, numpyro's AsymmetricLaplaceQuantile(0,
    scale, 0.9) (KS against its CDF): 90% of released models list below the line."""
    import numpyro.distributions as dist

    from kernels.month import LIST_PRICE_QUANTILE
    from priors.models.prices import FRONTIER_QUANTILE

    assert LIST_PRICE_QUANTILE == FRONTIER_QUANTILE
    p0, scale, n = 8.0, 0.3, 2048
    cost0 = 2.0  # fixed, so that the line's start is known
    sc = _scenario(list_price0={"dist": "fixed", "value": p0}, list_price_scale={"dist": "fixed", "value": scale},
                   cost_frontier0={"dist": "fixed", "value": cost0})
    x = materialize(sc, n=n, seed=8)
    cost = series(sc, x, "cost_frontier")[..., 0].astype(np.float64)
    obs = series(sc, x, "list_price_observed")[..., 0].astype(np.float64)
    e = np.log(obs / p0) - np.log(cost / cost0)
    cdf = dist.AsymmetricLaplaceQuantile(0.0, scale, FRONTIER_QUANTILE).cdf
    u = np.asarray(cdf(e.ravel()), np.float64)
    assert stats.kstest(u, "uniform").pvalue > 1e-4
    assert abs(np.mean(e < 0) - 0.9) < 5 * np.sqrt(0.09 / e.size)
    assert abs(np.corrcoef(e[3], e[4])[0, 1]) < 5 / np.sqrt(n)


def test_chip_power_observed_noise_is_normal_and_touches_nothing_else():
    """Two runs that differ only in chip_power_obs_sd (s, 2s): log of the ratio of their
    chip_power_observed is s z with z ~ N(0, 1) (KS), fresh each month, and every other
    output is bit-identical. Its level (the installed draw over the overhead) is checked
    against the NumPy reference (tests/kernels/test_reference.py)."""
    sd, n = 0.2, 2048
    sc = _scenario(chip_power_obs_sd={"dist": "fixed", "value": sd})
    sc2 = _scenario(chip_power_obs_sd={"dist": "fixed", "value": 2 * sd})
    x, x2 = materialize(sc, n=n, seed=9), materialize(sc2, n=n, seed=9)
    z = np.log(series(sc2, x2, "chip_power_observed")[..., 0].astype(np.float64)
               / series(sc, x, "chip_power_observed")[..., 0]) / sd
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-4
    assert abs(np.corrcoef(z[3], z[4])[0, 1]) < 5 / np.sqrt(n)
    keep = np.ones(x.shape[-1], bool)
    keep[columns(sc, "chip_power_observed")] = False
    np.testing.assert_array_equal(x2[..., keep], x[..., keep])


@pytest.mark.slow
def test_observed_bands_cover_simulated_truth_and_latent_bands_do_not():
    """Replicates of the truth drawn with NumPy from the scenario's own priors (adoption
    curve) plus measurement noise: the engine's 90% observation-level band holds 85-95% of
    them (and within binomial error of 90%), the 50% band within error of 50%; the latent
    90% band holds clearly fewer. (No rate noise or edition shock: their laws are
    test_adoption_noise's.)"""
    sd = 0.15
    sc = _scenario(adoption_obs_sd={"dist": "fixed", "value": sd}, **NO_ADOPTION_NOISE)
    ds = forecast.run(sc, n_trajectories=16_384, seed=7, quantiles=(0.05, 0.25, 0.75, 0.95))
    rng = np.random.default_rng(2026)
    n_rep = 4000
    names = [s.name for s in __import__("kernels").SPECS]
    prior = {n: (np.asarray(sc.prior.loc[i], np.float64), np.asarray(sc.prior.scale[i], np.float64))
             for i, n in enumerate(names) if n.startswith("adoption") and n != "adoption_obs_sd"}

    def draw(name, transform):
        loc, scale = prior[name]
        return transform(loc + scale * rng.standard_normal((n_rep,) + loc.shape))

    a0, ceiling, rate = draw("adoption0", expit), draw("adoption_ceiling", expit), draw("adoption_rate", np.exp)
    inside90, inside50, latent90 = [], [], []
    for month in (6, 18):
        truth = _logistic(a0, ceiling, rate, month / 12.0)
        y = expit(logit(truth) + sd * rng.standard_normal(truth.shape))  # (replicate, region)
        band = ds["adoption_observed"].isel(time=month).values  # (quantile, region)
        lat = ds["adoption"].isel(time=month).values
        inside90.append((y >= band[0]) & (y <= band[3]))
        inside50.append((y >= band[1]) & (y <= band[2]))
        latent90.append((y >= lat[0]) & (y <= lat[3]))
    c90, c50, l90 = (float(np.mean(c)) for c in (inside90, inside50, latent90))
    m = n_rep * 2 * len(sc.regions)
    assert 0.85 <= c90 <= 0.95 and abs(c90 - 0.9) < 4 * np.sqrt(0.09 / m) + 0.01, c90
    assert abs(c50 - 0.5) < 4 * np.sqrt(0.25 / m) + 0.01, c50
    assert l90 < 0.85, l90  # the latent band is for the curve, not for a published figure


# ------------------------------------------------------------------ population weighting
def test_weighted_by_region_on_a_hand_made_table():
    values = pd.Series({"France": 0.4, "Germany": 0.3, "The Netherlands": 0.5, "Kenya": 0.1, "India": 0.2,
                        "Chad": 0.05})
    weights = pd.Series({"France": 2.0, "Germany": 3.0, "Netherlands": 1.0, "Kenya": 1.0, "India": 9.0})
    out = weighted_by_region(values, weights).set_index("region")
    assert out.loc["europe", "value"] == pytest.approx((0.4 * 2 + 0.3 * 3 + 0.5 * 1) / 6)  # alias -> Netherlands
    assert out.loc["global_south", "value"] == pytest.approx((0.1 + 0.2 * 9) / 10)  # Chad has no weight
    assert (out.loc["global_south", "countries"], out.loc["global_south", "unweighted"]) == (2, 1)
    # a region where no country has a weight takes the plain mean (China: one country)
    two = weighted_by_region(pd.Series({"China": 0.2, "United States": 0.3}), pd.Series({"India": 1.0}))
    assert two.set_index("region").loc["china", ["value", "weighting"]].tolist() == [0.2, "equal"]
    with pytest.raises(KeyError, match="Atlantis"):
        weighted_by_region(pd.Series({"Atlantis": 0.5}), weights)


def test_population_is_share_over_index_averaged_over_the_release():
    rows = []
    for date, share, index in (("2026-04", 2.0, 0.5), ("2026-05", 3.0, 0.5), ("2025-08", 9.0, 1.0)):
        rows += [{"date": date, "entity": "Turkey", "metric": "claude_ai_usage_share", "value_num": share,
                  "source_url": "u", "source_title": "t"},
                 {"date": date, "entity": "Turkey", "metric": "anthropic_ai_usage_index", "value_num": index,
                  "source_url": "u", "source_title": "t"}]
    out = derive_population(pd.DataFrame(rows))
    assert list(out["country"]) == ["Türkiye"]  # canonical spelling
    assert out["working_age_share"].iloc[0] == pytest.approx(5.0)  # (4 + 6) / 2; the 2025 release left out
    assert out["months"].iloc[0] == "2026-04;2026-05"
    assert out["rounding_error"].iloc[0] == pytest.approx(np.mean([0.005 / 2 + 0.005 / 0.5, 0.005 / 3 + 0.005 / 0.5]), abs=1e-4)  # stored to 4 decimals


def test_shipped_population_table_is_the_derivation_of_the_shipped_rows():
    shipped_table = population()
    derived = derive_population(shipped())
    pd.testing.assert_frame_equal(shipped_table.reset_index(drop=True), derived, check_dtype=False, atol=1e-9)
    # the whole of the published countries' working-age population, up to rounding
    assert shipped_table["working_age_share"].sum() == pytest.approx(100.0, abs=20.0)


def test_regional_curve_is_the_weighted_mean_of_country_curves():
    rng = np.random.default_rng(0)
    n, c = 50, 4
    s = rng.uniform(0.05, 0.4, (n, c))
    ceiling = s + (1 - s) * rng.uniform(0.3, 0.9, (n, c))
    x = np.log(s / ceiling) - np.log1p(-s / ceiling)
    k = np.repeat(rng.uniform(0.1, 0.5, (n, 1)), c, axis=1)
    w = np.array([1.0, 3.0, 0.5, 2.0])
    a0, big_a, rate = adoption_model.kernel_curve(s, ceiling, x, k, w)
    np.testing.assert_allclose(a0, s @ w / w.sum())
    np.testing.assert_allclose(big_a, ceiling @ w / w.sum())
    at = (ceiling * expit(x + k * adoption_model.MATCH_YEARS)) @ w / w.sum()
    np.testing.assert_allclose(_logistic(a0, big_a, rate, adoption_model.MATCH_YEARS), at, rtol=1e-9)
    # identical countries: the region's curve is theirs, exactly
    same = adoption_model.kernel_curve(s[:, :1].repeat(c, 1), ceiling[:, :1].repeat(c, 1), x[:, :1].repeat(c, 1),
                                       k, w)
    np.testing.assert_allclose(same[0], s[:, 0])
    np.testing.assert_allclose(same[2], k[:, 0])


# ------------------------------------------------------------------ rolling-origin backtest
@pytest.mark.slow
def test_forecast_backtest_reproduces_and_scores_its_own_bands(tmp_path):
    """`forecast backtest` scores later published adoption figures (Microsoft's regional
    aggregates and the other series fitted before the cutoff) against the forecast's
    observation-level bands: the same seed gives the same CSV; each row's flags and
    interval score follow from its own band and figure. A survey series' run takes its
    level and drift from the fitted file's draws, row for row."""
    import arviz as az
    from click.testing import CliRunner

    from forecast.analysis.backtest import adoption_observations, interval_score, survey_observations, with_adoption_series
    from forecast.scenario.posterior import draw_table, shipped_path
    from forecast.cli import main
    from priors.posterior import save

    args = ["backtest", "--models", "adoption,adoption_noise", "--cutoff", "2025-07-01", "--warmup", "100",
            "--samples", "100", "-n", "2048"]
    outs = []
    for name in ("a.csv", "b.csv"):
        res = CliRunner().invoke(main, args + ["--csv", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        outs.append(pd.read_csv(tmp_path / name))
    a, b = outs
    pd.testing.assert_frame_equal(a, b)
    assert "forecast backtest summary" in res.output
    # one row per region and edition after the cutoff (H2 2025, Q1 2026), one per later
    # figure of a survey series fitted before it (Gallup 2025, CNNIC Dec 2025)
    hand = load("baseline", calibration="none")
    obs = adoption_observations(shipped(), hand.regions)
    later = obs[obs["date"] >= "2025-07-01"]
    surveys = survey_observations(shipped(), hand, pd.Timestamp("2025-07-01"))
    assert set(surveys["key"]) == {"United States / employees_using_ai_at_work", "China / genai_user_penetration"}
    assert sorted(a["series"]) == sorted([f"adoption[{r}]" for r in later["region"]]
                                         + [f"adoption[{k}]" for k in surveys["key"]])
    np.testing.assert_allclose(np.sort(a["observed"]), np.sort(np.r_[later["observed"], surveys["observed"]]))
    assert (a["inside90"] == ((a["q05"] <= a["observed"]) & (a["observed"] <= a["q95"]))).all()
    assert (a["inside50"] == ((a["q25"] <= a["observed"]) & (a["observed"] <= a["q75"]))).all()
    np.testing.assert_allclose(a["interval_score"], interval_score(a["observed"], a["q05"], a["q95"]))
    # H2 2025 and the year-end survey figures end six months after the 2025-07 start, Q1 2026 nine
    assert sorted(set(a["months_ahead"])) == [6, 9]

    sc = with_months(hand, 3)  # the shipped file's start
    idata = az.from_netcdf(shipped_path())  # a fitted file (the shipped one: no fit of its own to wait for)
    names = list(idata.posterior["adoption__survey"].values)
    out = with_adoption_series(idata, sc, "China / genai_user_penetration")
    i = names.index("China / genai_user_penetration")
    for name, latent in (("adoption_obs_level", "adoption__level"), ("adoption_obs_drift", "adoption__drift")):
        np.testing.assert_array_equal(out.posterior[name].values, idata.posterior[latent].values[..., i])
        assert name not in idata.posterior  # the fitted file is untouched
    save(out, tmp_path / "cnnic.nc")
    table, mask, info = draw_table(sc, tmp_path / "cnnic.nc", allow_unconverged=True)
    assert {"adoption_obs_level", "adoption_obs_drift", "adoption0"} <= set(info["used"])
    np.testing.assert_allclose(table.adoption_obs_level, idata.posterior["adoption__level"].values[..., i].ravel(),
                               rtol=1e-6)


def test_interval_score_closed_form():
    from forecast.analysis.backtest import interval_score

    assert interval_score(0.5, 0.2, 0.6) == pytest.approx(0.4)  # inside: the width
    assert interval_score(0.1, 0.2, 0.6) == pytest.approx(0.4 + 20 * 0.1)  # below: + 2/alpha x miss
    assert interval_score(0.7, 0.2, 0.6) == pytest.approx(0.4 + 20 * 0.1)


def test_compute_observations_sum_the_designers_fitted_before_the_cutoff():
    from forecast.analysis.backtest import compute_observations

    rows = []
    for entity, date, value in (("A", "2025-03-31", 10.0), ("A", "2025-06-30", 20.0), ("A", "2025-09-30", 30.0),
                                ("A", "2025-12-31", 40.0), ("B", "2025-06-30", 1.0), ("B", "2025-12-31", 3.0),
                                ("C", "2025-09-30", 100.0), ("A owned by X", "2025-09-30", 5.0)):
        rows.append({"entity": entity, "date_parsed": pd.Timestamp(date), "metric": "cumulative_compute_h100e",
                     "value_num": value})
    out = compute_observations(pd.DataFrame(rows), "2025-07-01")
    # A and B were fitted (rows before the cutoff); C starts after it; owner breakdowns are parts
    assert list(out["date"].dt.strftime("%Y-%m-%d")) == ["2025-12-31"]  # B does not report 2025-09-30
    assert out["observed"].tolist() == [43.0] and out["countries"].tolist() == [2]


def test_backtest_skips_models_with_nothing_before_the_cutoff(tmp_path):
    """At a cutoff before a series begins, that model is not backtested (and says why); the
    others are. Adoption's first figures are for H1 2025; no token series has two dates and
    no price decline factor has an interval before mid-2024."""
    from click.testing import CliRunner

    from forecast.analysis.calibrate import fittable_models
    from forecast.cli import main

    names = ["adoption", "demand", "prices", "compute", "power"]
    early = fittable_models(shipped(), load("baseline", calibration="none"), pd.Timestamp("2024-07-01"), names)
    assert set(early) == set(names)
    assert "ai_user_share" in early["adoption"] and "before the cutoff 2024-07-01" in early["adoption"]
    assert "token-volume" in early["demand"] and "price_reduction_factor_per_year" in early["prices"]
    assert not early["compute"] and not early["power"]
    late = fittable_models(shipped(), load("baseline", calibration="none"), pd.Timestamp("2025-07-01"), names)
    assert not any(late.values()), late
    res = CliRunner().invoke(main, ["backtest", "--models", "adoption,adoption_noise", "--cutoff", "2024-07-01",
                                    "--csv", str(tmp_path / "x.csv")])
    assert res.exit_code == 0, res.output
    assert "2024-07-01: adoption not backtested" in res.output and "nothing scored" in res.output
    assert not (tmp_path / "x.csv").exists()


@pytest.fixture(scope="module")
def default_backtest():
    """`forecast backtest`'s defaults at the 2025-07-01 origin (seed 0, 4096 trajectories):
    the rows docs/calibration.md shows."""
    from forecast.analysis.backtest import backtest

    return backtest(shipped(), load("baseline", calibration="none"), ["2025-07-01"], n_trajectories=4096, seed=0)


@pytest.mark.slow
def test_backtest_scores_token_series_and_released_prices(default_backtest):
    """Tokens: every later figure of a provider series fitted before the cutoff, each scored
    from a run whose tokens_obs_level is that series' own level (the fitted file's draws,
    row for row); prices: every model priced after the cutoff. Flags follow each row's band."""
    from forecast.analysis.backtest import price_observations, token_observations, with_token_series
    from forecast.analysis.calibrate import calibrate, context
    from forecast.scenario import with_start
    from priors.fit import Settings
    from priors.models import demand

    data = shipped()
    hand = load("baseline", calibration="none")
    cut = pd.Timestamp("2025-07-01")
    tokens = token_observations(data, hand, cut)
    # Google (all surfaces) and OpenRouter's weekly and yearly run-rate series were published before
    # the cutoff; Google Gemini API starts after it and is not scored
    assert set(tokens["key"]) == {"Google (all surfaces) / tokens_processed_per_month",
                                  "OpenRouter / tokens_per_week", "OpenRouter / tokens_per_year_run_rate"}
    assert (tokens["date"] >= cut).all() and len(tokens) == 5
    prices = price_observations(data, hand, cut)
    assert (prices["date"] >= cut).all() and len(prices) > 5

    settings = Settings(chains=2, warmup=150, samples=150, prior_draws=20)
    scores = default_backtest[default_backtest["model"].isin(["tokens", "prices"])]
    assert sorted(scores.loc[scores["model"] == "tokens", "series"]) == sorted(f"tokens[{k}]" for k in tokens["key"])
    assert (scores["model"] == "prices").sum() == len(prices)
    assert (scores["inside90"] == ((scores["q05"] <= scores["observed"]) & (scores["observed"] <= scores["q95"]))).all()
    assert (scores["inside50"] == ((scores["q25"] <= scores["observed"]) & (scores["observed"] <= scores["q75"]))).all()
    tok = scores[scores["model"] == "tokens"].set_index("series")
    # the weekly OpenRouter series is ~100x below Google's monthly volume, and so is its band
    assert tok.loc["tokens[OpenRouter / tokens_per_week]", "median"].max() < 0.1 * tok.loc[
        "tokens[Google (all surfaces) / tokens_processed_per_month]", "median"].min()

    sc = with_start(hand, "2025-07", months=3)
    idata, _ = calibrate(data, sc, settings, cutoff=cut, models=["demand"])
    names = demand.prepare(data, context(sc, cut)).info["series"]
    out = with_token_series(idata, data, sc, cut, "OpenRouter / tokens_per_week")
    level = idata.posterior["demand__level"].values
    np.testing.assert_array_equal(out.posterior["tokens_obs_level"].values,
                                  level[..., names.index("OpenRouter / tokens_per_week")])
    np.testing.assert_array_equal(idata.posterior["tokens_obs_level"].values,  # the fitted file is untouched
                                  level[..., names.index(idata.posterior.attrs["tokens_observed_series"])])
    np.testing.assert_array_equal(out.posterior["enterprise_growth0"].values,
                                  idata.posterior["enterprise_growth0"].values)


def _number(text: str) -> float:
    text = text.strip().replace(",", "")
    scale = {"T": 1e12, "M": 1e6}.get(text[-1:], 1.0)
    return float(text[:-1] if scale != 1.0 else text) * scale


@pytest.mark.slow
def test_backtest_numbers_in_the_docs_come_from_the_command(default_backtest):
    """docs/calibration.md's forecast-backtest rows for the 2025-07-01 origin are what
    `forecast backtest` (default settings, seed 0, 4096 trajectories) computes: each
    figure, its 90% band and whether it is inside the 50% and 90% bands; the prices scored
    and those outside their band. NUTS run in another process layout or on another CPU
    rounds differently and then draws another posterior sample, so band edges are compared
    within 4 Monte Carlo sd of a quantile estimated from 400 effective draws (the gate's
    floor): sqrt(q (1 - q) / 400) / phi(z_q) times the band's sd in log (its 90% width /
    3.29); flags are compared where the figure is farther than that from the edge."""
    from pathlib import Path

    from forecast.analysis.backtest import figure_name

    scores = default_backtest
    doc = (Path(__file__).parents[2] / "docs" / "calibration.md").read_text(encoding="utf-8")
    doc = doc[doc.index("## Forecast backtest"):]  # not the model backtest's table above it
    rows = [line.split("|")[1:-1] for line in doc.splitlines() if line.startswith("| 2025-07-01 |")]
    figures = {c[1].strip(): c for c in rows if len(c) == 6}
    prices = [c for c in rows if len(c) == 5]

    def tol(r, q):  # 4 MC sd of the q-quantile's log
        sd_log = np.log(r["q95"] / r["q05"]) / (2 * stats.norm.ppf(0.95))
        return 4 * np.sqrt(q * (1 - q) / 400) / stats.norm.pdf(stats.norm.ppf(q)) * sd_log

    def far(r, y, lo, hi, q):
        return abs(np.log(y / r[lo])) > tol(r, q) and abs(np.log(y / r[hi])) > tol(r, q)

    others = scores[scores["model"] != "prices"]
    assert len(figures) == len(others) > 0
    for _, r in others.iterrows():
        label = f"{figure_name(r)} {str(r['date'])[:7]} ({int(r['months_ahead'])})"
        c = figures[label]
        assert _number(c[2]) == pytest.approx(r["observed"], rel=5e-3), label
        lo, hi = c[3].strip().split("-")
        assert abs(np.log(_number(lo) / r["q05"])) < tol(r, 0.05), (label, lo, r["q05"])
        assert abs(np.log(_number(hi) / r["q95"])) < tol(r, 0.05), (label, hi, r["q95"])
        if far(r, r["observed"], "q05", "q95", 0.05):
            assert (c[5].strip() == "yes") == r["inside90"], label
        if far(r, r["observed"], "q25", "q75", 0.25):
            assert (c[4].strip() == "yes") == r["inside50"], label
    p = scores[scores["model"] == "prices"]
    assert len(prices) == 1 and int(prices[0][1]) == len(p)
    for _, r in p.iterrows():
        if far(r, r["observed"], "q05", "q95", 0.05):
            listed = f"{str(r['series'])[len('prices['):-1]} {str(r['date'])[:7]} {r['observed']:.3g} vs" in prices[0][4]
            assert listed == (not r["inside90"]), r["series"]
