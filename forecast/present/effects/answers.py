"""docs/answers.md: the four questions of the source material answered from paired runs,
and the expected-effects table, written by `forecast answers` (never by hand).

Each built-in scenario is compared with `baseline` in a run of its own (the same seed, so
the baseline block is the same in every pair and every difference is paired). Numbers are
medians with 90% bands [5%, 95%] in January of the year; probabilities are exact fractions
of the simulated trajectories.
"""
from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import xarray as xr

from forecast.present.effects import THRESHOLD, Expectation, check, expectations
from forecast.present.findings import at, band, likelihood, shown_band
from forecast.present.headline import fmt

YEARS = (2030, 2035)
BASE = "baseline"


def compared_scenarios() -> list[str]:
    """The built-in scenarios compared with the baseline."""
    from forecast.scenario import builtin_names

    return [s for s in builtin_names() if s != BASE]


def run_pairs(scenarios=None, n_trajectories: int = 3000, seed: int = 0, progress=None) -> dict[str, xr.Dataset]:
    """{scenario: compare(baseline, scenario)} for every built-in scenario (or the names in
    `scenarios`), one paired run each with the same seed."""
    from forecast.engine.run import compare
    from forecast.scenario import load

    names = list(scenarios or compared_scenarios())
    base = load(BASE)
    return {name: compare([base, load(name)], n_trajectories=n_trajectories, seed=seed, progress=progress)
            for name in names}


def _value(ds, name, sel, year, scenario=BASE) -> str:
    med, lo, hi = band(ds[name], dict(sel, scenario=scenario, time=f"{year}-01"))
    return f"{fmt(med)} [{fmt(lo)}, {fmt(hi)}]"


def _mean(ds, name, sel, year, scenario=BASE) -> float:
    return at(ds[f"{name}_mean"], dict(sel, scenario=scenario, time=f"{year}-01"))


def _effect(ds, other, name, sel, year) -> tuple[str, float, float]:
    """(the paired difference as read: "0.28x [0.19x, 0.45x]" or "+3.1 [0, +5.2] months",
    P(higher), P(equal))."""
    at_ = dict(sel, compared=other, time=f"{year}-01")
    med, lo, hi = band(ds[f"{name}_diff"], at_)
    return (shown_band(ds, name, med, lo, hi), at(ds[f"{name}_p_higher"], at_), at(ds[f"{name}_p_equal"], at_))


def _q1(pairs) -> list[str]:
    ds = pairs.get("rationed_frontier") or next(iter(pairs.values()))
    us = {"region": "us"}
    lines = ["## 1. Does scarcity plus security rationing open a lasting gap between trusted users and everyone "
             "else?", ""]
    lasting = {y: _mean(ds, "gap_persistence", us, y) for y in YEARS}
    if "rationed_frontier" in pairs:
        p_r = _mean(ds, "gap_persistence", us, 2035, "rationed_frontier")
        lines += [f"**Answer.** A lasting gap (more than 6 months for a year) by 2035 is "
                  f"{likelihood(lasting[2035])} in the baseline (P = {lasting[2035]:.3f}) and "
                  f"{likelihood(p_r)} under security rationing (P = {p_r:.3f}): rationing widens the public's gap "
                  f"to {_value(ds, 'trusted_gap', us, 2030, 'rationed_frontier')} months, but what the public can "
                  "still reach bounds it.", ""]
    lines.append(f"**Baseline.** The US public trails the trusted tier by {_value(ds, 'trusted_gap', us, 2030)} "
                 f"months in 2030 and {_value(ds, 'trusted_gap', us, 2035)} in 2035 (the staged release window, "
                 f"plus any security restriction). The probability of a lasting gap (more than k = 6 months for "
                 f"at least m = 12 consecutive months, `gap_persistence`) by 2030 is {lasting[2030]:.3f}, by 2035 "
                 f"{lasting[2035]:.3f}.")
    if "rationed_frontier" in pairs:
        r = "rationed_frontier"
        eff, p_hi, _ = _effect(ds, r, "trusted_gap", us, 2030)
        rl = {y: _mean(ds, "gap_persistence", us, y, r) for y in YEARS}
        lag = _value(ds, "capability_lag", {"region": "us", "tier": "enterprise"}, 2030, r)
        lines += ["", f"**Under security rationing** (`rationed_frontier`: each generation held back for about a "
                      f"year, for years on end) the gap is {_value(ds, 'trusted_gap', us, 2030, r)} months in 2030 "
                      f"({eff} against the baseline; {likelihood(p_hi)} wider, P = {p_hi:.2f}), and a lasting gap "
                      f"by 2035 has probability {rl[2035]:.3f} (2030: {rl[2030]:.3f}). US businesses' tokens trail "
                      f"the frontier by {lag} months.",
                  "", "The gap is bounded by what the public can still reach. The labs' mid class is held back "
                      "with the frontier it is distilled from, but open weights (about 3.5 months behind on "
                      "Epoch's capability index) come from developers the policy does not bind, so holding the "
                      "labs' releases back opens a gap of months, not years, unless open weights fall further "
                      "behind."]
    return lines


def _q2(pairs) -> list[str]:
    lines = ["## 2. How much does the agentic shift tighten the compute crunch, and who is priced or rationed "
             "out first?", ""]
    if "agentic_surge" in pairs:
        ds, a = pairs["agentic_surge"], "agentic_surge"
        rows = [("demand_tokens", {"region": "us", "tier": "consumer"}, "US consumers' wanted tokens"),
                ("unmet_share", {}, "share of wanted tokens rationed down the menu or unserved"),
                ("price", {"tier": "consumer"}, "consumer frontier price"),
                ("access_index", {"region": "us"}, "US capability-weighted access"),
                ("access_index", {"region": "global_south"}, "Global South capability-weighted access"),
                ("demand_tokens", {"region": "us", "tier": "enterprise"}, "US business demand")]
        lines += ["Paired against the baseline (`agentic_surge`: agentic share to 0.9 at 25x the tokens per "
                  "user, at twice the pace):", "",
                  "| metric | 2030 | P(higher) | 2035 | P(higher) |", "|---|---|---|---|---|"]
        for name, sel, label in rows:
            cells = []
            for y in YEARS:
                eff, p_hi, _ = _effect(ds, a, name, sel, y)
                cells += [eff, f"{p_hi:.2f}"]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += ["", "The surge raises the tokens users want; capacity is the same, so scarcity rises until the "
                      "demand feedback slows business demand's growth (firms do not build the workflows they "
                      "cannot run). The squeeze falls on the growth of use, not on who is served at all."]
    ds = next(iter(pairs.values()))
    regions = [str(r) for r in ds["region"].values]
    lines += ["", "**Who is priced or rationed out first** (baseline, 2030, consumers):", "",
              "| region | priced out of the paid plan | on the free tier only | with no service at all, P(>0) "
              "| open-class share of tokens | months behind the frontier |", "|---|---|---|---|---|---|"]
    for r in regions:
        c = {"region": r, "tier": "consumer"}
        p0 = at(ds["unserved_share_p_positive"], dict(c, scenario=BASE, time="2030-01"))
        lines.append(f"| {r} | {_value(ds, 'priced_out', c, 2030)} | {_value(ds, 'free_share', {'region': r}, 2030)}"
                     f" | {_value(ds, 'unserved_share', c, 2030)}, {p0:.2f} | "
                     f"{_value(ds, 'open_share', {'region': r}, 2030)} | {_value(ds, 'capability_lag', c, 2030)} |")
    po = {r: at(ds["priced_out"], dict(region=r, tier="consumer", scenario=BASE, time="2030-01", quantile=0.5))
          for r in regions}
    first = max(po, key=po.get)
    p_none = max(at(ds["unserved_share_p_positive"], dict(region=r, tier="consumer", scenario=BASE, time="2030-01"))
                 for r in regions)
    lines += ["", f"Priced out first: {first}, where {fmt(po[first])} of adults cannot afford the paid plan (the "
                  f"median; the next region {fmt(sorted(po.values())[-2])}); they keep the free tier's allowance. "
                  f"Consumers with no service at all: P(>0) at most {p_none:.2f} in any region."]
    return lines


def _q3(pairs) -> list[str]:
    rows = [("north_south_ratio", {}, "North/South"), ("access_index", {"region": "global_south"}, "South access"),
            ("trusted_gap", {"region": "us"}, "trusted gap, US"), ("price", {"tier": "consumer"}, "consumer price"),
            ("capex", {"region": "global_south"}, "South capex")]
    lines = ["## 3. What do policies do to the gap?", "",
             "Paired effect against the baseline, median [5%, 95%] with P(higher):", "",
             "| scenario | year | " + " | ".join(label for *_, label in rows) + " |",
             "|---|---|" + "---|" * len(rows)]
    for other, ds in pairs.items():
        for y in YEARS:
            cells = []
            for name, sel, _ in rows:
                eff, p_hi, p_eq = _effect(ds, other, name, sel, y)
                cells.append(f"{eff}, P = {p_hi:.2f}" + (f" (equal {p_eq:.2f})" if p_eq >= 0.05 else ""))
            lines.append(f"| {other} | {y} | " + " | ".join(cells) + " |")
    lines += [""] + _costs(pairs)
    return lines


def _costs(pairs) -> list[str]:
    """What each programme spends and what the regions' capex does, from the runs."""
    from forecast.scenario import load
    out = []
    for other, ds in pairs.items():
        sc = load(other)
        budget = sc.params["buildout_budget"]
        values = np.broadcast_to(budget.get("value", budget.get("median")), (len(sc.regions),))
        spend = {r: float(v) for r, v in zip(sc.regions, values) if float(v) > 0}
        if not spend:
            continue
        parts = []
        for r in spend:
            eff, p_hi, _ = _effect(ds, other, "capex", {"region": r}, 2030)
            parts.append(f"{r} ${spend[r]:g}bn a year: capex {eff} in 2030 (P(higher) = {p_hi:.2f})")
        out.append(f"- **What `{other}` costs**: " + "; ".join(parts) + ".")
    if out:
        out.append("- A region's capex rises by more than its programme's budget: the market's own buildout "
                   "grows with the larger stock it replaces and extends (docs/model.md, step 2).")
    return out


def _q4(pairs) -> list[str]:
    ds = next(iter(pairs.values()))
    lines = ["## 4. Is the North/South gap widening or closing, and with what odds?", ""]
    p = {y: at(ds["north_south_ratio_p_widening"], dict(scenario=BASE, time=f"{y}-01")) for y in YEARS}
    lines += [f"**Answer.** In the baseline it is {likelihood(p[2030])} that the gap is wider in 2030 than at the "
              f"start (P = {p[2030]:.2f}) and {likelihood(p[2035])} in 2035 (P = {p[2035]:.2f}); the policies' "
              "paired effects on it are in section 3.", ""]
    for name, what in (("north_south_ratio", "The North/South ratio of capability-weighted tokens per person"),
                       ("access_gini", "The population-weighted Gini of capability-weighted access")):
        start = str(np.datetime_as_string(ds["time"].values[0], unit="M"))
        parts = []
        for y in YEARS:
            p = at(ds[f"{name}_p_widening"], dict(scenario=BASE, time=f"{y}-01"))
            parts.append(f"{_value(ds, name, {}, y)} in {y} (P(above {start}) = {p:.2f}, {likelihood(p)} wider)")
        lines.append(f"- {what} is {at(ds[name], dict(scenario=BASE, time=start, quantile=0.5)):.3g} at the start "
                     f"and {'; '.join(parts)}.")
    lines += ["", "Capability-weighted access counts every class's tokens, each weighted by 2^(-months behind / "
                  "2.25) (a fixed capability's price falls ~40x a year), with China's own stack counted and no "
                  "offset constant; see docs/model.md."]
    return lines


def effects_table(pairs) -> list[str]:
    lines = ["## Expected effects, scenario by scenario", "",
             "Each built-in scenario's expected direction for each headline metric, from the mechanisms "
             "(`forecast/present/effects/expected.toml`, with the reasons), against the paired runs. "
             f"\"higher\"/\"lower\" hold when P(that direction | moved) >= {THRESHOLD}; \"not higher\"/\"not "
             "lower\" when the other direction has P <= 0.2; \"equal\" when P(equal) >= 0.8; \"none\" expects no "
             "direction.", "",
             "| scenario | metric | expected | 2030 | P(higher) | holds | 2035 | P(higher) | why |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e, (e30, p30, _), (holds, p) in _verdicts(pairs):
        e35, p35, _ = _effect(pairs[e.scenario], e.scenario, e.metric, e.select, 2035)
        verdict = "-" if holds is None else ("yes" if holds else "**no**") + f" ({p:.2f})"
        lines.append(f"| {e.scenario} | {e.where} | {e.direction} | {e30} | {p30:.2f} | {verdict} | {e35} | "
                     f"{p35:.2f} | {e.why} |")
    return lines


def _priors(ds) -> str:
    """The baseline's priors in a line: "posterior shipped (4000 draws, sha256 ...) for the
    calibrated parameters, hand-set priors for the rest"."""
    source = str(ds.attrs.get("priors_source", "")).split(" | ")[0].removeprefix(f"{BASE}: ")
    head, sep, _ = source.partition(" for ")
    return f"{head} for the calibrated parameters, hand-set priors for the rest" if sep else source


def render(pairs: dict[str, xr.Dataset], n_trajectories: int, seed: int) -> str:
    ds = next(iter(pairs.values()))
    head = ["# Answers: the four questions, from the model", "",
            f"Written by `forecast answers -n {n_trajectories} --seed {seed} -o docs/answers.md` on "
            f"{datetime.date.today().isoformat()} (engine {ds.attrs.get('engine_version', '?')}; {_priors(ds)}). "
            "Do not edit by hand: rerun the command. Every number is a "
            f"median with its 90% band [5%, 95%] in January of the year, from {n_trajectories} trajectories "
            "per scenario; every difference is paired against `baseline` (the same worlds).", ""]
    out = head + _q1(pairs) + [""] + _q2(pairs) + [""] + _q3(pairs) + [""] + _q4(pairs) + [""] + effects_table(pairs)
    return "\n".join(out) + "\n"


def write(text: str, path) -> Path:
    from forecast.engine.files import atomic

    path = Path(path)
    with atomic(path) as tmp:
        tmp.write_text(text)
    return path


def _verdicts(pairs):
    """(expectation, its 2030 effect (shown, P(higher), P(equal)), check's (holds, P)) for
    every expectation of a scenario that was run."""
    for e in expectations():
        if e.scenario in pairs:
            effect = _effect(pairs[e.scenario], e.scenario, e.metric, e.select, 2030)
            yield e, effect, check(e.direction, effect[1], effect[2])


def unmet(pairs) -> list[Expectation]:
    """The expectations the runs do not bear out (in 2030)."""
    return [e for e, _, (holds, _) in _verdicts(pairs) if holds is False]

