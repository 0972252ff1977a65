"""The access model (docs/model.md, version 3 part 1, with the staged-release, trusted-demand,
regional agentic-share, leakage, licence and access-index equations of the kernel module
docstrings) as a careful analyst would write it in NumPy: a loop over months, vectorised
over trajectories (float64, NumPy's own random generator).

It reads the same scenario priors as the engine and implements the same equations
(docs/model.md: "A month, in order", "Outputs" and the parameter table; the docstrings of
kernels/demand.py, events.py and supply.py and the OUTPUTS of kernels/layout.py where
they go beyond it) independently of kernels/: power capacity that a moratorium blocks
partly built in other hosting regions (leakage) and installed compute capped by the chip
licence; the menu of model classes (frontier, mid, open) chosen by logit shares of total
token demand, with a regional agentic share and tokens per user; free and paid consumer
plans; sticky list prices bounded by substitution; enterprise demand, and the trusted
tier's own demand, that stop compounding under rationing beyond the start's; staged
release (the public's frontier trails the trusted tier's by a gap G with memory, which
grows while a security restriction holds); an allocation that moves rationed tokens down
the menu (base at the open class from any capacity, upgrades to mid and frontier from
capacity that may host the labs' models); and a capability-weighted access index, the
trusted gap and its persistence. It is both the speed baseline for benchmarks/run.py and
a correctness reference:
tests/kernels/test_reference.py checks that its bands agree with the engine's within Monte Carlo
error. Bands are np.quantile over the trajectories each month (method "inverted_cdf", as
the engine).

Where docs/model.md is silent or ambiguous, this file decides (each decision is marked
"docs silent" below): the demand feedback's U is step 7's (the compute the wanted tokens
need at last month's prices); the free allowance caps the cost-responsive tokens a user
wants; the start's list prices obey the premium bound; guarantees serve a tier's classes in
proportion; unused reserves return to the home regions' own capacity; pooled capacity is
drawn from the permitted regions' leftovers in proportion; a cell with nothing served
reports the smallest lag on offer to it; leakage is shared out by the hosting regions'
power at the start of the month (the P in B's definition).
"""
from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

from forecast.scenario import Scenario, load
from kernels import OUTPUTS, output_sizes
from kernels.month import LIST_PRICE_QUANTILE
from benchmarks.reference_parts import (DT, N_TIERS, QUANTILES, TOKEN_RES, F, M, O, down_the_menu, logistic_curve,
                                         lognormal_gini_sigma, sample_params)


def simulate(sc: Scenario | str = "baseline", n: int = 10_000, seed: int = 0, quantiles=QUANTILES,
             keep: bool = False):
    """Simulate n trajectories; returns (time, series, quantile) bands, or with keep=True
    the (time, trajectory, series) values themselves (small runs only).

    Series are in the engine's order (kernels.OUTPUTS, sizes kernels.SeriesLayout).

    Long: the month, in docs/model.md's order, as one loop an analyst checks line by line
    against the document; split into functions it would copy the kernels' structure, which
    it exists to be independent of.
    """
    sc = load(sc, calibration="none") if isinstance(sc, str) else sc
    rng = np.random.default_rng(seed)
    p = sample_params(sc, n, rng)
    R = p["compute0"].shape[1]
    window = lambda a, b, t: ((t >= a) & (t < b)).astype(np.float64)  # noqa: E731
    logistic = logistic_curve
    pop, north = p["population"], p["north"]
    hosts, access, home = p["hosts_frontier"], p["frontier_access"], p["frontier_home"]
    friction, access_w = p["import_friction"], p["access_weight"]
    tw, upw = p["tier_weight"], p["upgrade_weight"]
    eps = p["elasticity"]
    sigma_inc = lognormal_gini_sigma(p["income_gini"])
    log_med_inc = np.log(p["gni_per_capita"] / 12.0) - 0.5 * sigma_inc**2
    # agentic share by region: start and ceiling scaled by v_r = (gni_r / gni_max)^agentic_income
    reach = (p["gni_per_capita"] / p["gni_per_capita"].max(1, keepdims=True)) ** p["agentic_income"][:, None]

    def agentic_mix(ty):
        """(n, R) tokens per user relative to an assisted user, (1 - s_r) + s_r M."""
        s = logistic(p["agentic_share0"][:, None] * reach, p["agentic_ceiling"][:, None] * reach,
                     p["agentic_rate"][:, None], ty)
        return 1 - s + s * p["agentic_multiplier"][:, None]

    mix0 = agentic_mix(0.0)
    blocked = np.ones((n, R, N_TIERS))
    blocked[:, :, 0] = 1 - p["trusted_access"]
    # the menu: compute per token, appeal, which classes are on offer, price sensitivity
    qc = (np.ones(n), p["mid_compute"], p["mid_compute"] * p["open_compute"])
    q_vec = np.stack(qc, -1)  # (n, 3)
    appeal = np.stack([np.zeros(n), p["mid_appeal"], p["open_appeal"]], -1)  # (n, 3)
    offered = np.stack([access, access, np.ones_like(access)], -1)  # (n, R, 3)
    free_class = np.stack([np.zeros_like(access), access, 1 - access], -1)  # (n, R, 3): mid, or open
    gni = p["gni_per_capita"]
    theta = (p["price_sensitivity"][:, None] * p["tier_sensitivity"])[:, None, :] * (
        (gni.max(1, keepdims=True) / gni) ** p["income_sensitivity"][:, None])[:, :, None]  # (n, R, K)
    lag_m = p["mid_lag"]
    lag_o = np.minimum(p["open_lag"][:, None], p["stack_lag"])  # (n, R)

    def serving_gain(ty):
        h = p["serve_halflife"]
        return p["g_serve"] * h / np.log(2.0) * (1 - np.exp2(-ty / h))

    def floor_cost(ty):
        capital = p["hardware_cost0"] * np.exp(-p["g_hw"] * ty) / (12 * p["hardware_lifetime"])
        energy = p["kw_per_h100e0"] * np.exp(-p["g_power_eff"] * ty) * 730.0 * p["electricity_price"]
        return 1e6 * (capital + energy) / p["floor_tokens_per_h100e"]

    def lags(gap):
        """(n, R, K, 3) capability lag of each class for each cell: the frontier's is 0 for
        the trusted tier where it has trusted access, the public's gap G (n,) elsewhere; the
        mid class no nearer than the frontier it is distilled from."""
        lag_f = np.where(blocked > 0, gap[:, None, None], 0.0)
        return np.stack([lag_f, np.maximum(lag_m[:, None, None], lag_f),
                         np.broadcast_to(lag_o[:, :, None], lag_f.shape)], -1)

    def demand(log_c, log_e, log_t, ty, adoption):
        """Total tokens: trusted and enterprise (n, R, 2), consumer users (n, R), tokens a
        user wants (n, R), a basic plan's tokens (n,). adoption: (n, R) the month's share."""
        mix = agentic_mix(ty)
        response = np.exp(-eps * (log_c - np.log(p["cost_frontier0"])))[:, None]
        plan = p["tokens_assisted"] * np.exp(p["assisted_growth"] * ty)
        enterprise = np.exp(log_e) * mix / mix0 * response
        trusted = np.exp(log_t) * response
        te = np.stack([trusted, enterprise], -1)
        # docs silent: the cost response scales the tokens a user wants, before the free allowance
        return te, pop * adoption, plan[:, None] * mix * response, plan

    def priced_out(P, plan):
        """(n, R, K): trusted and enterprise priced out of a basic plan at the frontier's list
        price, consumers out of the regional paid plan."""
        cost = np.concatenate([np.broadcast_to((plan[:, None] * P[:, :2, F] * 1e-6)[:, None, :], (n, R, 2)),
                               p["plan_price"][:, :, None]], -1)
        log_cost = np.log(cost) - np.log(p["ai_budget_share"])[:, None, :]
        share = ndtr((log_cost - log_med_inc[:, :, None]) / sigma_inc[:, :, None])
        return np.where(share < 1e-6, 0.0, np.where(share > 1 - 1e-6, 1.0, share))

    def wanted(P, dem, lag):
        """Wanted tokens W (n, R, K, 3) at list prices P (n, K, 3), and the priced-out shares."""
        te, users, u, plan = dem
        po = priced_out(P, plan)
        V = appeal[:, None, None, :] - p["lag_aversion"][:, None, None, None] * lag \
            - theta[..., None] * np.log(P)[:, None, :, :]
        V = V - V.max(-1, keepdims=True)
        e = np.exp(V) * offered[:, :, None, :]
        s = e / e.sum(-1, keepdims=True)
        e2 = e.copy()
        e2[..., F] = 0.0
        s2 = e2 / e2.sum(-1, keepdims=True)  # without the frontier (open is always on offer)
        W_te = te[..., None] * ((1 - po[:, :, :2, None]) * s[:, :, :2] + po[:, :, :2, None] * s2[:, :, :2])
        paid = p["paid_propensity"][:, None] * (1 - po[:, :, 2])
        free = np.minimum(u, p["free_allowance"][:, None])
        W_c = users[..., None] * (paid[..., None] * u[..., None] * s[:, :, 2]
                                  + (1 - paid)[..., None] * free[..., None] * free_class)
        return np.concatenate([W_te, W_c[:, :, None, :]], 2), po, paid

    def need(W):
        """(n,) the compute the wanted tokens need at the classes chosen."""
        return np.einsum("nrkc,nc->n", W, q_vec)

    def targets(log_c, mult):
        base = np.exp(log_c)[:, None, None] * q_vec[:, None, :] * p["markup"][:, :, None]  # (n, K, 3)
        front = np.exp(log_c)[:, None] * p["markup"] * mult[:, None] ** p["scarcity_passthrough"]
        base[:, :, F] = np.minimum(front, p["premium_max"][:, None] * base[:, :, M])
        return base

    # Start: compute, power, list prices at the targets with multiplier 1, and the throughput
    # that makes the compute the wanted tokens need over all capacity equal scarcity0.
    k = p["compute0"].copy()
    w = k * np.maximum(p["fleet_kw0"], p["kw_per_h100e0"])[:, None] / 1e6
    log_p = np.log(w * (1 + p["power_headroom0"])[:, None])
    log_c = np.log(p["cost_frontier0"])
    log_e = np.log(p["enterprise0"])
    log_t = np.log(p["trusted0"])
    # docs silent: the start's prices obey the premium bound too (step 7: "both targets obey it")
    P = targets(log_c, np.ones(n))
    # staged release: no restriction, the public's gap G at the release window, the last
    # restriction long over
    restricted = np.zeros(n, bool)
    W_rel = p["release_window"]
    W_restr = np.maximum(p["restrict_window"], W_rel)
    G = W_rel.copy()
    n_state = np.full(n, np.inf)  # months the current state (restricted or not) has lasted
    a_start = logistic(p["adoption0"], p["adoption_ceiling"], p["adoption_rate"], 0.0)
    W0, _, _ = wanted(P, demand(log_c, log_e, log_t, 0.0, a_start), lags(G))
    q0 = need(W0) / (p["scarcity0"] * (p["inference_share"][:, None] * k).sum(1))
    x_prev = np.zeros(n)  # last month's log excess scarcity over the start's
    kappa = 1.0 - np.exp2(-DT / p["price_halflife"])
    dev = np.zeros((n, R))
    # adoption's rate deviation (Ornstein-Uhlenbeck, exact steps) and its integral, the shift
    # of the logit position from the fitted logistic
    th = p["adoption_rate_reversion"][:, None]
    a_decay = np.exp(-th * DT)
    a_sd = p["adoption_rate_vol"][:, None] * np.sqrt(-np.expm1(-2 * th * DT) / (2 * th))
    a_rho = p["adoption_common"][:, None]
    z0 = rng.standard_normal((n, R + 1))  # the deviation starts from its stationary law
    a_dev = p["adoption_rate_vol"][:, None] / np.sqrt(2 * th) * (np.sqrt(a_rho) * z0[:, R:] + np.sqrt(1 - a_rho) * z0[:, :R])
    a_shift = np.zeros((n, R))
    gap_run = np.zeros((n, R))  # consecutive months the trusted gap has exceeded gap_threshold
    gap_hit = np.zeros((n, R))  # 1 once a run has lasted gap_duration months
    hit = rng.standard_normal((n, R)) < ndtri(np.clip(p["moratorium_probability"], 0, 1))
    sq = np.sqrt(DT)
    life = p["hardware_lifetime"][:, None]
    sizes = output_sizes(R)
    out = []
    for month in range(sc.months):
        t, ty = float(month), month * DT
        z = rng.standard_normal((n, 4 * R + 6))
        zk, zkc, zg, zgc = z[:, :R], z[:, R], z[:, R + 1:2 * R + 1], z[:, 2 * R + 1]
        zp, zpc, zc = z[:, 2 * R + 2:3 * R + 2], z[:, 3 * R + 2], z[:, 3 * R + 3]
        ze, zs, zend = z[:, 3 * R + 4:4 * R + 4], z[:, 4 * R + 4], z[:, 4 * R + 5]
        # 1. Security restrictions and staged release.
        hazard = np.clip(p["restrict_hazard"], 0, 1)
        starts = zs < ndtri(hazard)
        ends = zend < ndtri(1.0 / np.maximum(p["restrict_duration"], 1.0))
        now = np.where(restricted, ~ends, starts)
        u_left = np.clip(ndtr(zs) / np.maximum(hazard, 1e-300), 0, 1)  # part of the month left
        # n: months the state has lasted, this one included (a restriction's first month counts u)
        n_state = np.where(now != restricted, np.where(now, u_left, 1.0), n_state + 1.0)
        # restricted: G = min(max(W, n, G + 1 where G > W), W_R) (the newest release before the
        # restriction holds the gap at W for W months, then it grows with n; a gap still
        # catching up from an earlier restriction carries on); not restricted: G = W once
        # n > W, before that min(G + 1, W_R) (the restricted generations still in their window)
        carried = np.where(G > W_rel, G + 1.0, 0.0)
        G = np.where(now, np.minimum(np.maximum(np.maximum(W_rel, n_state), carried), W_restr),
                     np.where(n_state > W_rel, W_rel, np.minimum(G + 1.0, W_restr)))
        restricted = now
        # 2. Power capacity.
        rho = p["shock_corr"][:, None]
        building = window(p["buildout_start"], p["buildout_end"], t)[:, None]
        mor = hit * window(p["moratorium_start"], p["moratorium_end"], t)[:, None]
        f = np.where(mor > 0, p["moratorium_growth_factor"][:, None], 1.0)
        gp = p["power_growth_inf"][:, None] + (p["power_growth0"] - p["power_growth_inf"][:, None]) * np.exp2(
            -ty / p["power_halflife"][:, None]) + p["buildout_extra_growth"] * building
        x_p = gp * DT + p["power_vol"][:, None] * sq * (np.sqrt(rho) * zpc[:, None] + np.sqrt(1 - rho) * zp)
        P_old = np.exp(log_p)
        P_new = P_old * np.exp(np.where(x_p > 0, f * x_p, x_p))
        # Leakage: the share moratorium_leakage of the capacity the moratoria block is built
        # in the hosting regions under none, in proportion to their power (lost where none is).
        halted = mor > 0
        block = np.where(halted & (x_p > 0), P_old * (np.exp(x_p) - np.exp(f * x_p)), 0.0).sum(1)
        takes = hosts * (1.0 - halted) * P_old
        tot_takes = takes.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            moved = np.where(tot_takes[:, None] > 0, (p["moratorium_leakage"] * block)[:, None] * takes
                             / np.where(tot_takes > 0, tot_takes, 1.0)[:, None], 0.0)
        # Sovereign budgets buy sites and the chips to fill them at the all-in cost of a GW,
        # no more than the licence lets the region fill (after this month's retirements).
        kw = (p["kw_per_h100e0"] * np.exp(-p["g_power_eff"] * (ty + DT)))[:, None]
        price_hw = (p["hardware_cost0"] * np.exp(-p["g_hw"] * ty))[:, None]
        per_gw = p["facility_capex"][:, None] + price_hw * 1e6 / (kw * 1e9)
        funded = np.minimum(p["buildout_budget"] * building * DT / per_gw,
                            np.maximum(p["compute_licence"] - k * (1 - DT / life), 0.0) * kw / 1e6)
        log_p = np.log(P_new + moved + funded)
        # Hardware within the power.
        dev = dev - p["growth_reversion"][:, None] * dev * DT + p["growth_vol"][:, None] * sq * (
            np.sqrt(rho) * zgc[:, None] + np.sqrt(1 - rho) * zg)
        g = p["growth_inf"] + (p["growth0"] - p["growth_inf"]) * np.exp2(-ty / p["growth_halflife"][:, None]) + dev
        g = np.minimum(g + p["buildout_extra_growth"] * building, p["growth_cap"])
        level = p["compute_vol"][:, None] * sq * (np.sqrt(rho) * zkc[:, None] + np.sqrt(1 - rho) * zk)
        wanted_hw = np.maximum(k * (np.expm1(g * DT + level) + DT / life), 0.0) + funded * 1e6 / kw
        k, w = k * (1 - DT / life), w * (1 - DT / life)
        room = np.maximum(np.exp(log_p) - w, 0.0) * 1e6 / kw
        added = np.minimum(np.minimum(wanted_hw, room), np.maximum(p["compute_licence"] - k, 0.0))
        k, w = k + added, w + added * kw / 1e6
        # Capex, annualised [USD bn/yr]: chips at the month's hardware price, new facility GW.
        capex = 12.0 * (added * price_hw / 1e9
                        + np.maximum(np.exp(log_p) - P_old, 0.0) * p["facility_capex"][:, None])
        # 3. Inference cost (serving gains saturate) and capacity (frontier-token units).
        serve_rate = p["g_serve"] * np.exp2(-ty / p["serve_halflife"])
        log_c = log_c + (p["g_front"] - p["g_hw"] - serve_rate) * DT + p["cost_vol"] * sq * zc
        q = q0 * np.exp(serving_gain(ty) - p["g_front"] * ty)
        cap = p["inference_share"][:, None] * k * q[:, None]
        K_total = cap.sum(1)
        # 4. Total token demand; enterprise growth less the feedback of last month's excess scarcity.
        ge = p["enterprise_growth_inf"] + (p["enterprise_growth0"] - p["enterprise_growth_inf"]) * np.exp2(
            -ty / p["enterprise_halflife"])
        log_e = log_e + ((ge - p["demand_feedback"] * x_prev) * DT)[:, None] + p["enterprise_vol"][:, None] * sq * ze
        # trusted demand: its own growth, the same feedback
        log_t = log_t + ((p["trusted_growth"] - p["demand_feedback"] * x_prev) * DT)[:, None]
        a_ratio = np.clip(p["adoption0"] / p["adoption_ceiling"], 1e-6, 1 - 1e-6)
        adoption = p["adoption_ceiling"] / (1 + np.exp(-(np.log(a_ratio / (1 - a_ratio))
                                                         + p["adoption_rate"] * ty + a_shift)))
        dem = demand(log_c, log_e, log_t, ty, adoption)
        lag = lags(G)
        # 5-7. Choice at last month's prices -> scarcity multiplier -> sticky prices -> choice.
        # U: the compute all wanted tokens need at last month's prices (step 7); docs silent:
        # step 4's feedback x uses the same U (one symbol), next month.
        W_prev, _, _ = wanted(P, dem, lag)
        U = need(W_prev)
        mult = np.maximum(1.0, U / np.maximum(K_total, 1e-300)) ** (1.0 / eps)
        with np.errstate(divide="ignore"):
            x_prev = np.maximum(0.0, np.log(U / (np.maximum(K_total, 1e-300) * p["scarcity0"])))
        P = np.exp(np.log(P) + kappa[:, None, None] * (np.log(targets(log_c, mult)) - np.log(P)))
        W, po, paid = wanted(P, dem, lag)
        # 8. Allocation. (a) Guarantees: reserves of the home regions' capacity, tiers in order.
        hom = cap * home
        hom_total = hom.sum(1)
        gshare = p["guarantee"] * window(p["guarantee_start"], np.inf, t)[:, None]
        reserve = gshare / np.maximum(gshare.sum(1), 1.0)[:, None] * hom_total[:, None]
        need_k = np.einsum("nrkc,nc->nrk", W, q_vec)
        before = np.cumsum(need_k, 2) - need_k
        from_res = np.minimum(need_k, np.maximum(reserve[:, :, None] - before, 0.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            res_frac = np.where(need_k > 0, from_res / np.where(need_k > 0, need_k, 1.0), 0.0)
        # docs silent: a reserve serves a tier's classes in proportion
        W_res = W * res_frac[..., None]
        unused = reserve.sum(1) - from_res.sum((1, 2))
        hshare = hom / np.maximum(hom_total, 1e-300)[:, None]
        # docs silent: what a reserve leaves unused returns to the home regions' own capacity
        avail = np.maximum(cap - hshare * (reserve.sum(1) - unused)[:, None], 0.0)
        W_rest = W - W_res
        # (b) the trusted tier through the menu, (c) enterprise and consumer with what is left.
        served = np.zeros_like(W)
        f_base = np.ones(W.shape[:3])
        g_mid = np.ones(W.shape[:3])
        g_front = np.ones(W.shape[:3])
        for group in ([0], [1, 2]):
            s_g, f_g, gm_g, gf_g, avail = down_the_menu(W_rest[:, :, group], avail, qc, tw[:, group], upw, access_w,
                                                hosts, friction)
            served[:, :, group], f_base[:, :, group] = s_g, f_g
            g_mid[:, :, group], g_front[:, :, group] = gm_g, gf_g
        wanted_cell = W.sum(-1)  # (n, R, K)
        class_tokens = W_res + served
        small = class_tokens < TOKEN_RES * wanted_cell[..., None]
        class_tokens = np.where(small, 0.0, class_tokens)
        # tokens served at the class chosen: reserves all, the menu f g_F W_F, f g_M W_M, f W_O
        at_choice_menu = np.stack([f_base * g_front, f_base * g_mid, f_base], -1)
        missed = np.where(small, W, W_rest * (1.0 - at_choice_menu))
        tot = wanted_cell.sum((1, 2))
        unmet = np.where(tot > 0, missed.sum((1, 2, 3)) / np.maximum(tot, 1e-300), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            unserved = np.where(wanted_cell > 0, W_rest.sum(-1) * (1.0 - f_base) / np.where(
                wanted_cell > 0, wanted_cell, 1.0), 0.0)
        unserved = np.where(unserved < TOKEN_RES, 0.0, unserved)
        front = class_tokens[..., F]
        lagging = class_tokens[..., M] + class_tokens[..., O]
        served_cell = class_tokens.sum(-1)
        # docs silent on "best": the smallest lag among the classes on offer to the cell
        best = np.min(np.where(offered[:, :, None, :] > 0, lag, np.inf), -1)
        with np.errstate(invalid="ignore", divide="ignore"):
            cap_lag = np.where(served_cell > 0, (class_tokens * lag).sum(-1) / np.where(
                served_cell > 0, served_cell, 1.0), best)
        per_capita = front.sum(2) / pop
        # the trusted gap: the public's (enterprise tier's) best lag on offer over the trusted tier's
        trusted_gap = np.maximum(best[:, :, 1] - best[:, :, 0], 0.0)
        gap_run = np.where(trusted_gap > p["gap_threshold"][:, None], gap_run + 1.0, 0.0)
        # a count of months against gap_duration, within 1e-3 of a month (docs/model.md): a
        # fixed whole number of months comes through a float32 log and exp a hair above itself
        gap_hit = np.maximum(gap_hit, (gap_run >= p["gap_duration"][:, None] - 1e-3).astype(np.float64))
        # capability-weighted access: every class's tokens, a token L months behind worth 2^(-L / h)
        access = (class_tokens * np.exp2(-lag / p["capability_halflife"][:, None, None, None])).sum((2, 3)) / pop
        north_mean = (north * access * pop).sum(1) / (north * pop).sum(1)
        south_mean = ((1 - north) * access * pop).sum(1) / ((1 - north) * pop).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(south_mean > 0, north_mean / np.where(south_mean > 0, south_mean, 1.0), 0.0)
        share = pop / pop.sum(1, keepdims=True)
        mean_ax = (share * access).sum(1)
        spread = (share[:, :, None] * share[:, None, :] * np.abs(access[:, :, None] - access[:, None, :])
                  ).sum((1, 2))
        gini = np.where(mean_ax > 0, spread / (2 * np.maximum(mean_ax, 1e-300)), 0.0)
        cF = np.exp(log_c)
        fixed_cost = floor_cost(ty) + np.exp(log_c - (p["g_alg"] + p["g_front"]) * ty)
        zo = rng.standard_normal((n, 2, R))  # published-figure noise
        za = rng.standard_normal((n, R + 2))  # adoption's rate shocks, [R + 1] the edition's
        adoption_obs = 1.0 / (1.0 + np.exp(-(np.log(adoption / (1 - adoption)) + p["adoption_obs_sd"][:, None] * zo[:, 0]
                                             + p["adoption_edition_sd"][:, None] * za[:, R + 1:R + 2]
                                             + (p["adoption_obs_level"] + p["adoption_obs_drift"] * ty)[:, None])))
        a_dev = a_decay * a_dev + a_sd * (np.sqrt(a_rho) * za[:, R:R + 1] + np.sqrt(1 - a_rho) * za[:, :R])
        a_shift = a_shift + a_dev * DT
        compute_obs = (k.sum(1) * np.exp(p["compute_obs_sd"] * zo[:, 1, 0]))[:, None]
        # a provider's published tokens (its level grown as all tokens served, t(4) scatter)
        # and a released model's list price (asymmetric Laplace about the top-decile line)
        log_served = np.log(np.maximum(class_tokens.sum((1, 2, 3)), 1e-30))
        if month == 0:
            log_served0 = log_served
        tokens_obs = np.exp(p["tokens_obs_level"] + log_served - log_served0
                            + p["tokens_obs_sd"] * rng.standard_t(4.0, n))[:, None]
        kq = np.sqrt(LIST_PRICE_QUANTILE / (1 - LIST_PRICE_QUANTILE))
        classic = p["list_price_scale"] * kq / LIST_PRICE_QUANTILE
        ald = -classic * kq * rng.standard_exponential(n) + classic / kq * rng.standard_exponential(n)
        list_obs = (p["list_price0"] * np.exp(log_c - np.log(p["cost_frontier0"]) + ald))[:, None]
        chip_obs = (w.sum(1) / p["power_overhead"] * np.exp(p["chip_power_obs_sd"] * rng.standard_normal(n)))[:, None]
        by_region = class_tokens.sum(2)  # (n, R, class)
        open_share = np.where(by_region.sum(-1) > 0, by_region[..., 2] / np.maximum(by_region.sum(-1), 1e-300), 0.0)
        series = {
            "compute": k, "power": np.exp(log_p), "capex": capex, "cost_frontier": cF, "cost_fixed_capability": fixed_cost,
            "cost_floor": floor_cost(ty), "price": P[:, :, F], "class_price": P, "demand_tokens": wanted_cell,
            "class_tokens": class_tokens, "frontier_tokens": front, "lagging_tokens": lagging,
            "tokens_per_capita": per_capita, "access_index": access, "north_south_ratio": ratio,
            "access_gini": gini, "unmet_share": unmet, "capability_lag": cap_lag, "trusted_gap": trusted_gap,
            "gap_persistence": gap_hit, "priced_out": po, "unserved_share": unserved,
            "free_share": 1.0 - paid, "open_share": open_share, "adoption": adoption, "adoption_observed": adoption_obs,
            "compute_observed": compute_obs, "tokens_observed": tokens_obs, "list_price_observed": list_obs,
            "chip_power_observed": chip_obs,
        }
        assert set(series) == {spec.name for spec in OUTPUTS}
        x = np.concatenate([np.reshape(series[spec.name], (n, size)) for spec, size in zip(OUTPUTS, sizes)], axis=1)
        out.append(x if keep else np.quantile(x, quantiles, axis=0, method="inverted_cdf").T)
    return np.stack(out)
