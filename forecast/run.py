"""Run a scenario: batches of trajectories through the kernel, counting passes, bands out.

    pilot  : the first min(N, 4096) trajectories fix each series' bin range
    pass A : every trajectory; coarse histograms, moments, extremes, non-finite counts
    pass B : every trajectory again (same keys, same values); the bins holding the target
             quantiles, split finer, with each sub-bin's min and max
    pass C : only where pass B left a quantile unresolved (values tied inside a sub-bin)
Every kernel call simulates one batch of a fixed size per backend (BATCH), so one compiled
program produces every value of a run, whatever the chunk size: results are bit-identical
for any chunk size. Counts are integers, extremes exact, and moments are folded in global
batch order.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from forecast import quantiles as qmod
from forecast.outputs import build_dataset
from forecast.scenario import Scenario, load
from kernels import run_chunk
from kernels.reduce import LOG_TINY
from kernels.simulate import log_scale_mask, n_series as series_count

DEFAULT_QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
PILOT = 4096  # trajectories that fix the histogram ranges
N_BINS = 1024  # pass-A bins per series and month
N_SUB = 128  # pass-B/C sub-bins per refined bin
# Trajectories per kernel call, per backend: large enough to fill the device, small enough
# for its memory (a trajectory-month's working set is ~16 kB). Fixed, because a different
# shape is a different compiled program, which may round differently in the last bit.
BATCH = {"cpu": 8192, "gpu": 262_144, "cuda": 262_144, "rocm": 262_144, "tpu": 262_144}
BATCH_ENV = "FORECAST_BATCH"  # override (changes results in the last bit; recorded in attrs)
CHUNK_BATCHES = 4  # default chunk: batches per host round trip (progress update)
WORKERS = 2  # batches in flight at once


class RunError(ValueError):
    """A run request that cannot be carried out (bad sizes, too many non-finite values)."""


@dataclass
class Progress:
    """Called as progress(done_units, total_units, phase) during a run."""

    callback: Callable[[int, int, str], None] | None = None

    def __call__(self, done, total, phase):
        if self.callback is not None:
            self.callback(done, total, phase)


def batch_size() -> int:
    """Trajectories per kernel call on this backend (env FORECAST_BATCH overrides)."""
    env = os.environ.get(BATCH_ENV)
    if env:
        try:
            value = int(env)
        except ValueError:
            value = 0
        if value < 1:
            raise RunError(f"{BATCH_ENV} must be a whole number >= 1, got {env!r}")
        return value
    return BATCH.get(jax.default_backend(), BATCH["cpu"])


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise RunError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def run(
    scenario: Scenario | str | os.PathLike = "baseline",
    n_trajectories: int = 10_000,
    seed: int = 0,
    chunk_size: int | None = None,
    quantiles=DEFAULT_QUANTILES,
    progress: Callable[[int, int, str], None] | None = None,
    max_nonfinite_fraction: float = 1e-3,
) -> xr.Dataset:
    """Simulate `n_trajectories` trajectories of a scenario and return its bands.

    scenario: a Scenario, a built-in name or a TOML path. chunk_size: trajectories per host
    round trip (progress step), a multiple of the backend's batch size (`batch_size()`:
    8192 on CPU, 262144 on GPU); results do not depend on it. Returns an xarray.Dataset with
    quantile bands, means, standard deviations and probabilities for every output (see
    docs/model.md).
    """
    sc = scenario if isinstance(scenario, Scenario) else load(scenario)
    return _run([sc], n_trajectories, seed, chunk_size, quantiles, progress, max_nonfinite_fraction)


def compare(
    scenarios,
    n_trajectories: int = 10_000,
    seed: int = 0,
    chunk_size: int | None = None,
    quantiles=DEFAULT_QUANTILES,
    progress: Callable[[int, int, str], None] | None = None,
    max_nonfinite_fraction: float = 1e-3,
) -> xr.Dataset:
    """Run several scenarios on the same trajectories (common random numbers) in one pass.

    Every trajectory uses the same parameter normals, posterior row, events and monthly
    shocks in every scenario, so differences are paired. Returns the usual variables with a
    `scenario` dimension, plus for each scenario after the first (dimension `compared`)
    the bands of the paired difference against the first (`<name>_diff`: the log ratio
    for log-scale outputs, the difference otherwise) and `<name>_p_higher`,
    `<name>_p_equal`: the exact fractions of trajectories where it is higher or equal.
    """
    scs = [s if isinstance(s, Scenario) else load(s) for s in scenarios]
    if len(scs) < 2:
        raise RunError(f"compare needs at least two scenarios, got {len(scs)}")
    names = [s.name for s in scs]
    if len(set(names)) != len(names):
        raise RunError(f"compare needs distinct scenario names, got {names}")
    first = scs[0]
    for s in scs[1:]:
        for field in ("start", "months", "regions"):
            if getattr(s, field) != getattr(first, field):
                raise RunError(f"scenario {s.name!r} has {field} {getattr(s, field)!r} but {first.name!r} has "
                               f"{getattr(first, field)!r}; compared scenarios must share start, months and regions")
    return _run(scs, n_trajectories, seed, chunk_size, quantiles, progress, max_nonfinite_fraction)


def stack_priors(scs):
    """The scenarios' priors on a leading scenario axis, posterior draws padded to one count.

    Uncalibrated scenarios (one draw, no entry taken from it) are padded with zeros; two
    calibrations must have the same number of draws so that each trajectory's row index
    is the one its separate runs would use."""
    counts = {s.prior.draws[0].shape[0] for s in scs if np.any([np.any(m) for m in s.prior.from_draws])}
    if len(counts) > 1:
        raise RunError(f"compared scenarios use posteriors with different numbers of draws {sorted(counts)}; "
                       "use one posterior (or --priors none) for all of them")
    n_draws = counts.pop() if counts else 1

    def pad(d):
        d = np.asarray(d)
        return d if d.shape[0] == n_draws else np.zeros((n_draws,) + d.shape[1:], d.dtype)

    priors = [s.prior._replace(draws=jax.tree.map(pad, s.prior.draws)) for s in scs]
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *priors)


def _run(scs, n_trajectories, seed, chunk_size, quantiles, progress, max_nonfinite_fraction):
    sc = scs[0]
    n = _check_int("n_trajectories", n_trajectories, 1)
    seed = _check_int("seed", seed, 0)
    if n >= 2**31:
        raise RunError(f"n_trajectories must be below 2**31, got {n}")
    q = tuple(float(x) for x in quantiles)
    if not q or any(not 0.0 < x < 1.0 for x in q) or list(q) != sorted(set(q)):
        raise RunError(f"quantiles must be increasing, distinct and within (0, 1), got {quantiles!r}")
    batch = batch_size()
    if chunk_size is None:
        chunk = batch * CHUNK_BATCHES
    else:
        chunk = _check_int("chunk_size", chunk_size, batch)
        if chunk % batch:
            raise RunError(f"chunk_size must be a multiple of the batch size {batch} on this backend "
                           f"({jax.default_backend()}), got {chunk}")
    report = Progress(progress)
    t_start = time.perf_counter()
    prior = sc.prior if len(scs) == 1 else stack_priors(scs)
    pass_ = _Passes(jax.random.key(seed), prior, sc.months, n, batch, chunk)
    n_series = series_count(len(sc.regions), len(scs))
    months = sc.months
    log_scale = np.asarray(log_scale_mask(len(sc.regions), len(scs)))
    n_batches = -(-n // batch)
    total_units = 1 + 2 * n_batches
    report(0, total_units, "pilot")

    # Pilot: the first min(N, PILOT) trajectories set each series' bin range. Their
    # histogram over a fixed wide layout (log series: log values from log(1e-30), where
    # zeros land, to 70; the others are shares in [0, 1]) gives central quantiles that
    # become the range; heavy tails go to the under- and overflow bins instead of diluting
    # the bins, and the first bin (zeros) is left out of the range.
    n_pilot = min(n, PILOT)
    lo0 = np.broadcast_to(np.where(log_scale, LOG_TINY, 0.0), (months, n_series)).astype(np.float32)
    inv0 = np.broadcast_to(np.where(log_scale, N_BINS / (70.0 - LOG_TINY), N_BINS),
                           (months, n_series)).astype(np.float32)
    pilot = pass_.sweep("pass_a", (lo0, inv0), (N_BINS,), None, 0, 0, "", merge=dict(hist="sum"), n=n_pilot)
    lo, inv_w = qmod.central_ranges(pilot["hist"].reshape(months, n_series, N_BINS + 2), lo0, inv0, q, N_BINS)
    report(1, total_units, "pass A")

    moments = qmod.Moments((months, n_series))
    acc = pass_.sweep("pass_a", (lo, inv_w), (N_BINS,), report, 1, total_units, "pass A",
                      merge=dict(hist="sum", ymin_above="min", xmin="min", xmax="max", nonfinite="sum",
                                 finite="sum", positive="sum", zero="sum", above_start="sum"),
                      each=lambda ys: moments.add(ys["count"], ys["mean"], ys["m2"], ys["scale"]))
    bad = n - int(acc["finite"])
    if bad > max_nonfinite_fraction * n:
        raise RunError(
            f"{bad} of {n} trajectories produced non-finite values (more than the allowed fraction "
            f"{max_nonfinite_fraction:g}); check the scenario's priors for extreme values"
        )

    hist = acc["hist"].reshape(months, n_series, N_BINS + 2).astype(np.int64)
    total = hist.sum(axis=2)
    rank = qmod.target_ranks(total, q)
    # The lowest bins start at the smallest value above a log-scale series' zeros (counted
    # exactly as a point mass), not at log(0).
    ymin = np.where(np.isfinite(acc["ymin_above"]), acc["ymin_above"], qmod.to_y(acc["xmin"], log_scale))
    plan = qmod.plan_b(hist, rank, lo, inv_w, ymin, qmod.to_y(acc["xmax"], log_scale), acc["xmin"], acc["xmax"],
                       N_SUB)
    res = _refine(pass_, plan, report, 1 + n_batches, total_units, "pass B", total, q)
    values, errors = res["value"], res["error"]
    if not res["resolved"].all():
        # Values tied inside a sub-bin straddle the target rank: refine those sub-bins (pass C).
        total_units += n_batches
        plan_c = qmod.plan_c(plan, res, ~res["resolved"], log_scale, N_SUB)
        res_c = _refine(pass_, plan_c, report, 1 + 2 * n_batches, total_units, "pass C", total, q)
        better = ~res["resolved"] & (res_c["resolved"] | (res_c["error"] < res["error"]))
        values = np.where(better, res_c["value"], values)
        errors = np.where(better, res_c["error"], errors)
    report(total_units, total_units, "done")
    count = np.maximum(hist.sum(axis=2), 1)
    return build_dataset(
        scs, values=values, rank_error=errors, mean=moments.mean, std=moments.std, quantiles=q,
        nonfinite=acc["nonfinite"], probabilities={k: acc[k] / count for k in ("positive", "zero", "above_start")},
        info=dict(
            seed=seed, n_trajectories=n, chunk_size=chunk, batch_size=batch, bad_trajectories=bad,
            wall_seconds=time.perf_counter() - t_start,
        ),
    )


def _refine(pass_, plan, report, unit0, total_units, phase, total, q):
    acc = pass_.sweep("refine", plan["consts"], (N_BINS, N_SUB), report, unit0, total_units, phase,
                      merge=dict(counts="sum", sub_min="min", sub_max="max"))
    months, n_series, n_q = plan["rank"].shape
    shape = (months, n_series, n_q, N_SUB + 4)
    return qmod.resolve(plan, acc["counts"].reshape(shape).astype(np.int64), acc["sub_min"].reshape(shape),
                        acc["sub_max"].reshape(shape), total, q)


class _Passes:
    """Kernel calls over the run's batches, merged on the device and fetched once a chunk."""

    MERGE = {"sum": jnp.add, "min": jnp.minimum, "max": jnp.maximum}
    HOST_MERGE = {"sum": np.add, "min": np.minimum, "max": np.maximum}

    def __init__(self, key, prior, months, n, batch, chunk):
        self.key, self.prior, self.months, self.n, self.batch, self.chunk = key, prior, months, n, batch, chunk

    def sweep(self, reducer, consts, config, report, unit0, total_units, phase, merge, each=None, n=None):
        """Trajectories [0, n) (default: all) through the reducer, batch by batch; `merge`
        says how each output combines ("sum", "min", "max"); `each` sees every batch's other
        outputs on the host, in batch order; `report` (or None) hears of every batch.

        WORKERS threads keep that many batches in flight: XLA's CPU runtime leaves cores
        idle inside one call (scatters run on one thread), and concurrent calls fill them.
        Merges are exact (integer sums, min, max) or done in batch order (moments), so the
        result does not depend on which call finishes first."""
        n = self.n if n is None else n
        consts = tuple(jnp.asarray(c) for c in consts)

        def call(start):
            ys, finite = run_chunk(self.key, self.prior, start, min(self.batch, n - start), consts,
                                   batch_size=self.batch, n_months=self.months, reducer=reducer,
                                   config=config)
            return jax.block_until_ready(dict(ys, finite=jnp.sum(finite)))

        acc, host, pending = None, None, []
        starts = list(range(0, n, self.batch))
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            futures = [pool.submit(call, start) for start in starts[:WORKERS]]
            for i, start in enumerate(starts):
                ys = futures[i].result()
                if i + WORKERS < len(starts):
                    futures.append(pool.submit(call, starts[i + WORKERS]))
                futures[i] = None
                if each is not None:
                    pending.append({k: v for k, v in ys.items() if k not in merge})
                part = {k: ys[k] for k in merge}
                acc = part if acc is None else {k: self.MERGE[merge[k]](acc[k], part[k]) for k in merge}
                end = start + self.batch
                if end % self.chunk == 0 or end >= n:  # a chunk is done: one round trip
                    for p in jax.device_get(pending):
                        each(p)
                    fetched = jax.device_get(acc)
                    fetched = {k: np.asarray(v, np.int64) if merge[k] == "sum" else v for k, v in fetched.items()}
                    host = fetched if host is None else {
                        k: self.HOST_MERGE[merge[k]](host[k], v) for k, v in fetched.items()}
                    acc, pending = None, []
                if report is not None:
                    report(unit0 + i + 1, total_units, phase)
        return host


def save(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write netCDF atomically: a temporary file, then a rename. (`forecast export --csv`
    writes a tidy table; Zarr is not supported.)"""
    path = Path(path)
    if path.suffix != ".nc":
        raise RunError(f"{path}: results are written as netCDF; give a path ending in .nc")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        ds.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
