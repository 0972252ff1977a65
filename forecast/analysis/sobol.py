"""Sobol' indices of any function of the scenario's uncertain inputs (the estimation half
of forecast.analysis.sensitivity, which supplies the engine as that function).

    inputs   : the design's columns: a normal per uncertain parameter entry, a posterior
               row per fitted model, the process noise (market shocks, events); grouped
    design   : SALib's scrambled Sobol' (Saltelli) design, AB matrices swapping whole groups
    sobol    : first-order (Saltelli 2010) and total (Jansen) indices of every series at
               once, with percentile bootstrap intervals (the same resamples for all)
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from forecast.engine.options import RunError
from forecast.scenario import Scenario
from kernels import SPECS

NOISE = ("process noise: shocks", "process noise: events")
OTHER = "other parameters"
POSTERIOR = "posterior: "
DEFAULT_RESAMPLES = 200
DEFAULT_CONFIDENCE = 0.95
# Series whose variance on the analysis scale is at most this (sd 1e-6: a share constant to
# 1e-6, a log-scale output constant to a relative 1e-6, float32's resolution) get NaN indices.
VAR_FLOOR = 1e-12
MAX_DROPPED = 1e-3  # largest fraction of base samples with a non-finite value that is dropped



class SensitivityError(RunError):
    """A sensitivity request that cannot be carried out: says which argument and why."""


@dataclass(frozen=True)
class Inputs:
    """The design's columns: each one's label, group and what it sets.

    kind[i] is ("normal", entry) for a parameter entry's normal, ("posterior", entries) for
    a fitted model's posterior row, ("noise", 0 or 1) for the key of the market shocks or
    of the events."""

    labels: tuple[str, ...]
    groups: tuple[str, ...]
    kind: tuple

    @property
    def group_names(self) -> list[str]:
        return list(dict.fromkeys(self.groups))

    def members(self, group: str) -> list[str]:
        return [label for label, g in zip(self.labels, self.groups) if g == group]


def _entry_labels(sc: Scenario) -> list[tuple[str, str]]:
    """(parameter name, entry label) for every parameter entry, in registry order."""
    out = []
    for spec, loc in zip(SPECS, sc.prior.loc):
        names = {"": None, "region": sc.regions, "tier": sc.tiers}[spec.dims]
        if names is None:
            out.append((spec.name, spec.name))
        else:
            out += [(spec.name, f"{spec.name}[{n}]") for n in names]
    return out


def _fitted_model(name: str) -> str:
    from priors.models import MODELS

    for model, module in MODELS.items():
        if name in module.KERNEL_PARAMS:
            return model
    return "other"


def inputs(sc: Scenario, ungroup: bool = False, parameters=None) -> Inputs:
    """The scenario's uncertain inputs as design columns.

    Default: one group per parameter name (its uncertain entries), one per fitted model
    whose posterior supplies entries, and the process noise. ungroup: one group per entry
    (posterior models stay whole: their entries are dependent). parameters: only these
    parameter names get groups of their own (a name whose prior is fixed still gets one,
    with no effect); every other uncertain entry is pooled in one group."""
    labels, groups, kind = [], [], []
    known = {s.name for s in SPECS}
    if parameters is not None:
        parameters = list(parameters)
        unknown = [p for p in parameters if p not in known]
        if unknown:
            raise SensitivityError(f"parameter {unknown[0]!r} is not a model parameter; see docs/model.md for the "
                                   "parameter table")
    scale = np.concatenate([np.ravel(np.asarray(s)) for s in sc.prior.scale])
    mask = np.concatenate([np.ravel(np.asarray(m)) for m in sc.prior.from_draws])
    posterior: dict[str, list[int]] = {}
    for i, (name, label) in enumerate(_entry_labels(sc)):
        if mask[i]:
            posterior.setdefault(_fitted_model(name), []).append(i)
            continue
        named = parameters is not None and name in parameters
        if scale[i] <= 0 and not named:
            continue
        if parameters is not None:
            group = name if named else OTHER
        else:
            group = label if ungroup else name
        labels.append(label)
        groups.append(group)
        kind.append(("normal", i))
    for model, entries in posterior.items():
        labels.append(f"{POSTERIOR}{model} row")
        groups.append(f"{POSTERIOR}{model}")
        kind.append(("posterior", tuple(entries)))
    for which, (group, label) in enumerate(zip(NOISE, ("monthly compute, power, cost and demand shocks",
                                                       "moratorium draw, restriction starts and ends"))):
        labels.append(label)
        groups.append(group)
        kind.append(("noise", which))
    return Inputs(tuple(labels), tuple(groups), tuple(kind))


def design(inp: Inputs, n: int, seed: int) -> np.ndarray:
    """SALib's Saltelli design on [0, 1): (n * (groups + 2), columns), rows laid out per base
    sample as A, AB_1 .. AB_G, B (AB_g: A with group g's columns from B)."""
    from SALib.sample import sobol as salib_sobol

    problem = {"num_vars": len(inp.labels), "names": list(inp.labels), "bounds": [[0.0, 1.0]] * len(inp.labels),
               "groups": list(inp.groups)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # SALib's note that grouped designs skip S2
        return salib_sobol.sample(problem, n, calc_second_order=False, scramble=True, seed=seed)


def check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2 or n & (n - 1):
        raise SensitivityError(f"n must be a power of two >= 2 (the Sobol' sequence is balanced at powers of two), "
                               f"got {n!r}; e.g. 1024, 4096 or 8192")
    return int(n)


# ------------------------------------------------------------------ estimation


# ------------------------------------------------------------------ estimation
class Estimator:
    """First-order and total Sobol' indices of every series, streamed over blocks of base
    samples, with bootstrap intervals.

    The estimators are SALib's (and scipy.stats.sobol_indices'): with f shifted by a centre
    c (the mean of the first block's A and B rows) and V the pooled variance of A and B,
        S_g  = mean(f_B (f_ABg - f_A)) / V          (Saltelli et al. 2010)
        ST_g = mean((f_A - f_ABg)^2) / (2 V)        (Jansen 1999)
    for all series at once. Intervals: percentiles over bootstrap resamples of the base
    samples, as multinomial weights drawn up front (the same resamples for every series and
    group), so each block adds weighted sums and memory does not grow with n. Base samples
    with a non-finite value anywhere are dropped (weight 0)."""

    def __init__(self, n: int, n_groups: int, n_series: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0):
        w = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
        self.w = np.vstack([np.ones((1, n)), w])  # row 0: the sample itself
        shape = (1 + resamples, n_series)
        self.centre = None
        self.sw = np.zeros((1 + resamples, 1))
        self.sa, self.sb, self.saa, self.sbb = (np.zeros(shape) for _ in range(4))
        self.first = np.zeros((n_groups,) + shape)
        self.total = np.zeros((n_groups,) + shape)
        self.dropped = 0

    def add(self, index, f_a, f_b, f_ab):
        """index: (k,) base-sample numbers; f_a, f_b: (k, s); f_ab: (k, G, s)."""
        good = np.isfinite(f_a).all(axis=1) & np.isfinite(f_b).all(axis=1) & np.isfinite(f_ab).all(axis=(1, 2))
        self.dropped += int((~good).sum())
        if not good.any():
            return
        f_a, f_b, f_ab = f_a[good], f_b[good], f_ab[good]
        w = self.w[:, np.asarray(index)[good]]
        if self.centre is None:
            self.centre = 0.5 * (np.mean(f_a, axis=0, dtype=np.float64) + np.mean(f_b, axis=0, dtype=np.float64))
        a = np.asarray(f_a, np.float64) - self.centre
        b = np.asarray(f_b, np.float64) - self.centre
        self.sw += w.sum(axis=1, keepdims=True)
        self.sa += w @ a
        self.sb += w @ b
        self.saa += w @ (a * a)
        self.sbb += w @ (b * b)
        for g in range(f_ab.shape[1]):
            d = np.asarray(f_ab[:, g], np.float64) - self.centre - a
            self.first[g] += w @ (b * d)
            self.total[g] += w @ (d * d)

    def result(self, confidence: float = DEFAULT_CONFIDENCE) -> dict:
        """(G, s) first, total, first_low, first_high, total_low, total_high; (s,) variance
        and mean of the series; NaN indices where a series (or a resample of it) has a
        variance at most VAR_FLOOR: nothing to apportion."""
        sw = np.maximum(self.sw, 1.0)
        m = 0.5 * (self.sa + self.sb) / sw
        second = 0.5 * (self.saa + self.sbb) / sw
        var = second - m * m
        centre = np.zeros(self.sa.shape[1]) if self.centre is None else self.centre
        ok = var > VAR_FLOOR
        safe = np.where(ok, var, 1.0)
        first = np.where(ok, self.first / sw / safe, np.nan)
        total = np.where(ok, 0.5 * self.total / sw / safe, np.nan)
        tail = 50.0 * (1.0 - confidence)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN series
            lo_f, hi_f = np.nanpercentile(first[:, 1:], [tail, 100.0 - tail], axis=1)
            lo_t, hi_t = np.nanpercentile(total[:, 1:], [tail, 100.0 - tail], axis=1)
        return {"first": first[:, 0], "total": total[:, 0], "first_low": lo_f, "first_high": hi_f,
                "total_low": lo_t, "total_high": hi_t, "variance": np.where(ok[0], var[0], 0.0),
                "mean": centre + m[0]}


def sobol(evaluate, inp: Inputs, n: int, seed: int = 0, resamples: int = DEFAULT_RESAMPLES,
          confidence: float = DEFAULT_CONFIDENCE, max_dropped: float = MAX_DROPPED, block: int | None = None,
          progress=None):
    """Sobol' indices of any vector function of the design's columns.

    evaluate(u) -> (rows, s): outputs at design rows u (rows, columns) in [0, 1), called on
    blocks of `block` base samples (all at once by default), each block's rows laid out as
    design() lays them out. At most max_dropped of the base samples may have a non-finite
    output (they are dropped). Returns (Estimator.result()'s dict, dropped count)."""
    n = check_n(n)
    n_groups = len(inp.group_names)
    u = design(inp, n, seed).reshape(n, n_groups + 2, -1)
    block = n if block is None else max(1, int(block))
    est = None
    starts = range(0, n, block)
    for i, start in enumerate(starts):
        part = u[start:start + block]
        y = np.asarray(evaluate(part.reshape(-1, part.shape[-1])))
        y = y.reshape(len(part), n_groups + 2, -1)
        if est is None:
            est = Estimator(n, n_groups, y.shape[-1], resamples, seed)
        est.add(np.arange(start, start + len(part)), y[:, 0], y[:, -1], y[:, 1:-1])
        if progress is not None:
            progress(i + 1, len(starts), "simulating")
    if est.dropped > max_dropped * n:
        raise SensitivityError(f"{est.dropped} of {n} base samples produced non-finite values (more than the "
                               f"allowed fraction {max_dropped:g}); check the scenario's priors for extreme values")
    return est.result(confidence), est.dropped


# ------------------------------------------------------------------ the engine as a function
