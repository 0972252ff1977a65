"""Each mechanism moves its outputs in the documented direction (paired: same seed)."""
import numpy as np

from forecast.scenario import load, with_params
from tests.conftest import materialize, series


def test_moratorium_lowers_us_compute_and_raises_prices(baseline):
    mor = load("moratorium", calibration="none")
    b, m = materialize(baseline), materialize(mor)
    t = 12 * 4  # 2030-01
    us_b, us_m = series(baseline, b, "compute")[t, :, 0], series(mor, m, "compute")[t, :, 0]
    assert np.all(us_m <= us_b * (1 + 1e-5))
    assert np.median(us_m / us_b) < 0.5
    price_b, price_m = series(baseline, b, "price")[t, :, 2], series(mor, m, "price")[t, :, 2]
    assert np.all(price_m >= price_b * (1 - 1e-5)) and np.mean(price_m > price_b * 1.001) > 0.2


def test_faster_algorithms_lower_fixed_capability_cost(baseline):
    fast = with_params(baseline, g_alg={"median": 3.0})
    b = series(baseline, materialize(baseline), "cost_fixed_capability")[-1]
    f = series(fast, materialize(fast), "cost_fixed_capability")[-1]
    assert np.all(f < b)


def test_restriction_hazard_raises_non_trusted_lag(baseline):
    rationed = with_params(baseline, restrict_hazard={"median": 0.5})
    b = series(baseline, materialize(baseline), "capability_lag")
    r = series(rationed, materialize(rationed), "capability_lag")
    # consumer tier, every region, averaged over the horizon
    assert np.all(r[:, :, :, 2].mean(axis=(0, 1)) > b[:, :, :, 2].mean(axis=(0, 1)) + 1.0)
    # trusted tier in a region with trusted access keeps (almost) no restriction lag
    assert r[:, :, 0, 0].mean() < r[:, :, 0, 2].mean()


def test_faster_agentic_shift_raises_demand(baseline):
    surge = load("agentic_surge", calibration="none")
    b = series(baseline, materialize(baseline), "demand_tokens")[36]
    s = series(surge, materialize(surge), "demand_tokens")[36]
    assert np.all(s[..., 2].sum(-1) > b[..., 2].sum(-1))


def test_sovereign_compute_narrows_north_south_gap(baseline):
    sov = load("sovereign_compute", calibration="none")
    b = series(baseline, materialize(baseline), "north_south_ratio")[-1]
    s = series(sov, materialize(sov), "north_south_ratio")[-1]
    assert np.median(s) < np.median(b)


def test_conservation_and_ranges(baseline):
    for name in ("baseline", "moratorium", "agentic_surge", "rationed_frontier"):
        sc = load(name, calibration="none")
        x = materialize(sc)
        demand, served = series(sc, x, "demand_tokens"), series(sc, x, "served_tokens")
        assert np.all(served <= demand * (1 + 1e-6)) and np.all(served >= 0)
        for share in ("unmet_share", "adoption", "access_gini"):
            v = series(sc, x, share)
            assert np.all((v >= 0) & (v <= 1)), share
        for positive in ("price", "compute", "cost_frontier", "tokens_per_capita"):
            assert np.all(series(sc, x, positive) >= 0), positive
        assert np.all(series(sc, x, "capability_lag") >= 0)
