"""Calibration: parameter recovery, the convergence gate, bad data, posterior-driven runs."""
import json

import jax
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner
from numpyro.infer import Predictive
from scipy import stats

from conftest import materialize, series
from forecast import scenario as sc_mod
from forecast.analysis.calibrate import context
from forecast.scenario.posterior import shipped_path
from forecast.cli import main
from priors.fit import Settings, diagnose, fit
from priors.models import MODELS
from priors.usage import shipped

FAST = Settings(chains=4, warmup=300, samples=300, prior_draws=50)


@pytest.fixture(scope="module")
def data():
    return shipped()


@pytest.fixture(scope="module")
def ctx(baseline):
    return context(baseline)


def _recover(module, prepared, seed, names):
    """Draw true parameters from the prior, simulate data on the real design, refit;
    return how many of `names` (each element) fall inside the central 90% posterior interval."""
    truth = Predictive(module.model, num_samples=1)(jax.random.key(1000 + seed), prepared.inputs, False)
    inputs = dict(prepared.inputs)
    for name, site in prepared.sites.items():
        inputs[site.key] = truth[name][0]
    prepared = type(prepared)(inputs, prepared.sites, prepared.info)
    f = fit(module, prepared, Settings(chains=4, warmup=300, samples=300, prior_draws=10, seed=seed))
    inside = total = 0
    for n in names:
        lo, hi = np.quantile(f.samples[n], [0.05, 0.95], axis=0)
        t = np.asarray(truth[n][0])
        inside += int(np.sum((t >= lo) & (t <= hi)))
        total += t.size
    return inside, total


@pytest.mark.parametrize("name, params", [
    ("compute", ["growth", "stock_growth0", "stock0"]),
    ("prices", ["g_hw", "g_serve", "g_alg", "g_front", "fixed_capability_decline", "frontier_drift"]),
    ("demand", ["enterprise_growth0", "enterprise_growth_inf", "enterprise_halflife", "sigma"]),
    ("power", ["g_power_eff", "log_chip_kw0", "sigma", "installed_growth", "power_growth0", "power_halflife",
               "power_growth_inf"]),
    ("choice", ["mid_appeal", "open_appeal", "lag_aversion", "price_sensitivity", "mid_compute", "open_compute"]),
])
@pytest.mark.slow
def test_parameter_recovery(data, ctx, name, params):
    """True values (drawn from the prior) land inside 90% posterior intervals at the nominal
    rate: over seeds, the count inside is Binomial(n, 0.9) if the fit is calibrated; fail
    below its 0.5% quantile."""
    module = MODELS[name]
    prepared = module.prepare(data, ctx)
    inside = total = 0
    for seed in range(4):
        i, t = _recover(module, prepared, seed, params)
        inside, total = inside + i, total + t
    floor = stats.binom.ppf(0.005, total, 0.9)
    assert inside >= floor, f"{name}: {inside}/{total} true values inside 90% intervals (floor {floor:.0f})"
    assert inside < total or total < 20  # not all inside: intervals far too wide would pass otherwise


def test_non_identifiable_fit_is_refused():
    """Only a + b is identified and the priors are vague: the chains wander along the
    ridge, and the diagnostics say so."""
    import numpyro
    import numpyro.distributions as dist

    class Toy:
        NAME = "toy"

        @staticmethod
        def model(inputs, observed=True):
            a = numpyro.sample("a", dist.Normal(0.0, 1000.0))
            b = numpyro.sample("b", dist.Normal(0.0, 1000.0))
            with numpyro.plate("rows", inputs["y"].shape[0]):
                numpyro.sample("obs", dist.Normal(a + b, 0.01), obs=inputs["y"] if observed else None)

    from priors.models import Prepared, Site

    y = np.full(20, 1.0, np.float32)
    rows = pd.DataFrame({"y": y, "train": True, "date_parsed": pd.Timestamp("2025-01-01"), "label": "x"})
    f = fit(Toy, Prepared({"y": y}, {"obs": Site(rows, "identity", "")}), FAST)
    assert not f.converged
    assert any("r_hat" in p or "ESS" in p for p in f.problems), f.problems
    # the shipped fit, by contrast, passes: its diagnostics are in the file
    with xr.open_dataset(shipped_path(), group="posterior", engine="h5netcdf") as ds:
        assert int(ds.attrs["converged"]) == 1, ds.attrs["problems"]


def test_diagnose_counts_divergences_and_low_ess():
    import arviz as az

    rng = np.random.default_rng(0)
    good = rng.standard_normal((4, 1000))
    stuck = np.repeat(rng.standard_normal((4, 1)), 1000, axis=1) + 1e-3 * good  # chains disagree
    div = np.zeros((4, 1000), bool)
    div[1, 10] = True
    idata = az.from_dict(posterior={"good": good, "stuck": stuck}, sample_stats={"diverging": div})
    summary, problems = diagnose(idata)
    assert summary["divergences"] == 1
    assert any(p.startswith("stuck: r_hat") for p in problems)
    assert not any(p.startswith("good") for p in problems)
    assert "1 divergent transition(s)" in problems


def test_bad_rows_rejected_and_nothing_written(tmp_path):
    src = tmp_path / "usage.csv"
    src.write_text(
        "date,entity,metric,value,unit,source\n"
        "2025-06,France,ai_user_share,40.9,% of working-age population,x\n"
        "2025-13,France,ai_user_share,44.0,% of working-age population,x\n"
        "2025-12,France,ai_user_share,-3,% of working-age population,x\n"
        "2025-12,France,ai_users,44.0,% of working-age population,x\n")
    out = tmp_path / "post.nc"
    r = CliRunner().invoke(main, ["calibrate", str(src), "-o", str(out)])
    assert r.exit_code == 2
    for row in ("row 2", "row 3", "row 4"):
        assert row in r.output, r.output
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


@pytest.mark.slow
def test_unconverged_fit_writes_nothing_and_runs_refuse_it(tmp_path):
    out = tmp_path / "post.nc"
    args = ["calibrate", "-o", str(out), "--models", "prices", "--chains", "2", "--warmup", "50", "--samples", "50"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1 and "did not converge" in r.output, r.output
    assert not out.exists()
    r = CliRunner().invoke(main, args + ["--allow-unconverged"])
    assert r.exit_code == 0 and out.exists(), r.output
    with pytest.raises(sc_mod.ScenarioError, match="did not converge"):
        sc_mod.load("baseline", calibration=str(out))
    sc = sc_mod.load("baseline", calibration=str(out), allow_unconverged=True)
    assert set(sc.calibration_info["used"]) == set(MODELS["prices"].KERNEL_PARAMS)


@pytest.mark.slow
def test_draw_table_mechanism(baseline):
    """Entries flagged in the mask come from a uniformly chosen row of the draw table."""
    sc = sc_mod.with_months(baseline, 1)
    draws = sc.prior.loc._replace(**{k: np.zeros((2,) + np.shape(v), np.float32)
                                     for k, v in sc.prior.loc._asdict().items()})
    mask = sc.prior.loc._replace(**{k: np.zeros(np.shape(v), bool) for k, v in sc.prior.loc._asdict().items()})
    values = np.array([0.1, 0.3])
    draws.adoption0[:, 0] = np.log(values) - np.log1p(-values)  # adoption0[us] is 0.1 or 0.3
    mask.adoption0[0] = True
    from dataclasses import replace

    sc2 = replace(sc, prior=sc.prior._replace(draws=draws, from_draws=mask))
    n = 4000
    with_table, without = series(sc2, materialize(sc2, n), "adoption")[0], series(sc, materialize(sc, n), "adoption")[0]
    a, base = with_table[:, 0], without[:, 0]
    # month 0 adoption equals adoption0 exactly only at t = 0; the kernel reports month 0 at t = 0
    low, high = np.isclose(a, 0.1, rtol=1e-5), np.isclose(a, 0.3, rtol=1e-5)
    assert (low | high).all()
    assert abs(low.mean() - 0.5) < 4.5 * np.sqrt(0.25 / n)
    # other regions are untouched: same draws as without the table
    np.testing.assert_array_equal(with_table[:, 1:], without[:, 1:])
    assert not np.isclose(base, 0.1, rtol=1e-5).all()


def test_scenario_keeps_its_own_prior_for_parameters_it_sets():
    sc = sc_mod.load("cheap_inference")  # sets g_serve; the shipped posterior calibrates it
    assert "g_serve" in sc.calibration_info["kept_scenario"]
    assert "g_alg" in sc.calibration_info["used"]
    assert "g_serve" not in sc_mod.load("baseline").calibration_info["kept_scenario"]


@pytest.mark.slow
def test_posterior_moves_forecast_toward_the_data(data, baseline):
    """Installed compute grew faster in 2025 than the hand-set prior's median growth; the
    shipped posterior's first-year compute growth lies nearer the data's."""
    cum = data[(data["metric"] == "cumulative_compute_h100e") & ~data["entity"].str.contains(" owned by ")]
    total = cum.groupby("date_parsed")["value_num"].sum()
    observed = np.log(total[pd.Timestamp("2025-12-31")] / total[pd.Timestamp("2024-12-31")])
    calibrated = sc_mod.with_months(sc_mod.load("baseline"), 13)
    hand_set = sc_mod.with_months(baseline, 13)
    growth = {}
    for label, sc in (("posterior", calibrated), ("hand-set", hand_set)):
        c = series(sc, materialize(sc, 8192), "compute")
        growth[label] = np.median(np.log(c[12, :, 0] / c[0, :, 0]))  # us, one year
    prior_median = float(np.exp(baseline.prior.loc.growth0[0]))
    assert observed > prior_median  # the data say faster than the hand-set prior
    assert growth["posterior"] > growth["hand-set"]
    assert abs(growth["posterior"] - observed) < abs(growth["hand-set"] - observed)


def test_posterior_file_is_a_table_of_draws():
    with xr.open_dataset(shipped_path(), group="posterior", engine="h5netcdf") as ds:
        names = json.loads(ds.attrs["kernel_params"])
        assert {"adoption0", "growth0", "g_alg", "enterprise_growth0"} <= set(names)
        assert ds["adoption0"].dims == ("chain", "draw", "region")
        assert ds.sizes["chain"] * ds.sizes["draw"] >= 4000
        assert np.all(ds["growth0"].sel(region="china").isnull())  # left to the scenario


def test_coverage_counts_exactly():
    import arviz as az

    from priors.posterior import coverage

    draws = np.tile(np.arange(100, dtype=float), (1, 1, 1)).reshape(1, 100, 1).repeat(3, axis=2)
    y = np.array([50.0, 3.0, 200.0])
    idata = az.InferenceData(
        posterior_predictive=xr.Dataset({"m__obs": (("chain", "draw", "row"), draws)}),
        observed_data=xr.Dataset({"m__obs": (("row",), y), "m__obs_train": (("row",), np.array([True, False, False]))}))
    c = coverage(idata, "m", "obs")
    assert c["n"] == 2 and c["in50"] == 0.0 and c["in90"] == 0.0
    c = coverage(idata, "m", "obs", rows="all")
    assert c["n"] == 3 and c["in50"] == pytest.approx(1 / 3) and c["in90"] == pytest.approx(1 / 3)


def test_mismatched_start_is_refused(baseline):
    raw = sc_mod.as_dict(baseline)
    raw["start"] = "2027-01"
    raw["params"] = {k: v for k, v in raw["params"].items()}
    for k in ("moratorium_start", "moratorium_end", "buildout_start", "buildout_end", "guarantee_start"):
        raw["params"][k]["value"] = "2028-01"
    raw["calibration"] = "shipped"
    with pytest.raises(sc_mod.ScenarioError, match="start"):
        sc_mod.from_dict(raw)


@pytest.mark.slow
def test_calibrated_scenarios_share_draws():
    """Two calibrated scenarios run with one seed pick the same posterior row per
    trajectory (common random numbers): a moratorium never raises US compute."""
    base, mor = sc_mod.load("baseline"), sc_mod.load("moratorium")
    b, m = materialize(base, 1024), materialize(mor, 1024)
    t = 12 * 4
    us_b, us_m = series(base, b, "compute")[t, :, 0], series(mor, m, "compute")[t, :, 0]
    assert np.all(us_m <= us_b * (1 + 1e-5))
    assert np.mean(us_m < us_b * 0.99) > 0.5


def test_saved_posterior_opens_with_arviz_and_checks_cover():
    """The whole file reads back; in-sample, the posterior predictive 90% bands hold most
    observations of every site (a posterior predictive check)."""
    import arviz as az

    from priors.posterior import coverage, sites

    idata = az.from_netcdf(shipped_path())
    assert {"posterior", "sample_stats", "observed_data", "prior_predictive", "posterior_predictive"} <= set(
        idata.groups())
    found = sites(idata)
    assert {m for m, _ in found} == {"adoption", "adoption_noise", "demand", "prices", "compute", "power", "choice"}
    for model, site in found:
        c = coverage(idata, model, site, rows="all")
        assert c["n"] == idata.observed_data[f"{model}__{site}"].size
        assert c["in90"] >= 0.7, (model, site, c)


@pytest.mark.parametrize("damage, message", [
    ("drop", "lists 'g_hw' in kernel_params but has no variable for it"),
    ("some_nan", r"adoption_rate\[us\] has NaN in 3 of"),
    ("all_nan", "g_hw is listed in kernel_params but every draw is NaN"),
])
def test_damaged_posterior_is_refused_by_name(tmp_path, damage, message):
    import arviz as az

    from forecast.scenario.posterior import shipped_path

    idata = az.from_netcdf(shipped_path())
    post = idata.posterior
    if damage == "drop":
        post = post.drop_vars("g_hw")
    elif damage == "some_nan":
        v = post["adoption_rate"].values.copy()
        v[0, :3, list(post["region"].values).index("us")] = np.nan
        post["adoption_rate"] = (post["adoption_rate"].dims, v)
    else:
        post["g_hw"] = post["g_hw"] * np.nan
    idata.posterior = post
    path = tmp_path / "damaged.nc"
    idata.to_netcdf(str(path))
    with pytest.raises(sc_mod.ScenarioError, match=message):
        sc_mod.load("baseline", calibration=str(path))
    from click.testing import CliRunner

    from forecast.cli import main

    out = tmp_path / "run.nc"
    res = CliRunner().invoke(main, ["run", "baseline", "-n", "100", "--priors", str(path), "-o", str(out)])
    assert res.exit_code == 2 and "damaged.nc" in res.output and not out.exists()


def test_moved_compares_hand_set_prior_with_posterior(baseline):
    import xarray as xr

    from forecast.analysis.calibrate import moved
    from forecast.scenario.posterior import shipped_path
    from kernels import SPECS

    post = xr.open_dataset(shipped_path(), group="posterior", engine="h5netcdf").load()
    table = moved(post, baseline)
    names = json.loads(post.attrs["kernel_params"])
    assert set(table["parameter"]) == set(names)
    spec = {s.name: i for i, s in enumerate(SPECS)}
    for _, r in table.iterrows():
        i = spec[r.parameter]
        loc = np.asarray(baseline.prior.loc[i])
        if r.entry:
            loc = loc[list(baseline.regions).index(r.entry)]
        if SPECS[i].support == "positive":  # lognormal prior: its median is exp(loc)
            assert abs(np.log(r.prior_median) - loc) < 0.03, r.parameter
        values = post[r.parameter]
        if r.entry:
            values = values.sel(region=r.entry)
        assert r.posterior_median == pytest.approx(float(np.median(values.values)), rel=1e-9)
        assert np.sign(r["shift"]) == np.sign(np.log(r.posterior_median) - np.log(r.prior_median)) or abs(r["shift"]) < 0.05
    # growth0[china] is not informed by the compute model (NaN draws): not listed
    assert not ((table["parameter"] == "growth0") & (table["entry"] == "china")).any()


def _power_rows(values, start="2025-01-01"):
    rows = []
    for entity, date, power, compute in values:
        for metric, v in (("cumulative_power", power), ("cumulative_compute_h100e", compute)):
            rows.append({"entity": entity, "date_parsed": pd.Timestamp(date), "metric": metric, "value_num": v,
                         "period_start": start, "file": "f.csv", "row": len(rows) + 1})
    return pd.DataFrame(rows)


def test_power_model_reads_chip_power_per_h100e_of_each_quarter(ctx):
    """1000 dP / dC of each interval, at its midpoint; the new-hardware mix is the last
    year's shipments; the fleet ratio is the last date's totals."""
    from priors.models import CalibrationError, power

    data = _power_rows([("A", "2025-06-30", 100.0, 1e5), ("A", "2025-09-30", 160.0, 2e5),
                        ("A", "2025-12-31", 200.0, 3e5), ("B", "2025-09-30", 10.0, 1e4),
                        ("B", "2025-12-31", 40.0, 7e4)])
    prep = power.prepare(data, ctx)
    rows = prep.sites["obs"].rows
    np.testing.assert_allclose(np.exp(rows["y"]), [0.6, 0.4, 0.5])  # A: 60 MW / 1e5, 40 / 1e5; B: 30 / 6e4
    np.testing.assert_allclose(np.asarray(prep.inputs["mix"]), [2e5 / 2.6e5, 6e4 / 2.6e5], rtol=1e-6)
    assert prep.info["fleet_chip_kw"] == pytest.approx(1000 * 240 / 3.7e5)
    bad = _power_rows([("A", "2025-06-30", 100.0, 1e5), ("A", "2025-09-30", 90.0, 2e5)])
    with pytest.raises(CalibrationError, match=r"f\.csv, row 3: cumulative .* of 'A' does not increase"):
        power.prepare(bad, ctx)
    # installed chip power: every cumulative_power row, in logs, from its series' start
    installed = prep.sites["installed"].rows
    np.testing.assert_allclose(np.exp(installed["y"]), [100.0, 160.0, 200.0, 10.0, 40.0])
    np.testing.assert_allclose(np.asarray(prep.inputs["installed"]["start"]), ctx.years(["2025-01-01"] * 2), rtol=1e-6)
    # the projection: one row, 2030's AI capacity at the geometric middle of 45-135 GW
    proj = prep.sites["projection"].rows
    hi = 945e3 / 8766 * 1.25  # all of 2030's data-centre load (945 TWh), as capacity
    assert np.exp(proj["y"].iloc[0]) == pytest.approx(np.sqrt(hi / 3 * hi), rel=1e-9)
    assert hi / 3 == pytest.approx(45, abs=0.5) and hi == pytest.approx(135, abs=0.5)
    assert proj["train"].all() and proj["date_parsed"].iloc[0] == pd.Timestamp("2030-07-01")
    # a backtest from before the projection's publication (April 2025) leaves it out
    from dataclasses import replace

    early = power.prepare(shipped(), replace(ctx, cutoff=pd.Timestamp("2025-04-01")))
    assert not early.sites["projection"].rows["train"].any()
    assert not bool(np.asarray(early.inputs["projection_train"]).any())
    later = power.prepare(shipped(), replace(ctx, cutoff=pd.Timestamp("2025-07-01")))
    assert later.sites["projection"].rows["train"].all()


def test_power_growth_spreads_over_regions_in_the_scenario_pattern(ctx):
    """The world's start rate g0 goes to every region but china, each at its hand-set median
    times one factor, so that the compute-share-weighted mean over those regions is g0."""
    from priors.models import power

    g0 = np.array([0.6, 0.9])
    g = power.regional_growth(g0, ctx)
    regions = list(ctx.regions)
    china = regions.index("china")
    assert np.isnan(g[:, china]).all()
    others = [i for i in range(len(regions)) if i != china]
    share = np.asarray(ctx.compute_share)[others]
    np.testing.assert_allclose(g[:, others] @ share / share.sum(), g0, rtol=1e-12)
    pattern = np.exp(np.broadcast_to(ctx.hand_set["power_growth0"][0], (len(regions),)))[others]
    ratio = g[:, others] / pattern  # one factor per draw
    np.testing.assert_allclose(ratio, np.repeat(ratio[:, :1], len(others), axis=1), rtol=1e-12)
    assert g[0, regions.index("us")] > g[0, regions.index("europe")]  # the pattern: us 0.5, europe 0.3


def test_tokens_observed_stands_for_the_longest_series_fitted(data, ctx):
    """The reference series has the most dated rows before the cutoff (ties: the later last
    figure); the kernel gets that series' level draws and the residual scale, draw by draw."""
    from priors.models import demand

    rows = pd.DataFrame({"series": ["a", "a", "b", "b", "c"],
                         "date_parsed": pd.to_datetime(["2024-01-01", "2024-06-01", "2024-02-01", "2024-09-01",
                                                        "2025-01-01"])})
    assert demand.reference(rows) == "b"  # a and b have two dates each; b's last is later
    assert demand.reference(rows[rows["series"] != "b"]) == "a"
    prepared = demand.prepare(data, ctx)
    assert prepared.info["reference"] == "Google (all surfaces) / tokens_processed_per_month"
    k = prepared.info["series"].index(prepared.info["reference"])
    rng = np.random.default_rng(0)
    samples = {"level": rng.normal(size=(5, len(prepared.info["series"]))), "sigma": rng.uniform(size=5),
               **{n: rng.uniform(size=5) for n in demand.GROWTH}}
    out = demand.kernel(samples, prepared, ctx)
    assert set(out) == set(demand.KERNEL_PARAMS)
    np.testing.assert_array_equal(out["tokens_obs_level"], samples["level"][:, k])
    np.testing.assert_array_equal(out["tokens_obs_sd"], samples["sigma"])


def test_price_model_hands_the_kernel_its_top_decile_line(data, ctx):
    from priors.models import prices

    prepared = prices.prepare(data, ctx)
    rng = np.random.default_rng(1)
    samples = {"log_frontier_price0": rng.normal(size=4), "price_scale": rng.uniform(size=4),
               **{n: rng.uniform(size=4) for n in prices.RATES}}
    out = prices.kernel(samples, prepared, ctx)
    assert set(out) == set(prices.KERNEL_PARAMS)
    np.testing.assert_allclose(out["list_price0"], np.exp(samples["log_frontier_price0"]))
    np.testing.assert_array_equal(out["list_price_scale"], samples["price_scale"])


def test_shipped_posterior_follows_arviz_conventions():
    """Each observed_data variable is an observation with its date, series, label and
    training flag as coordinates of its rows, and a posterior predictive of the same name:
    az.plot_ppc runs on the shipped file."""
    import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    from forecast.scenario.posterior import shipped_path

    idata = az.from_netcdf(shipped_path())
    obs = idata.observed_data
    assert set(obs.data_vars) == set(idata.posterior_predictive.data_vars)
    for key, da in obs.data_vars.items():
        for meta in ("train", "date", "label", "series"):
            assert f"{key}_{meta}" in da.coords, (key, meta)
        assert np.issubdtype(da[f"{key}_date"].dtype, np.datetime64)
    axes = az.plot_ppc(idata, num_pp_samples=20)
    drawn = [ax for ax in np.ravel(axes) if ax.get_xlabel()]  # arviz pads its grid with empty axes
    assert sorted(ax.get_xlabel() for ax in drawn) == sorted(obs.data_vars)
    # Every posterior variable has units and a meaning; every dim has labels (no *_dim_0).
    post = idata.posterior
    for name, da in post.data_vars.items():
        assert da.attrs.get("units") and da.attrs.get("long_name"), name
        for d in da.dims:
            assert d in post.coords and "_dim_" not in d, (name, d)
    from kernels import SPEC_BY_NAME

    assert post["compute0"].attrs["units"] == SPEC_BY_NAME["compute0"].unit == "H100e"
    assert set(post["compute__designer"].values) == {"AMD", "Amazon Trainium", "Google TPU", "Nvidia"}
    assert list(post["adoption__region"].values) == list(post["region"].values)
    assert list(post["choice__pair"].values) == ["mid / frontier", "open / mid"]
    assert len(post["demand__series"]) == post.sizes["demand__series"] and "Google" in str(post["demand__series"][0].values)
