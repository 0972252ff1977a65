"""Run a scenario: batches of trajectories through the kernel, bands out.

A run whose values fit in EXACT_VALUES (trajectories x months x series; about 2e4
trajectories over 120 months) is one pass: the host keeps every value and reads exact
order statistics (rank error 0). Larger runs count instead, in passes over the same
trajectories:
    pilot  : the first min(N, 4096) trajectories fix each series' bin range
    pass A : every trajectory; coarse histograms, moments, extremes, non-finite counts
    pass B : every trajectory again (same keys, same values); the bins holding the target
             quantiles, split finer, with each sub-bin's min and max
    pass C : only where pass B left a quantile unresolved (values tied inside a sub-bin)
The run's first `sample` trajectories (default DEFAULT_SAMPLE) are also kept whole, every
output at every month, with their parameters, from the first batch of the pass that
keeps values or of pass A (kernels.run_chunk's `sample`): the sample that distribution
views (forecast.plots.distribution) draw on.
Every kernel call simulates one batch of a fixed size per backend (BATCH), so one compiled
program produces every value of a run, whatever the chunk size: results are bit-identical
for any chunk size. Batches are spread over the local devices (batch i on device i mod D),
each device merging its own; counts are integers, extremes exact, and moments are folded in
global batch order, so results do not depend on the number of devices either. Each pass is
checkpointed (forecast.checkpoint), so a killed run resumes with the same result.
"""
from __future__ import annotations

import os
import threading
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
from forecast.files import atomic, write_error
from forecast.outputs import build_dataset
from forecast.scenario import Scenario, load
from kernels import run_chunk
from kernels.keys import SEED_LIMIT, seed_key
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
SMALL_STEP = 1024  # a small run's batch is a multiple of this (one compiled program per size)
# Values a run may keep on the host for exact order statistics in one pass (float32: 1.2 GB,
# room for 20,000 trajectories of the baseline over 120 months at up to 125 series);
# above it the counting passes run. Fixed (env FORECAST_EXACT_VALUES overrides, 0 = always
# count): which method ran depends on the run's size only, never on the machine.
EXACT_VALUES = 300_000_000
EXACT_ENV = "FORECAST_EXACT_VALUES"
# Whole trajectories a run keeps by default (`sample`): about 100 kB each for one scenario
# over 120 months (212 series, float32), and about 70 kB of file (random values compress little).
DEFAULT_SAMPLE = 200
CHUNK_BATCHES = 4  # default chunk: batches per host round trip (progress update)
WORKERS = 2  # batches in flight at once per device


class RunError(ValueError):
    """A run request that cannot be carried out (bad sizes, too many non-finite values)."""


@dataclass
class Progress:
    """Called as progress(done_units, total_units, phase) during a run."""

    callback: Callable[[int, int, str], None] | None = None

    def __call__(self, done, total, phase):
        if self.callback is not None:
            self.callback(done, total, phase)


def _env_int(name: str, default: int, minimum: int) -> int:
    """A whole-number setting from the environment (unset or empty: the default)."""
    env = os.environ.get(name)
    if not env:
        return default
    try:
        value = int(env)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise RunError(f"{name} must be a whole number >= {minimum}, got {env!r}")
    return value


def batch_size() -> int:
    """Trajectories per kernel call on this backend (env FORECAST_BATCH overrides)."""
    return _env_int(BATCH_ENV, BATCH.get(jax.default_backend(), BATCH["cpu"]), 1)


def exact_values() -> int:
    """The most values (trajectories x months x series) a run keeps for exact bands."""
    return _env_int(EXACT_ENV, EXACT_VALUES, 0)


def run_batch(n: int) -> int:
    """Trajectories per kernel call for a run of n: the backend's batch, or for a run of
    fewer than WORKERS batches, n / WORKERS rounded up to a multiple of SMALL_STEP (so a
    quick look simulates at most SMALL_STEP - 1 trajectories per call more than asked).
    Depends on n and the backend only, never on devices or chunks: one program per run."""
    full = batch_size()
    if os.environ.get(BATCH_ENV) or n >= WORKERS * full:
        return full
    return min(full, SMALL_STEP * -(-(-(-n // WORKERS)) // SMALL_STEP))


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise RunError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def check_seed(seed, error=None) -> int:
    """A seed in [0, 2**64), every bit of which is used (kernels.keys.seed_key); otherwise
    `error` (default RunError) with the allowed range."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < SEED_LIMIT:
        raise (error or RunError)(f"seed must be a whole number in [0, 2**64) (0 to 18446744073709551615), "
                                  f"got {seed!r}")
    return int(seed)


def run(
    scenario: Scenario | str | os.PathLike = "baseline",
    n_trajectories: int = 10_000,
    seed: int = 0,
    chunk_size: int | None = None,
    quantiles=DEFAULT_QUANTILES,
    progress: Callable[[int, int, str], None] | None = None,
    max_nonfinite_fraction: float = 1e-3,
    devices: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    checkpoint_every: float = 60.0,
    output: str | os.PathLike | None = None,
    sample: int = DEFAULT_SAMPLE,
) -> xr.Dataset:
    """Simulate `n_trajectories` trajectories of a scenario and return its bands.

    scenario: a Scenario, a built-in name or a TOML path. chunk_size: trajectories per host
    round trip (progress step), a multiple of the backend's batch size (`batch_size()`:
    8192 on CPU, 262144 on GPU); results do not depend on it. Returns an xarray.Dataset with
    quantile bands, means, standard deviations and probabilities for every output (see
    docs/model.md).

    devices: use the first `devices` local devices (default: all accelerators, or one CPU;
    results do not depend on it). seed: a whole number in [0, 2**64), every bit used.
    checkpoint: a file where a counting run's accumulators are saved every
    `checkpoint_every` seconds (a shorter run, and a one-pass run, writes none: see
    README, "Long runs"); resume: continue from it (refused if it belongs to another run).
    A resumed run gives the same bits as an uninterrupted one. output: a netCDF path the
    result is written to (atomically) before the checkpoint is removed, so that a kill at
    any moment leaves the output or the checkpoint; without it the checkpoint is removed
    when the run returns. A run refused for non-finite values removes its checkpoint.
    sample: keep the first `sample` trajectories whole (every output at every month, as
    `<output>_sample`, and their parameters, as `param_<name>`, on a `sample` dimension);
    at most the batch size, 0 for none. Each costs about 100 kB of memory and 70 kB of
    file (little compresses) for one scenario over 120 months; the bands do not depend on it.
    """
    sc = scenario if isinstance(scenario, Scenario) else load(scenario)
    return _run([sc], n_trajectories, seed, chunk_size, quantiles, progress, max_nonfinite_fraction, devices,
                checkpoint, resume, checkpoint_every, output, sample)


def compare(
    scenarios,
    n_trajectories: int = 10_000,
    seed: int = 0,
    chunk_size: int | None = None,
    quantiles=DEFAULT_QUANTILES,
    progress: Callable[[int, int, str], None] | None = None,
    max_nonfinite_fraction: float = 1e-3,
    devices: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    checkpoint_every: float = 60.0,
    output: str | os.PathLike | None = None,
    sample: int = DEFAULT_SAMPLE,
) -> xr.Dataset:
    """Run several scenarios on the same trajectories (common random numbers) in one pass.

    Every trajectory uses the same parameter normals, posterior row, events and monthly
    shocks in every scenario, so differences are paired. Returns the usual variables with a
    `scenario` dimension, plus for each scenario after the first (dimension `compared`)
    the bands of the paired difference against the first (`<name>_diff`: the log ratio
    for log-scale outputs, the difference otherwise) and `<name>_p_higher`,
    `<name>_p_equal`: the exact fractions of trajectories where it is higher or equal.
    devices, checkpoint, resume, checkpoint_every, output, sample: as for run() (the
    sample holds each scenario's outputs, paired; not the differences).
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
    return _run(scs, n_trajectories, seed, chunk_size, quantiles, progress, max_nonfinite_fraction, devices,
                checkpoint, resume, checkpoint_every, output, sample)


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


def _run(scs, n_trajectories, seed, chunk_size, quantiles, progress, max_nonfinite_fraction, devices=None,
         checkpoint=None, resume=False, checkpoint_every=60.0, output=None, sample=DEFAULT_SAMPLE):
    sc = scs[0]
    n = _check_int("n_trajectories", n_trajectories, 1)
    seed = check_seed(seed)
    if output is not None and Path(output).suffix != ".nc":
        raise RunError(f"{output}: results are written as netCDF; give a path ending in .nc")
    if n >= 2**31:
        raise RunError(f"n_trajectories must be below 2**31, got {n}")
    q = tuple(float(x) for x in quantiles)
    if not q or any(not 0.0 < x < 1.0 for x in q) or list(q) != sorted(set(q)):
        raise RunError(f"quantiles must be increasing, distinct and within (0, 1), got {quantiles!r}")
    batch = run_batch(n)
    k = min(_check_int("sample", sample, 0), n)
    if k > batch:
        raise RunError(f"sample must be at most the batch size of this run ({batch} on {jax.default_backend()}), "
                       f"got {sample}")
    if chunk_size is None:
        chunk = batch * CHUNK_BATCHES
    else:
        chunk = _check_int("chunk_size", chunk_size, batch)
        if chunk % batch:
            raise RunError(f"chunk_size must be a multiple of the batch size {batch} of this run ({n} trajectories "
                           f"on {jax.default_backend()}), got {chunk}")
    used = local_devices(devices)
    report = Progress(progress)
    t_start = time.perf_counter()
    prior = sc.prior if len(scs) == 1 else stack_priors(scs)
    from forecast.checkpoint import Checkpoint, CheckpointError
    from forecast.outputs import engine_version

    header = dict(engine_version=engine_version(), scenario=[s.name for s in scs],
                  priors=[s.priors_source for s in scs], seed=seed, n_trajectories=n, quantiles=list(q),
                  batch=batch, sample=k, scenario_hash=[s.hash for s in scs])
    if jax.process_count() > 1 and (checkpoint is not None or resume):
        raise RunError("checkpoints are not supported in a run over several processes yet; run without "
                       "checkpoint/--resume")
    try:
        ck = Checkpoint(checkpoint, header, checkpoint_every, resume)
    except CheckpointError as e:
        raise RunError(str(e)) from None
    pass_ = _Passes(seed_key(seed), prior, sc.months, n, batch, chunk, used, ck, k)
    n_series = series_count(len(sc.regions), len(scs))
    months = sc.months
    log_scale = np.asarray(log_scale_mask(len(sc.regions), len(scs)))
    n_batches = -(-n // batch)

    def sweep(name, reducer, consts, config, merge, unit0, units, **kw):
        return pass_.sweep(name, reducer, consts, config, report if units else None, unit0, units, name, merge, **kw)

    def check(acc):
        bad = n - int(acc["finite"])
        if bad > max_nonfinite_fraction * n:
            ck.remove()  # resuming would only be refused again: the values are a function of the seed
            raise RunError(f"{bad} of {n} trajectories produced non-finite values (more than the allowed fraction "
                           f"{max_nonfinite_fraction:g}){_where_nonfinite(acc['nonfinite'], sc, len(scs))}; check "
                           "the scenario's priors for extreme values")

    out = band_passes(sweep, months, n_series, log_scale, n, n_batches, q, report, check, exact_values(), k)
    values, errors, acc, moments, hist, total_units = (out[k] for k in ("values", "errors", "acc", "moments", "hist",
                                                                        "total_units"))
    bad = n - int(acc["finite"])
    report(total_units, total_units, "done")
    count = np.maximum(hist.sum(axis=2), 1)
    ds = build_dataset(
        scs, values=values, rank_error=errors, mean=moments.mean, std=moments.std, quantiles=q,
        nonfinite=acc["nonfinite"], probabilities={k: acc[k] / count for k in ("positive", "zero", "above_start")},
        info=dict(
            seed=seed, n_trajectories=n, chunk_size=chunk, batch_size=batch, bad_trajectories=bad,
            wall_seconds=time.perf_counter() - t_start, devices=len(used), resumed=bool(resume),
            passes=out["passes"],
        ),
        sample=None if not k else dict(values=out["sample"], params=[
            {name.split("/", 1)[1]: v for name, v in out["sample_params"].items() if name.startswith(f"param{i}/")}
            for i in range(len(scs))]),
    )
    if output is not None:
        save(ds, output)  # first the output, atomically; a failure keeps the checkpoint for --resume
    ck.remove()
    return ds


def _where_nonfinite(counts, sc, n_scen) -> str:
    """Where the first non-finite values appeared: month and outputs."""
    from kernels import OUTPUTS, output_sizes

    counts = np.asarray(counts).reshape(sc.months, -1)
    months = np.flatnonzero(counts.sum(axis=1))
    if not months.size:
        return ""
    t = int(months[0])
    names = [o.name for o, size in zip(OUTPUTS, output_sizes(len(sc.regions))) for _ in range(size)]
    names = (names * (2 * n_scen - 1))[:counts.shape[1]]
    hit = sorted({names[i] for i in np.flatnonzero(counts[t])})
    year, month = (int(x) for x in sc.start.split("-"))
    when = f"{year + (month - 1 + t) // 12}-{(month - 1 + t) % 12 + 1:02d}"
    return f", first in {when} (month {t + 1} of {sc.months}) in {', '.join(hit)}"


def band_passes(sweep, months, n_series, log_scale, n, n_batches, q, report=None, check=None,
                exact=EXACT_VALUES, sample=0) -> dict:
    """The band passes of a run. With at most `exact` values (n x months x n_series): one
    pass that keeps them all and reads exact order statistics. Otherwise pilot, pass A,
    pass B and, where values tied inside a sub-bin straddle a target rank, pass C.

    sweep(name, reducer, consts, config, merge, unit0, total_units, n=None, each=None,
    state=None, everywhere=False) runs every trajectory (or the first n) through a
    kernels.reduce reducer and returns the merged accumulators (see _Passes.sweep; tests
    pass one over synthetic arrays). check(acc) may refuse pass A's result. Returns
    values and errors (time, series, q), pass A's accumulators, the moments, the pass-A
    histogram, the progress units used and the names of the passes that ran; and `sample`,
    the first trajectories' values (time, series, k) and `sample_params`, their parameters
    ("param<i>/<name>"), both None unless the sweep's batches carry them (the sweep's
    `sample`)."""
    report = report or Progress()
    # The fixed wide layout (log series: log values from log(1e-30), where zeros land, to
    # 70; the others are shares in [0, 1]): the pilot's, and the one pass's histogram (which
    # only counts the values there).
    lo0 = np.broadcast_to(np.where(log_scale, LOG_TINY, 0.0), (months, n_series)).astype(np.float32)
    inv0 = np.broadcast_to(np.where(log_scale, N_BINS / (70.0 - LOG_TINY), N_BINS),
                           (months, n_series)).astype(np.float32)
    a_merge = {"hist": "sum", "ymin_above": "min", "xmin": "min", "xmax": "max", "nonfinite": "sum",
               "finite": "sum", "positive": "sum", "zero": "sum", "above_start": "sum"}
    if n * months * n_series <= exact:
        total_units = n_batches
        report(0, total_units, "one pass")
        kept = _Kept((months, n_series), n)
        acc = sweep("one pass", "keep", (lo0, inv0), (N_BINS,), a_merge, 0, total_units, each=kept.add, state=kept)
        if check is not None:
            check(acc)
        hist = acc["hist"].reshape(months, n_series, N_BINS + 2).astype(np.int64)
        values, errors = qmod.exact(kept.rows, hist.sum(axis=2), q)
        return {"values": values, "errors": errors, "acc": acc, "moments": kept.moments, "hist": hist,
                "total_units": total_units, "passes": ["one pass"], "sample": kept.first.rows,
                "sample_params": kept.first.params}
    total_units = 1 + 2 * n_batches
    report(0, total_units, "pilot")
    # Pilot: the first min(N, PILOT) trajectories set each series' bin range. Their
    # histogram over the wide layout gives central quantiles that become the range; heavy
    # tails go to the under- and overflow bins instead of diluting the bins, and the first
    # bin (zeros) is left out of the range.
    pilot = sweep("pilot", "pass_a", (lo0, inv0), (N_BINS,), {"hist": "sum"}, 0, 0, n=min(n, PILOT),
                  everywhere=True)
    lo, inv_w = qmod.central_ranges(pilot["hist"].reshape(months, n_series, N_BINS + 2), lo0, inv0, q, N_BINS)
    report(1, total_units, "pass A")

    moments = qmod.Moments((months, n_series))
    head = _Head(moments)
    acc = sweep("pass A", "pass_a", (lo, inv_w), (N_BINS,), a_merge, 1, total_units, each=head.add, state=head)
    if check is not None:
        check(acc)
    hist = acc["hist"].reshape(months, n_series, N_BINS + 2).astype(np.int64)
    total = hist.sum(axis=2)
    rank = qmod.target_ranks(total, q)
    # The lowest bins start at the smallest value above a log-scale series' zeros (counted
    # exactly as a point mass), not at log(0).
    ymin = np.where(np.isfinite(acc["ymin_above"]), acc["ymin_above"], qmod.to_y(acc["xmin"], log_scale))
    plan = qmod.plan_b(hist, rank, lo, inv_w, ymin, qmod.to_y(acc["xmax"], log_scale), acc["xmin"], acc["xmax"],
                       N_SUB)
    # Refine, narrowing where a target is unresolved (values tied inside a sub-bin straddle
    # it), until all are resolved or the kernel's levels are used: pass B, then pass C.
    passes = ["pilot", "pass A"]
    values = errors = resolved = None
    for level in range(1, qmod.LEVELS + 1):
        name = "pass " + "BC"[level - 1]
        res = _refine(sweep, name, plan, 1 + level * n_batches, total_units, total, q)
        passes.append(name)
        if values is None:
            values, errors, resolved = res.value, res.error, res.resolved
        else:
            better = ~resolved & (res.resolved | (res.error < errors))
            values, errors = np.where(better, res.value, values), np.where(better, res.error, errors)
            resolved = resolved | res.resolved
        if resolved.all() or level == qmod.LEVELS:
            break
        total_units += n_batches
        plan = qmod.narrow(plan, res, ~res.resolved, log_scale, N_SUB)
    return {"values": values, "errors": errors, "acc": acc, "moments": moments, "hist": hist,
            "total_units": total_units, "passes": passes, "sample": head.first.rows, "sample_params": head.first.params}


class _Kept:
    """The one pass's running state: the moments, and every value in trajectory order,
    (time, series, N) float32 (missing and non-finite values as NaN). Never checkpointed."""

    def __init__(self, shape, n):
        self.moments = qmod.Moments(shape)
        self.rows = np.empty(shape + (n,), np.float32)
        self.filled = 0
        self.first = _First()

    def add(self, ys):
        self.moments.add(ys)
        self.first.add(ys)
        k = min(ys["values"].shape[-1], self.rows.shape[-1] - self.filled)
        self.rows[..., self.filled:self.filled + k] = ys["values"][..., :k]
        self.filled += k


class _First:
    """The run's sample: the first batch's head, (time, series, k) float32, and its
    parameters ("param<i>/<name>"), as kernels.run_chunk's `sample` returns them; None
    until a batch that carries them is added (batches come in order)."""

    def __init__(self):
        self.rows = self.params = None

    def add(self, ys):
        if self.rows is None and "head" in ys:
            self.rows = np.ascontiguousarray(np.moveaxis(np.asarray(ys["head"], np.float32), 1, 2))
            self.params = {k: np.asarray(v) for k, v in ys.items() if k.startswith("param")}

    def dump(self) -> dict:
        return {} if self.rows is None else {"sample": self.rows, **{f"sample_{k}": v for k, v in self.params.items()}}

    def load(self, saved: dict):
        self.rows = np.asarray(saved["sample"], np.float32) if "sample" in saved else None
        self.params = {k[len("sample_"):]: np.asarray(v) for k, v in saved.items() if k.startswith("sample_param")}


class _Head:
    """Pass A's running state: the moments and the run's sample (_First). `add` sees the
    batches in order."""

    def __init__(self, moments):
        self.moments = moments
        self.first = _First()

    def add(self, ys):
        self.moments.add(ys)
        self.first.add(ys)

    def dump(self) -> dict:
        return dict(self.moments.dump(), **self.first.dump())

    def load(self, saved: dict):
        self.moments.load(saved)
        self.first.load(saved)


def _refine(sweep, name, plan, unit0, total_units, total, q):
    acc = sweep(name, "refine", plan.consts, (N_BINS, N_SUB), {"counts": "sum", "sub_min": "min",
                                                                   "sub_max": "max"}, unit0, total_units)
    months, n_series, n_q = plan.rank.shape
    shape = (months, n_series, n_q, N_SUB + 4)
    return qmod.resolve(plan, acc["counts"].reshape(shape).astype(np.int64), acc["sub_min"].reshape(shape),
                        acc["sub_max"].reshape(shape), total, q)


def distributed(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None):
    """Join JAX's multi-process runtime (jax.distributed.initialize) before any run: each
    process then takes every P-th batch and all of them end with the same result. With no
    arguments JAX detects the cluster (SLURM, Open MPI, ...). CPU processes exchange their
    accumulators through gloo collectives."""
    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except Exception:  # an older jax: its default CPU collectives
        pass
    kwargs = {k: v for k, v in (("coordinator_address", coordinator), ("num_processes", num_processes),
                                ("process_id", process_id)) if v is not None}
    jax.distributed.initialize(**kwargs)
    return jax.process_index(), jax.process_count()


def local_devices(devices=None) -> list:
    """The devices a run uses: the first `devices` local devices of the default backend;
    by default all of them on an accelerator, one on the CPU (several CPU "devices", made
    with --xla_force_host_platform_device_count, share the same cores: each only adds a
    compilation of the kernel)."""
    found = jax.local_devices()
    if devices is None:
        return found if jax.default_backend() != "cpu" else found[:1]
    k = _check_int("devices", devices, 1)
    if k > len(found):
        raise RunError(f"devices: {k} requested but this machine has {len(found)} "
                       f"{jax.default_backend()} device(s)")
    return found[:k]


_COMPILE_LOCK = threading.Lock()  # concurrent first calls on several devices crashed XLA (CI, 8 CPU devices)


class _Passes:
    """Kernel calls over the run's batches, spread over the run's devices, merged exactly
    and fetched once a chunk (what `each` sees: every batch); each sweep checkpointed
    (forecast.checkpoint)."""

    MERGE = {"sum": jnp.add, "min": jnp.minimum, "max": jnp.maximum}
    HOST_MERGE = {"sum": np.add, "min": np.minimum, "max": np.maximum}

    def __init__(self, key, prior, months, n, batch, chunk, devices, checkpoint, sample=0):
        self.key, self.prior, self.months, self.n, self.batch, self.chunk = key, prior, months, n, batch, chunk
        self.devices, self.ck = devices, checkpoint
        self.sample = sample  # the sample's parameters ride on the batches of the passes that keep it

    def sweep(self, name, reducer, consts, config, report, unit0, total_units, phase, merge, each=None, n=None,
              state=None, everywhere=False):
        """Trajectories [0, n) (default: all) through the reducer, batch by batch; `merge`
        says how each output combines ("sum", "min", "max"); `each` sees every batch's other
        outputs on the host, in batch order; `report` (or None) hears of every batch;
        `state` (an object with dump() and load(dict)) is what `each` builds, checkpointed
        with the sweep.

        Batch i runs on device i mod D. WORKERS threads per device keep that many batches
        in flight: XLA's CPU runtime leaves cores idle inside one call (scatters run on one
        thread), and concurrent calls fill them. Each device keeps its own accumulators
        (sums of integers, min, max: exact whatever the order), merged on the host at each
        chunk's end; `each` runs in batch order, as each batch arrives. So the result does not depend on the
        number of devices, on which call finishes first, or on where a run was resumed.

        Several processes (jax.distributed): batch i is process i mod P's; at the end every
        process gathers all processes' accumulators and per-batch outputs and merges them
        the same way, so every process holds the result a single process would have.
        everywhere: every process runs all the batches instead (the small pilot)."""
        # A sweep that keeps every value is checkpointed not at all: its state would be the
        # values themselves (~54 kB a trajectory), and it is short (at most EXACT_VALUES).
        saves = reducer != "keep"
        done = self.ck.done(name)
        if done is not None:
            if state is not None:
                state.load({k[len("state/"):]: v for k, v in done.items() if k.startswith("state/")})
            return {k: v for k, v in done.items() if not k.startswith("state/")}
        n = self.n if n is None else n
        consts = tuple(jnp.asarray(c) for c in consts)
        n_dev = len(self.devices)
        procs, me = (1, 0) if everywhere else (jax.process_count(), jax.process_index())

        compiled: set[int] = set()

        def call(i, start):
            d = i % n_dev
            with jax.default_device(self.devices[d]):
                if d in compiled:
                    return one(start)
                # Each device compiles its own executable, one at a time, and a device's other
                # worker threads wait for it rather than compile the same program beside it.
                with _COMPILE_LOCK:
                    out = one(start)
                    compiled.add(d)
                    return out

        def one(start):
            ys, finite = run_chunk(self.key, self.prior, start, min(self.batch, n - start), consts,
                                   batch_size=self.batch, n_months=self.months, reducer=reducer, config=config,
                                   sample=self._sample(reducer))
            return jax.block_until_ready(dict(ys, finite=jnp.sum(finite)))

        host, first = None, 0
        partial = self.ck.partial(name)
        if partial is not None:
            first, host, saved = partial
            if state is not None:
                state.load(saved)
        accs, later = [None] * n_dev, []
        # This process's batches (all of them in a single-process run): batch i is process
        # i mod P's, and on that process runs on local device i mod D.
        mine = [i for i in range(first // self.batch, -(-n // self.batch)) if i % procs == me]
        per_chunk = self.chunk // self.batch
        workers = WORKERS * n_dev
        pool = ThreadPoolExecutor(max_workers=workers)
        futures = [pool.submit(call, i, i * self.batch) for i in mine[:workers]]
        try:
            for k, i in enumerate(mine):
                ys = futures[k].result()
                if k + workers < len(mine):
                    futures.append(pool.submit(call, mine[k + workers], mine[k + workers] * self.batch))
                futures[k] = None
                if each is not None:  # fetched at once: a kept pass's values are large
                    out = jax.device_get({key: v for key, v in ys.items() if key not in merge})
                    if procs == 1:
                        each(out)
                    else:  # folded in global batch order once every process is done
                        later.append((i, out))
                d = i % n_dev
                part = {key: ys[key] for key in merge}
                accs[d] = part if accs[d] is None else {key: self.MERGE[merge[key]](accs[d][key], part[key])
                                                        for key in merge}
                last = k == len(mine) - 1
                if (i + 1 if procs == 1 else k + 1) % per_chunk == 0 or last:  # a chunk: one round trip
                    for acc in accs:
                        if acc is None:
                            continue
                        fetched = jax.device_get(acc)
                        fetched = {key: np.asarray(v, np.int64) if merge[key] == "sum" else v
                                   for key, v in fetched.items()}
                        host = fetched if host is None else {
                            key: self.HOST_MERGE[merge[key]](host[key], v) for key, v in fetched.items()}
                    accs = [None] * n_dev
                    if not last and procs == 1 and saves:
                        self.ck.progress(name, (i + 1) * self.batch, host, None if state is None else state.dump())
                if report is not None:
                    report(unit0 + (i + 1 if procs == 1 else k + 1), total_units, phase)
        finally:
            # On an error or Ctrl-C: drop queued batches, let running ones finish (one batch
            # each), so that no XLA call outlives the interpreter.
            for f in futures:
                if f is not None:
                    f.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
        if procs > 1:
            host = self._across_processes(host, later, merge, each, reducer, consts, config, n)
        if saves:
            extra = {} if state is None else {f"state/{k}": v for k, v in state.dump().items()}
            self.ck.finish(name, {**host, **extra})
        return host


    def _sample(self, reducer) -> int:
        return self.sample if reducer in ("pass_a", "keep") else 0

    def _across_processes(self, host, later, merge, each, reducer, consts, config, n):
        """Merge this process's accumulators and per-batch outputs with every other's."""
        from jax.experimental import multihost_utils

        ys, _ = jax.eval_shape(lambda: run_chunk(self.key, self.prior, 0, 1, consts, batch_size=self.batch,
                                                 n_months=self.months, reducer=reducer, config=config,
                                                 sample=self._sample(reducer)))
        ys = dict(ys, finite=jax.ShapeDtypeStruct((), np.int32))
        if host is None:  # no batch fell to this process: the merges' identities
            ident = {"sum": 0, "min": np.inf, "max": -np.inf}
            host = {k: np.full(ys[k].shape, ident[merge[k]], np.int64 if merge[k] == "sum" else ys[k].dtype)
                    for k in merge}
        out = {}
        for k in merge:
            mine = host[k].astype(np.int32) if merge[k] == "sum" else host[k]  # counts < 2**31
            every = np.asarray(multihost_utils.process_allgather(mine))
            merged = every[0].astype(np.int64) if merge[k] == "sum" else every[0]
            for other in every[1:]:
                merged = self.HOST_MERGE[merge[k]](merged, other.astype(np.int64) if merge[k] == "sum" else other)
            out[k] = merged
        if each is not None:
            procs = jax.process_count()
            slots = -(-(-(-n // self.batch)) // procs)
            template = {k: np.zeros(v.shape, v.dtype) for k, v in ys.items() if k not in merge}
            index = np.full(slots, -1, np.int32)
            stacked = {k: np.zeros((slots,) + np.shape(v), np.asarray(v).dtype) for k, v in template.items()}
            for j, (i, p) in enumerate(later):
                index[j] = i
                for k, v in p.items():
                    stacked[k][j] = v
            all_index = np.asarray(multihost_utils.process_allgather(index)).ravel()
            all_stacked = {k: np.asarray(multihost_utils.process_allgather(v)).reshape((-1,) + v.shape[1:])
                           for k, v in stacked.items()}
            for j in np.argsort(np.where(all_index < 0, np.iinfo(np.int32).max, all_index), kind="stable"):
                if all_index[j] >= 0:
                    each({k: v[j] for k, v in all_stacked.items()})
        return out


def save(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write netCDF atomically: a temporary file, then a rename; temporary files of killed
    runs are removed first. A failed write (disk full, read-only) is a RunError naming the
    path and the bytes needed. (`forecast export --csv` writes a tidy table; Zarr is not
    supported.)"""
    path = Path(path)
    if path.suffix != ".nc":
        raise RunError(f"{path}: results are written as netCDF; give a path ending in .nc")
    # Encoded in memory first, then written as plain bytes: a full disk is then an OSError
    # with the exact size needed (inside HDF5 a failed write can crash the process).
    # The sample (whole trajectories) is most of a file's values: stored compressed.
    packed = {v: {"zlib": True, "complevel": 4, "shuffle": True} for v in ds.data_vars if "sample" in ds[v].dims}
    data = ds.to_netcdf(engine="h5netcdf", encoding=packed)
    try:
        with atomic(path) as tmp, open(tmp, "wb") as f:
            f.write(data)
    except OSError as e:
        raise RunError(write_error(path, e, len(data))) from None
    return path
