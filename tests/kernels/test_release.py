"""Access model v3, part 2: the staged release and its memory, the trusted gap and its
persistence, capability-weighted access with the ratio and Gini computed on it, and the
supply-side policy channels (moratorium leakage, chip licences). docs/model.md, steps 1, 7
and the outputs."""
import jax.numpy as jnp
import numpy as np
import pytest

from forecast.scenario import load, with_months, with_params
from kernels import events, supply
from tests.conftest import materialize, series

N = 256
MONTHS = 48


def fixed(v):
    return {"dist": "fixed", "value": v}


class _P:
    """The few parameters the release and relocation laws read."""

    def __init__(self, **kw):
        self.__dict__.update({k: jnp.asarray(v, jnp.float32) for k, v in kw.items()})


def exact_gap(restricted, w, w_r):
    """Generation bookkeeping: generation r reaches the trusted tier in month r and the
    public in month r + w(r), w(r) = w_r if a restriction holds in month r, else w;
    generations before month 0 were released unrestricted. G(t) = t - newest public r."""
    out = []
    for t in range(len(restricted)):
        public = [r for r in range(-int(w) - 1, t + 1)
                  if r + (w_r if (r >= 0 and restricted[r]) else w) <= t]
        out.append(t - max(public))
    return np.array(out, float)


def law_gap(restricted, w, w_r):
    p = _P(release_window=w, restrict_window=w_r)
    gap, since, was, out = jnp.float32(w), jnp.float32(events.SINCE_CAP), jnp.bool_(False), []
    for now in restricted:
        now = jnp.bool_(now)
        gap, since = events.release_step(p, was, now, jnp.float32(1.0), gap, since)
        was = now
        out.append(float(gap))
    return np.array(out)


@pytest.mark.parametrize("w, w_r", [(0, 12), (2, 12), (3, 1200), (1, 5)])
def test_release_law_against_generation_bookkeeping(w, w_r):
    """The gap law (events.py) against counting generations one by one, exactly: the gap
    holds at W for the first W months of a restriction, builds up a month a month, plateaus
    at W_R while it holds, and ends W months after the restriction does."""
    script = [False] * 5 + [True] * 30 + [False] * 10 + [True] * 3 + [False] * 12
    law, truth = law_gap(script, w, w_r), exact_gap(script, w, w_r)
    np.testing.assert_array_equal(law, truth)
    assert law[34] == min(w_r, 30)  # built up and held at W_R while restricted
    assert law[35 + w] == w and (w == 0 or law[35 + w - 1] > w)  # ended W months after the restriction did


@pytest.mark.slow
def test_window_zero_gives_no_trusted_gap_and_a_permanent_window_a_lasting_one(baseline):
    """No staged release and no restrictions: the public gets each release with the trusted
    tier, trusted_gap = 0 everywhere. A restriction that begins at once and (almost) never ends,
    with the lagging classes far behind: the gap grows one month a month wherever the
    trusted tier has access, and gap_persistence (k = 6, m = 12) turns on at month 18."""
    sc = with_months(baseline, MONTHS)
    none = with_params(sc, release_window=fixed(0.0), restrict_hazard=fixed(0.0))
    x = materialize(none, n=N)
    assert np.all(series(none, x, "trusted_gap") == 0.0)
    assert np.all(series(none, x, "gap_persistence") == 0.0)
    forever = with_params(sc, release_window=fixed(0.0), restrict_hazard=fixed(1.0), restrict_duration=fixed(1e3),
                          restrict_window=fixed(1e3), mid_lag=fixed(100.0), open_lag=fixed(100.0),
                          stack_lag=fixed(240.0))
    x = materialize(forever, n=N)
    gap = series(forever, x, "trusted_gap")  # (time, traj, region)
    t = np.arange(MONTHS)[:, None]  # the gap is u + t, u the part of month 0 left when it began
    for r, region in enumerate(sc.regions):
        g = gap[:, :, r]
        if region in ("us", "europe", "other_north"):  # trusted access and the labs' models
            # The chain still ends with probability 1/D a month (P(never in 48) = 0.95); where
            # it does, the gap ends with it (W = 0) and builds up again from the next month.
            d = np.diff(g, axis=0)
            whole = np.all(d > 0, axis=0)
            assert whole.mean() > 0.9
            assert np.all(g[1:][d < 0] == 0.0)
            np.testing.assert_allclose(d[:, whole], 1.0, atol=1e-4)
            assert np.all((g[:, whole] > t) & (g[:, whole] <= t + 1 + 1e-4))
            persist = series(forever, x, "gap_persistence")[:, whole, r]
            first = np.argmax(persist > 0, axis=0)
            assert np.all(persist[-1] == 1.0) and np.all((first >= 17) & (first <= 18)), np.unique(first)
        else:  # no trusted access (global_south) or no labs' models (china): no gap
            assert np.all(g == 0.0)


def test_ratio_and_gini_are_computed_on_access_index_with_china_counted(baseline):
    """north_south_ratio and access_gini from the access_index output by their closed forms
    (population-weighted means; sum_ij s_i s_j |a_i - a_j| / 2 mean), finite and bounded in
    every trajectory and month, with China's own stack served (access_index > 0)."""
    sc = with_months(load("rationed_frontier", calibration="none"), MONTHS)
    x = materialize(sc, n=N)
    a = series(sc, x, "access_index").astype(np.float64)  # (time, traj, region)
    pop = np.array(sc.params["population"]["value"], np.float64)
    north = np.array(sc.params["north"]["value"], np.float64)
    china = sc.regions.index("china")
    assert np.all(a[:, :, china] > 0)
    n = (a * north * pop).sum(-1) / (north * pop).sum()
    s = (a * (1 - north) * pop).sum(-1) / ((1 - north) * pop).sum()
    ratio = series(sc, x, "north_south_ratio")[..., 0]
    assert np.all(np.isfinite(ratio)) and np.all(s > 0)
    np.testing.assert_allclose(ratio, n / s, rtol=1e-4)
    share = pop / pop.sum()
    mean = (a * share).sum(-1)
    spread = (share[:, None] * share[None, :] * np.abs(a[..., :, None] - a[..., None, :])).sum((-1, -2))
    gini = series(sc, x, "access_gini")[..., 0]
    np.testing.assert_allclose(gini, spread / (2 * mean), rtol=1e-4, atol=1e-6)
    assert np.all((gini >= 0) & (gini < 1))
    # Nothing decided by an offset: the ratio's mean stays within a few times its median.
    for t in (12, MONTHS - 1):
        assert np.mean(ratio[t]) < 3 * np.median(ratio[t])


def test_moratorium_leakage_conserves_capex():
    """The relocated capacity is exactly leakage x the blocked capacity, goes only to
    hosting regions not under a moratorium, in proportion to their power, and is lost
    (not created) where no region can take it."""
    power = jnp.array([10.0, 4.0, 3.0, 2.0, 1.0])
    change = jnp.array([0.05, 0.02, -0.01, 0.03, 0.04])
    halted = jnp.array([True, False, False, False, False])
    hosts = jnp.array([1.0, 1.0, 0.0, 1.0, 1.0])
    p = _P(moratorium_leakage=0.3, hosts_frontier=hosts)
    moved = np.asarray(supply.relocated(p, power, change, 0.05, halted))
    blocked = 10.0 * (np.exp(0.05) - np.exp(0.05 * 0.05))
    assert moved.sum() == pytest.approx(0.3 * blocked, rel=1e-5)
    assert moved[0] == 0 and moved[2] == 0  # the halted region and the non-host take nothing
    np.testing.assert_allclose(moved[[1, 3, 4]] / moved[[1, 3, 4]].sum(), np.array([4.0, 2.0, 1.0]) / 7, rtol=1e-5)
    nobody = np.asarray(supply.relocated(p, power, change, 0.05, jnp.ones(5, bool)))
    assert np.all(nobody == 0)


def test_moratorium_moves_construction_abroad_and_sovereign_compute_stays_within_its_licence(baseline):
    """Paired: the moratorium lowers US power and raises power in hosting regions (never
    lowers it); a sovereign buildout without the licence it needs stays within its cap in
    every trajectory and month, and the cap binds."""
    sc = with_months(baseline, MONTHS)
    base_x = materialize(sc, n=N)
    mor = with_months(load("moratorium", calibration="none"), MONTHS)
    x = materialize(mor, n=N)
    b, m = series(sc, base_x, "power"), series(mor, x, "power")
    hit = m[-1, :, 0] < b[-1, :, 0]
    assert 0.6 < hit.mean() < 0.95  # the moratorium happens with probability 0.8
    assert np.all(m[:, :, 1:][:, :, [0, 2, 3]] >= b[:, :, 1:][:, :, [0, 2, 3]] * (1 - 1e-5))
    assert np.all(m[-1, hit, 1] > b[-1, hit, 1])
    assert np.all(m[:, :, 2] == b[:, :, 2])  # China hosts none of the labs' chips
    cap = 3.0e6
    sov = with_months(load("sovereign_compute", calibration="none"), MONTHS)
    capped = with_params(sov, compute_licence=fixed({"us": 1e12, "europe": 1e12, "china": 1e12,
                                                     "other_north": 1e12, "global_south": cap}))
    c = series(capped, materialize(capped, n=N), "compute")[:, :, 4]
    free = series(sov, materialize(sov, n=N), "compute")[:, :, 4]
    assert np.all(c <= cap * (1 + 1e-6))
    assert np.mean(free[-1] > cap) > 0.9 and np.mean(c[-1] > 0.99 * cap) > 0.9


def test_a_withheld_release_holds_back_the_mid_class_distilled_from_it():
    """Public cells' mid class lags max(mid_lag, G); the trusted tier keeps mid_lag; the
    open class (other developers) is untouched. G below mid_lag changes nothing."""
    from kernels import menu
    p = _P(mid_lag=5.0, open_lag=3.5, stack_lag=jnp.array([100.0, 100.0, 1.0]))
    withheld = jnp.array([[0.0, 1.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    for gap, mid_public in ((0.5, 5.0), (5.0, 5.0), (9.0, 9.0), (12.0, 12.0)):
        lag = np.asarray(menu.lags(p, jnp.asarray(gap), withheld))
        np.testing.assert_array_equal(lag[..., 0], np.asarray(withheld) * gap)
        np.testing.assert_allclose(lag[0, 0, 1], 5.0)  # trusted: the labs' mid class as released to it
        np.testing.assert_allclose(lag[2, 0, 1], mid_public)  # a region with no trusted access
        np.testing.assert_allclose(lag[:2, 1:, 1], mid_public)
        np.testing.assert_allclose(lag[..., 2], np.array([3.5, 3.5, 1.0])[:, None] * np.ones((1, 3)))


def _one_month(sc, **params):
    """supply.step for one trajectory of sc in the first month of its buildout window, with
    parameters replaced by params (each a (region,) or scalar value)."""
    import jax
    from kernels.month import DT, init, month_noise
    key = jax.random.key(3)
    p, s = init(key, sc.prior)
    p = p._replace(**{k: jnp.asarray(v, p.compute0.dtype) for k, v in params.items()})
    t = jnp.asarray(p.buildout_start, p.compute0.dtype)
    nz = month_noise(key, t.astype(jnp.int32), len(sc.regions), p.compute0.dtype)
    state, capex = supply.step(p, supply.SupplyState(s.compute, s.power_draw, s.log_power, s.growth_dev),
                               s.moratorium_hit, nz, t, DT)
    return p, s, [np.asarray(o, np.float64) for o in (*state, capex)]


def test_a_buildout_budget_costs_what_it_buys():
    """A month of budget S buys F = S dt / c_GW GW of sites (c_GW the all-in cost of a GW:
    facility plus the chips to fill it), adds exactly F to power, and the month's capex
    rises by exactly S (annualised) where the licence leaves room; where the licence is
    nearly full, F is what the licence lets the region fill, and the cap holds."""
    from kernels.month import DT
    sc = load("sovereign_compute", calibration="none")
    budget = np.array([0.0, 20.0, 0.0, 15.0, 30.0])
    p0, s, (k0, w0, lp0, _, capex0) = _one_month(sc, buildout_budget=np.zeros(5))
    p, _, (k1, w1, lp1, _, capex1) = _one_month(sc, buildout_budget=budget)
    t_years = float(p.buildout_start) * DT
    kw = float(p.kw_per_h100e0) * np.exp(-float(p.g_power_eff) * (t_years + DT))
    price = float(p.hardware_cost0) * np.exp(-float(p.g_hw) * t_years)
    per_gw = float(p.facility_capex) + price * 1e6 / (kw * 1e9)
    funded = budget * DT / per_gw
    np.testing.assert_allclose(np.exp(lp1) - np.exp(lp0), funded, rtol=2e-3, atol=1e-6)
    np.testing.assert_allclose(capex1 - capex0, budget, rtol=2e-3, atol=1e-2)
    np.testing.assert_allclose(k1 - k0, funded * 1e6 / kw, rtol=2e-3, atol=1.0)
    assert funded[4] > 0.01  # the South's month buys tens of MW: the check is not vacuous

    # A licence with room for a tenth of the South's month: the budget buys that much, and no more.
    retired = np.asarray(s.compute, np.float64) * (1 - DT / float(p.hardware_lifetime))
    room = 0.1 * funded[4] * 1e6 / kw
    licence = np.full(5, 1e12)
    licence[4] = retired[4] + room
    _, _, (k2, w2, lp2, _, capex2) = _one_month(sc, buildout_budget=budget, compute_licence=licence)
    assert k2[4] <= licence[4] * (1 + 1e-6)
    np.testing.assert_allclose(np.exp(lp2[4]) - np.exp(lp0[4]), 0.1 * funded[4], rtol=5e-3)
