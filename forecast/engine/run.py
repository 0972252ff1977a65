"""Run a scenario: its whole population through the kernel in lockstep, bands out.

Every batch of trajectories advances through a block of months, then the next block
(forecast.engine.lockstep), so all values of a block's months exist at once: the host reads
exact order statistics (rank error 0), exact counts and moments from them, and drops them.
Memory: the trajectories' carried parameters and state (about 2.3 kB each) plus one block
of values (at most BLOCK_VALUES). The run's first `sample` trajectories (DEFAULT_SAMPLE)
are also kept whole, every output at every month, with their parameters (kernels.advance's
`sample`): the sample that distribution views (forecast.present.plots.distribution) draw on.
Every kernel call simulates one batch of a fixed size per backend (BATCH), so one compiled
program produces every value of a run, whatever its size or block length: results are
bit-identical for any chunk size and block length. Batches are spread over the local
devices (batch i on device i mod D); counts are integers, order statistics are unique,
and moments are folded in global batch order, so results do not depend on the number of
devices or processes either. Checkpoints between blocks (forecast.engine.checkpoint): a killed run
resumes with the same result.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import jax
import numpy as np
import xarray as xr

from forecast.engine.checkpoint import CheckpointError, for_run
from forecast.engine.options import (BLOCK_ENV, WORKERS, Plan, Progress, RunError, RunOptions, check_int,
                                     env_int)
from forecast.engine.files import atomic, write_error
from forecast.engine.bands import Bands, process_sum
from forecast.engine.lockstep import BLOCK_VALUES, Lockstep, Phase
from forecast.engine.dataset import build_dataset, engine_version
from forecast.scenario import Scenario, load
from kernels.keys import seed_key
from kernels.simulate import n_series as series_count


def run(scenario: Scenario | str | os.PathLike = "baseline", **options) -> xr.Dataset:
    """Simulate a scenario's trajectories and return its bands.

    scenario: a Scenario, a built-in name or a TOML path. options: RunOptions's keywords
    (n_trajectories, seed, quantiles, progress, devices, checkpoint, resume, output,
    sample, ...; RunOptions says what each means and its default). Returns an
    xarray.Dataset with quantile bands, means, standard deviations and probabilities for
    every output (see docs/model.md).
    """
    sc = scenario if isinstance(scenario, Scenario) else load(scenario)
    return _run([sc], RunOptions(**options))


def compare(scenarios, **options) -> xr.Dataset:
    """Run several scenarios on the same trajectories (common random numbers) in one pass.

    Every trajectory uses the same parameter normals, posterior row, events and monthly
    shocks in every scenario, so differences are paired. Returns the usual variables with a
    `scenario` dimension, plus for each scenario after the first (dimension `compared`)
    the bands of the paired difference against the first (`<name>_diff`: the log ratio
    for log-scale outputs, the difference otherwise) and `<name>_p_higher`,
    `<name>_p_equal`: the exact fractions of trajectories where it is higher or equal.
    options: RunOptions's keywords, as for run() (the sample holds each scenario's outputs,
    paired; not the differences).
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
    return _run(scs, RunOptions(**options))


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


def _run(scs, opts: RunOptions) -> xr.Dataset:
    """The scenarios (one, or several paired) through the lockstep engine, their Dataset
    written to opts.output (if any) before the checkpoint is removed."""
    plan = opts.plan()
    used = local_devices(opts.devices)
    t_start = time.perf_counter()
    prior = scs[0].prior if len(scs) == 1 else stack_priors(scs)
    ck = _checkpoint(scs, opts, plan)
    out, step = _lockstep(scs, prior, opts, plan, used, ck)
    ds = _dataset(scs, out, plan, dict(
        seed=plan.seed, n_trajectories=plan.n, chunk_size=plan.chunk, batch_size=plan.batch,
        bad_trajectories=plan.n - out.finite, wall_seconds=time.perf_counter() - t_start, devices=len(used),
        resumed=bool(opts.resume), passes=[f"lockstep ({step.block}-month blocks)"]))
    failed = None
    if opts.output is not None:
        try:
            save(ds, opts.output)  # first the output, atomically; a failure keeps the checkpoint for --resume
        except RunError as e:
            failed = e
    if ck.agree(failed is None):  # every process keeps its checkpoint until the output is written
        ck.remove()
    if failed is not None:
        raise failed
    return ds


def _checkpoint(scs, opts: RunOptions, plan: Plan):
    """The run's checkpoint (forecast.engine.checkpoint.for_run): over several processes
    each its own file, and all agree on where to resume."""
    header = dict(engine_version=engine_version(), scenario=[s.name for s in scs],
                  priors=[s.priors_source for s in scs], seed=plan.seed, n_trajectories=plan.n,
                  quantiles=list(plan.quantiles), batch=plan.batch, sample=plan.sample,
                  scenario_hash=[s.hash for s in scs])
    try:
        return for_run(opts.checkpoint, header, opts.checkpoint_every, opts.resume, Lockstep.PHASE,
                       jax.process_index(), jax.process_count(), process_sum)
    except CheckpointError as e:
        raise RunError(str(e)) from None


def _lockstep(scs, prior, opts: RunOptions, plan: Plan, used, ck):
    """(the Bands, the Lockstep) of the whole population; a run whose
    non-finite trajectories exceed opts.max_nonfinite_fraction is refused after the block
    where they do."""
    sc, n = scs[0], plan.n
    report = Progress(opts.progress)
    n_series = series_count(len(sc.regions), len(scs))
    budget = env_int(BLOCK_ENV, BLOCK_VALUES, 1)

    def check(acc):
        bad = n - int(acc["finite"])
        if bad > opts.max_nonfinite_fraction * n:
            ck.remove()  # resuming would only be refused again: the values are a function of the seed
            raise RunError(f"{bad} of {n} trajectories produced non-finite values (more than the allowed fraction "
                           f"{opts.max_nonfinite_fraction:g}){where_nonfinite(acc['nonfinite'], sc, len(scs))}; "
                           "check the scenario's priors for extreme values")

    step = Lockstep(seed_key(plan.seed), prior, sc.months, n, plan.batch, n_series, plan.quantiles, used, ck,
                    plan.sample, report, check, WORKERS, budget)
    _check_memory(step.memory_needed(), used, n)
    out = step.run()
    total_units = -(-sc.months // step.block) * len(step.mine)
    report(total_units, total_units, Phase.DONE)
    return out, step


def _dataset(scs, out: Bands, plan: Plan, info: dict) -> xr.Dataset:
    """The lockstep's Bands as the labelled Dataset (forecast.engine.dataset)."""
    count = np.maximum(out.count, 1)
    sample = None if not plan.sample else dict(values=out.sample, params=[
        {name.split("/", 1)[1]: v for name, v in out.sample_params.items() if name.startswith(f"param{i}/")}
        for i in range(len(scs))])
    return build_dataset(
        scs, values=out.values, rank_error=np.zeros(out.values.shape), mean=out.moments.mean, std=out.moments.std,
        quantiles=plan.quantiles, nonfinite=out.nonfinite,
        probabilities={k: getattr(out, k) / count for k in ("positive", "zero", "above_start")},
        info=info, sample=sample)


def available_memory() -> dict:
    """Bytes free now: "host" (MemAvailable of /proc/meminfo) and "device" (the first
    device's bytes_limit less bytes_in_use, accelerators only); None where unknown."""
    host = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    host = int(line.split()[1]) * 1024
    except OSError:
        pass
    device = None
    if jax.default_backend() != "cpu":
        stats = jax.local_devices()[0].memory_stats() or {}
        if "bytes_limit" in stats:
            device = stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    return {"host": host, "device": device}


def _check_memory(need: dict, devices, n: int):
    """Refuse, before any work, a run whose carries and block of values cannot fit: every
    trajectory's state is held at once (forecast.engine.lockstep)."""
    free = available_memory()
    on_host = need["host"] + (need["carries"] if free["device"] is None else 0)
    gb = lambda b: f"{b / 1e9:.1f} GB"  # noqa: E731
    fix = ("run fewer trajectories, or spread them over several processes or hosts (README, \"Long runs\"), "
           "each of which holds its share")
    if free["host"] is not None and on_host > free["host"]:
        raise RunError(f"{n} trajectories need about {gb(on_host)} of memory on this host (each trajectory's "
                       f"parameters and state, {gb(need['carries'])}, and one block of values), and "
                       f"{gb(free['host'])} is available; {fix}")
    if free["device"] is not None and need["carries"] / len(devices) > free["device"]:
        raise RunError(f"{n} trajectories need about {gb(need['carries'] / len(devices))} of memory on each device "
                       f"(their parameters and state), and {gb(free['device'])} is free; {fix}")


def where_nonfinite(counts, sc, n_scen) -> str:
    """Where the first non-finite values appeared: month and outputs."""
    from forecast.scenario.calendar import month_label
    from kernels import SeriesLayout

    counts = np.asarray(counts).reshape(sc.months, -1)
    months = np.flatnonzero(counts.sum(axis=1))
    if not months.size:
        return ""
    t = int(months[0])
    names = SeriesLayout(len(sc.regions), n_scen).names
    hit = sorted({names[i] for i in np.flatnonzero(counts[t])})
    when = month_label(sc.start, t)
    return f", first in {when} (month {t + 1} of {sc.months}) in {', '.join(hit)}"


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
    k = check_int("devices", devices, 1)
    if k > len(found):
        raise RunError(f"devices: {k} requested but this machine has {len(found)} "
                       f"{jax.default_backend()} device(s)")
    return found[:k]


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
