"""Sobol' sensitivity: estimators against closed forms and SALib, the design against the
engine's own runs, zero indices where an input cannot matter, reproducibility, errors."""
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from forecast.scenario import load, with_months, with_params
from forecast.analysis.sensitivity import sensitivity, top
from forecast.analysis.sobol import NOISE, POSTERIOR, Inputs, SensitivityError, design, inputs, sobol
from kernels import OUTPUTS, n_entries, output_sizes, run_paths
from kernels.keys import PARAMS, POSTERIOR as POSTERIOR_STREAM, stream_key, trajectory_key
from tests.conftest import materialize, series

MONTHS = 24
METRICS = ["adoption", "priced_out", "north_south_ratio"]

# Ishigami function (a = 7, b = 0.1) on [-pi, pi]^3: closed-form partial variances.
A, B = 7.0, 0.1
V1 = 0.5 * (1 + B * np.pi**4 / 5) ** 2
V2 = A**2 / 8
V13 = B**2 * np.pi**8 * (1 / 18 - 1 / 50)
V = V1 + V2 + V13


def ishigami(u):
    x = -np.pi + 2 * np.pi * u
    return (np.sin(x[:, 0]) + A * np.sin(x[:, 1]) ** 2 + B * x[:, 2] ** 4 * np.sin(x[:, 0]))[:, None]


def three(groups):
    return Inputs(("x1", "x2", "x3"), tuple(groups), (None, None, None))


def test_ishigami_indices_within_their_intervals():
    res, dropped = sobol(ishigami, three(("x1", "x2", "x3")), 4096, seed=1, resamples=400, confidence=0.99)
    assert dropped == 0
    exact_first = np.array([V1, V2, 0.0]) / V
    exact_total = np.array([V1 + V13, V2, V13]) / V
    for stat, exact in (("first", exact_first), ("total", exact_total)):
        lo, hi = res[f"{stat}_low"][:, 0], res[f"{stat}_high"][:, 0]
        assert np.all((lo <= exact) & (exact <= hi)), (stat, lo, res[stat][:, 0], hi, exact)
        assert np.all(hi - lo < 0.1)  # informative intervals, not a vacuous pass


def test_grouped_ishigami_matches_group_closed_form():
    # x1 and x3 as one group: its first-order and total index are both (V1 + V13) / V.
    res, _ = sobol(ishigami, three(("x13", "x2", "x13")), 4096, seed=2, resamples=400, confidence=0.99)
    exact = np.array([V1 + V13, V2]) / V
    for stat in ("first", "total"):
        lo, hi = res[f"{stat}_low"][:, 0], res[f"{stat}_high"][:, 0]
        assert np.all((lo <= exact) & (exact <= hi)), (stat, lo, hi, exact)


def test_estimates_equal_salib_analyze():
    from SALib.analyze import sobol as salib

    inp = three(("x1", "x2", "x3"))
    res, _ = sobol(ishigami, inp, 1024, seed=3)
    y = ishigami(design(inp, 1024, 3))[:, 0]
    problem = {"num_vars": 3, "names": list(inp.labels), "bounds": [[0, 1]] * 3, "groups": list(inp.groups)}
    ref = salib.analyze(problem, y, calc_second_order=False, num_resamples=10, seed=0)
    # Totals are shift-invariant: equal to rounding. The first-order estimator is not: SALib
    # centres on the mean of all rows, we on A and B, which moves S_i by
    # shift * mean(f_AB - f_A) / V (~1e-8 here).
    np.testing.assert_allclose(res["total"][:, 0], ref["ST"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res["first"][:, 0], ref["S1"], rtol=0, atol=1e-6)


def test_design_rows_swap_whole_groups():
    inp = three(("a", "b", "a"))
    u = design(inp, 8, 0).reshape(8, 4, 3)  # per base sample: A, AB_a, AB_b, B
    a, ab_a, ab_b, b = u[:, 0], u[:, 1], u[:, 2], u[:, 3]
    np.testing.assert_array_equal(ab_a[:, [0, 2]], b[:, [0, 2]])
    np.testing.assert_array_equal(ab_a[:, 1], a[:, 1])
    np.testing.assert_array_equal(ab_b[:, 1], b[:, 1])
    np.testing.assert_array_equal(ab_b[:, [0, 2]], a[:, [0, 2]])


def test_bad_requests_are_refused():
    with pytest.raises(SensitivityError, match="power of two"):
        sobol(ishigami, three(("x1", "x2", "x3")), 1000)
    sc = load("baseline")
    with pytest.raises(SensitivityError, match="metric 'nope'"):
        sensitivity(sc, ["nope"], n=64)
    with pytest.raises(SensitivityError, match="parameter 'nope'"):
        sensitivity(sc, ["adoption"], n=64, parameters=["nope"])
    with pytest.raises(SensitivityError, match="resamples"):
        sensitivity(sc, ["adoption"], n=64, resamples=3)


@pytest.mark.slow
def test_design_evaluation_is_the_engine():
    """run_paths with a trajectory's own normals, posterior row and keys gives what
    forecast.run's chunk runner gives for that trajectory."""
    import jax
    import jax.numpy as jnp

    sc = with_months(load("baseline"), 12)
    n = 64
    x = materialize(sc, n=n, seed=7)  # (time, trajectory, series)
    key = jax.random.key(7)
    tk = [trajectory_key(key, jnp.int32(i)) for i in range(n)]
    z = np.stack([np.asarray(jax.random.normal(stream_key(k, PARAMS), (n_entries(sc.prior),))) for k in tk])
    n_draws = sc.prior.draws[0].shape[0]
    row = np.array([int(jax.random.randint(stream_key(k, POSTERIOR_STREAM), (), 0, n_draws)) for k in tk])
    rows = np.repeat(row[:, None], z.shape[1], axis=1).astype(np.int32)
    noise = np.repeat(np.arange(n, dtype=np.int32)[:, None], 2, axis=1)
    select = tuple(range(x.shape[2]))
    ys, finite = run_paths(key, sc.prior, jnp.asarray(z), jnp.asarray(rows), jnp.asarray(noise), n_months=12,
                           select=select)
    assert np.all(np.asarray(finite))
    ys = np.asarray(ys)
    # Different compiled programs round float32 differently in the last bit. Everything but
    # the allocation's flows (and what is computed from them) agrees to 2e-5; those subtract
    # large pools (what is left of a region's capacity, stage after stage of the menu), so a
    # last-bit difference of the pool can be ~1e-3 of a small flow. 0.998 of the flow values
    # agreed to 2e-5 when this was written (v3: 114 of 187 series are flows).
    names = np.array([o.name for o, size in zip(OUTPUTS, output_sizes(len(sc.regions))) for _ in range(size)])
    flows = np.isin(names, ["class_tokens", "frontier_tokens", "lagging_tokens", "capability_lag", "unmet_share",
                            "unserved_share", "tokens_per_capita", "access_index", "north_south_ratio",
                            "access_gini", "tokens_observed"])
    np.testing.assert_allclose(ys[..., ~flows], x[..., ~flows], rtol=2e-5, atol=1e-30)
    rel = np.abs(ys - x) / np.maximum(np.abs(x), 1e-30)
    # A share at the resolution limit (allocation.RESOLUTION: below 1e-6 counts as 0) may
    # fall on either side of it in two programs (seen: 1.013e-6 against 0).
    from kernels.allocation import RESOLUTION

    shares = np.isin(names, ["unmet_share", "unserved_share"])
    rel = np.where(shares & (np.maximum(np.abs(ys), np.abs(x)) < 2 * RESOLUTION), 0.0, rel)
    assert np.mean(rel[..., flows] <= 2e-5) > 0.995 and rel.max() < 1e-2


@pytest.fixture(scope="module")
def short():
    return with_months(load("baseline"), MONTHS)


@pytest.fixture(scope="module")
def indices(short):
    return sensitivity(short, METRICS, n=256, seed=0, resamples=100)


def test_inputs_grouping(short):
    inp = inputs(short)
    groups = inp.group_names
    assert groups[-2:] == list(NOISE)
    assert len(groups) == len(set(groups))
    # Every uncertain entry not taken from the posterior is in the design exactly once.
    scale = np.concatenate([np.ravel(np.asarray(s)) for s in short.prior.scale])
    mask = np.concatenate([np.ravel(np.asarray(m)) for m in short.prior.from_draws])
    normals = sorted(what for kind, what in inp.kind if kind == "normal")
    assert normals == list(np.flatnonzero((scale > 0) & ~mask))
    posterior = sorted(e for kind, what in inp.kind if kind == "posterior" for e in what)
    assert posterior == list(np.flatnonzero(mask))
    assert f"{POSTERIOR}adoption" in groups and "enterprise0" in groups
    assert inp.members("income_gini") == [f"income_gini[{r}]" for r in short.regions]
    ungrouped = inputs(short, ungroup=True).group_names
    assert "income_gini[us]" in ungrouped and "income_gini" not in ungrouped
    assert len(ungrouped) > len(groups)


@pytest.mark.slow
def test_input_that_does_not_enter_has_zero_index(indices):
    # Adoption is a function of the fitted adoption curve, its fitted process noise and the
    # market shocks' key (which draws the rate's shocks) only: every other group, the
    # events included, has first and total index exactly zero.
    ds = indices.isel(time=slice(1, None))
    enter = [f"{POSTERIOR}adoption", f"{POSTERIOR}adoption_noise", NOISE[0]]
    others = [g for g in ds["parameter"].values if g not in enter]
    for stat in ("first", "total", "total_low", "total_high"):
        assert np.all(ds[f"adoption_{stat}"].sel(parameter=others).values == 0.0), stat
    assert np.all(ds["adoption_total_low"].sel(parameter=f"{POSTERIOR}adoption") > 0.0)
    # The inputs that enter explain all of the variance: their total indices sum to at
    # least 1 (up to sampling error), as total indices do for any model.
    assert float(ds["adoption_total"].sel(parameter=enter).sum("parameter").mean()) > 0.9


@pytest.mark.slow
def test_fixing_a_parameter_drops_its_total_index_to_zero(short):
    cell = {"region": "global_south", "tier": "consumer", "time": "2027-06"}
    chosen = ["plan_price", "elasticity"]
    free = sensitivity(short, METRICS, n=256, seed=0, resamples=100, parameters=chosen)
    got = top(free, "priced_out", cell, k=50)
    assert got.loc["plan_price", "total_low"] > 0.02  # it matters while uncertain
    fixed = with_params(short, plan_price={"dist": "fixed", "value": 4.4})
    held = top(sensitivity(fixed, METRICS, n=256, seed=0, resamples=100, parameters=chosen), "priced_out", cell, k=50)
    row = held.loc["plan_price"]
    assert row.total_low <= 0.0 <= row.total_high and abs(row.total) < 1e-12
    assert "other parameters" in held.index


@pytest.mark.slow
def test_same_seed_same_indices(short, indices):
    again = sensitivity(short, METRICS, n=256, seed=0, resamples=100)
    xr.testing.assert_identical(indices.drop_attrs(), again.drop_attrs())
    other = sensitivity(short, METRICS, n=256, seed=1, resamples=100)
    assert not np.allclose(indices["north_south_ratio_total"].values, other["north_south_ratio_total"].values,
                           equal_nan=True)


@pytest.mark.slow
def test_dataset_layout(indices, short):
    assert indices.attrs["kind"] == "sensitivity"
    assert indices.attrs["n_trajectories"] == 256 * (indices["parameter"].size + 2)
    assert indices["priced_out_total"].dims == ("parameter", "time", "region", "tier")
    assert indices["north_south_ratio_first"].dims == ("parameter", "time")
    assert indices["north_south_ratio_total"].attrs["analysis_scale"] == "log"
    assert indices["priced_out_total"].attrs["analysis_scale"] == "linear"
    lo, hi = indices["north_south_ratio_total_low"], indices["north_south_ratio_total_high"]
    mid = indices["north_south_ratio_total"]
    ok = np.isfinite(mid.values)
    assert np.all((lo.values[ok] <= mid.values[ok] + 1e-12) & (mid.values[ok] <= hi.values[ok] + 1e-12))
    # The analysis-scale mean is the design's mean of log(ratio): near the log of the
    # bands' median at the first month (same model, ~513 samples).
    x = materialize(short, n=2048, seed=3)
    ratio = series(short, x, "north_south_ratio")[0, :, 0]
    assert abs(float(indices["north_south_ratio_mean"].isel(time=0)) - np.mean(np.log(ratio))) < 0.2


@pytest.mark.slow
def test_figures_report_and_export(indices, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from forecast.present import plots, report
    stems = [stem for stem, fig in plots.all_figures(indices)]
    assert "tornado_north_south_ratio" in stems and "indices_priced_out_global_south_consumer" in stems
    text = report.report_html(indices)
    assert "Sensitivity: what drives each metric" in text and "tornado_north_south_ratio" in text
    df = report.tidy(indices)
    assert set(df["statistic"]) >= {"first", "total", "first_low", "total_high", "variance", "mean"}
    got = df[(df.variable == "north_south_ratio") & (df.statistic == "total")]
    assert len(got) == indices["parameter"].size * MONTHS


@pytest.mark.slow
def test_cli_sensitivity(tmp_path):
    from forecast.cli import main

    out = tmp_path / "s.nc"
    res = CliRunner().invoke(main, ["sensitivity", "baseline", "--metric", "access_gini", "--n-base", "64",
                                    "--resamples", "20", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "access_gini, January 2030" in res.output
    ds = xr.open_dataset(out, engine="h5netcdf")
    assert ds.attrs["kind"] == "sensitivity" and "access_gini_total" in ds
    res = CliRunner().invoke(main, ["report", str(out), "-o", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["sensitivity", "baseline", "--n-base", "100", "-o", str(tmp_path / "x.nc")])
    assert res.exit_code == 2 and "power of two" in res.output and not (tmp_path / "x.nc").exists()
    res = CliRunner().invoke(main, ["sensitivity", "baseline", "--metric", "gdp", "-o", str(tmp_path / "x.nc")])
    assert res.exit_code == 2 and "metric 'gdp'" in res.output
