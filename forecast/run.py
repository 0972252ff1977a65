"""Run a scenario: chunks of trajectories through the kernel, two counting passes, bands out.

    pilot  : the first min(N, 1024) trajectories fix each series' bin range
    pass A : every trajectory; coarse histograms, block moments, extremes, non-finite counts
    pass B : every trajectory again (same keys, same values); the bins holding the target
             quantiles, split finer
The pilot depends only on (seed, N), counts are integers and moments are folded in global
block order, so the result is bit-identical for any chunk size (a multiple of BLOCK).
"""
from __future__ import annotations

import math
import os
import time
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
from kernels import output_sizes, run_chunk
from kernels.reduce import TINY
from kernels.simulate import log_scale_mask

DEFAULT_QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
BLOCK = 256  # trajectories per moment block: chunk sizes are multiples of it
PILOT = 1024  # trajectories that fix the histogram ranges
N_BINS = 1024  # pass-A bins per series and month
N_SUB = 128  # pass-B sub-bins per target bin
MAX_CHUNK = 131_072
BYTES_PER_TRAJECTORY_MONTH = 16_000  # measured working set of one trajectory in a month step


class RunError(ValueError):
    """A run request that cannot be carried out (bad sizes, too many non-finite values)."""


@dataclass
class Progress:
    """Called as progress(done_units, total_units, phase) during a run."""

    callback: Callable[[int, int, str], None] | None = None

    def __call__(self, done, total, phase):
        if self.callback is not None:
            self.callback(done, total, phase)


def default_chunk_size(n_trajectories: int, n_months: int) -> int:
    """The largest multiple of BLOCK that fits a quarter of the free memory (and MAX_CHUNK)."""
    free = _free_bytes()
    fit = int(free * 0.25 / BYTES_PER_TRAJECTORY_MONTH) if free else MAX_CHUNK
    chunk = min(MAX_CHUNK, max(BLOCK, fit), _round_up(n_trajectories, BLOCK))
    return max(BLOCK, chunk // BLOCK * BLOCK)


def _free_bytes() -> int | None:
    try:
        stats = jax.local_devices()[0].memory_stats()
        if stats and "bytes_limit" in stats:
            return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    except Exception:  # noqa: BLE001 - CPU backends have no memory stats
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


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

    scenario: a Scenario, a built-in name or a TOML path. chunk_size: trajectories per
    kernel call (a multiple of 256; default from free memory). Returns an xarray.Dataset
    with quantile bands, means and standard deviations for every output (see docs/).
    """
    sc = scenario if isinstance(scenario, Scenario) else load(scenario)
    n = _check_int("n_trajectories", n_trajectories, 1)
    seed = _check_int("seed", seed, 0)
    if n >= 2**31:
        raise RunError(f"n_trajectories must be below 2**31, got {n}")
    q = tuple(float(x) for x in quantiles)
    if not q or any(not 0.0 < x < 1.0 for x in q) or list(q) != sorted(set(q)):
        raise RunError(f"quantiles must be increasing, distinct and within (0, 1), got {quantiles!r}")
    if chunk_size is None:
        chunk = default_chunk_size(n, sc.months)
    else:
        chunk = _check_int("chunk_size", chunk_size, BLOCK)
        if chunk % BLOCK:
            raise RunError(f"chunk_size must be a multiple of {BLOCK}, got {chunk}")
    report = Progress(progress)
    t_start = time.perf_counter()
    key = jax.random.key(seed)
    n_regions = len(sc.regions)
    n_series = sum(output_sizes(n_regions))
    months = sc.months
    log_scale = np.asarray(log_scale_mask(n_regions))
    starts = list(range(0, n, chunk))
    total_units = 2 * len(starts) + 1

    # Pilot: fixed trajectories [0, min(N, PILOT)) set the bin ranges.
    dummy = (jnp.zeros((months, n_series), jnp.float32), jnp.ones((months, n_series), jnp.float32))
    ys, _ = run_chunk(key, sc.prior, 0, min(n, PILOT), dummy, chunk_size=PILOT, n_months=months,
                      reducer="pass_a", config=(N_BINS, BLOCK))
    lo, inv_w = qmod.coarse_ranges(np.asarray(ys["ymin"]), np.asarray(ys["ymax"]), N_BINS)
    report(1, total_units, "pilot")

    hist = np.zeros((months, n_series, N_BINS + 2), np.int64)
    moments = qmod.Moments((months, n_series))
    ymin = np.full((months, n_series), np.inf)
    ymax = np.full((months, n_series), -np.inf)
    xmin = np.full((months, n_series), np.inf, np.float32)
    xmax = np.full((months, n_series), -np.inf, np.float32)
    nonfinite = np.zeros((months, n_series), np.int64)
    bad_trajectories = 0
    consts_a = (jnp.asarray(lo), jnp.asarray(inv_w))
    for i, start in enumerate(starts):
        ys, finite = run_chunk(key, sc.prior, start, min(chunk, n - start), consts_a, chunk_size=chunk,
                               n_months=months, reducer="pass_a", config=(N_BINS, BLOCK))
        ys = jax.device_get(ys)
        hist += ys["hist"].reshape(months, n_series, N_BINS + 2)
        moments.add_blocks(ys["count"], ys["mean"], ys["m2"], ys["scale"])
        ymin = np.minimum(ymin, ys["ymin"])
        ymax = np.maximum(ymax, ys["ymax"])
        xmin = np.minimum(xmin, ys["xmin"])
        xmax = np.maximum(xmax, ys["xmax"])
        nonfinite += ys["nonfinite"]
        bad_trajectories += int(min(chunk, n - start) - np.asarray(finite).sum())
        report(2 + i, total_units, "pass A")

    if bad_trajectories > max_nonfinite_fraction * n:
        raise RunError(
            f"{bad_trajectories} of {n} trajectories produced non-finite values (more than the allowed "
            f"fraction {max_nonfinite_fraction:g}); check the scenario's priors for extreme values"
        )

    total = hist.sum(axis=2)
    rank = qmod.target_ranks(total, q)
    everything = np.ones(rank.shape, bool)
    plan = qmod.plan(hist[:, :, None, :], np.zeros(rank.shape), rank, lo[..., None], inv_w[..., None],
                     N_BINS, ymin[..., None], ymax[..., None], N_SUB, everything)
    shape = rank.shape
    eq_b = (np.broadcast_to(xmin[..., None], shape), np.broadcast_to(xmax[..., None], shape))
    counts, bin_min, bin_max, n_lo, n_hi = _refine_pass(key, sc, plan, eq_b, starts, chunk, n, q, report,
                                                        "pass B", 2 + len(starts), total_units)
    values, rank_error, done = qmod.resolve(plan, counts, bin_min, bin_max, total, q, log_scale, min_run=2,
                                            eq=eq_b + (n_lo, n_hi))
    if not done.all():
        # Tied values straddle a boundary: refine the unresolved sub-bins once more (pass C).
        y_min = np.where(log_scale[None, :, None], np.log(np.maximum(bin_min, TINY)), bin_min)
        y_max = np.where(log_scale[None, :, None], np.log(np.maximum(bin_max, TINY)), bin_max)
        plan_c = qmod.plan(counts, plan["below"], rank, plan["sub_lo"], plan["sub_inv"], N_SUB,
                           y_min, y_max, N_SUB, ~done)
        total_units += len(starts)
        eq_c = (bin_min, bin_max)
        counts_c, min_c, max_c, n_lo_c, n_hi_c = _refine_pass(key, sc, plan_c, eq_c, starts, chunk, n, q, report,
                                                              "pass C", 2 + 2 * len(starts), total_units)
        eq_c = qmod.by_slot(plan_c, counts_c, *eq_c)[1:]
        values_c, error_c, _ = qmod.resolve(plan_c, counts_c, min_c, max_c, total, q, log_scale,
                                            eq=eq_c + (n_lo_c, n_hi_c))
        values = np.where(done, values, values_c)
        rank_error = np.where(done, rank_error, error_c)
    return build_dataset(
        sc, values=values, rank_error=rank_error, mean=moments.mean, std=moments.std, quantiles=q,
        nonfinite=nonfinite, info=dict(
            seed=seed, n_trajectories=n, chunk_size=chunk, bad_trajectories=bad_trajectories,
            wall_seconds=time.perf_counter() - t_start,
        ),
    )


def _refine_pass(key, sc, plan, eq, starts, chunk, n, q, report, phase, unit0, total_units):
    """One refine pass over every chunk: merged sub-bin counts and extremes, by slot."""
    months = sc.months
    n_series = plan["target"].shape[1]
    counts = np.zeros((months, n_series, len(q), N_SUB + 2), np.int64)
    bin_min = np.full((months, n_series, len(q)), np.inf, np.float32)
    bin_max = np.full((months, n_series, len(q)), -np.inf, np.float32)
    n_lo = np.zeros((months, n_series, len(q)), np.int64)
    n_hi = np.zeros((months, n_series, len(q)), np.int64)
    n_layout = np.full((months,), plan["n_layout"], np.float32)
    consts = tuple(jnp.asarray(a) for a in (plan["layout_lo"], plan["layout_inv"], n_layout,
                                            plan["target"], plan["sub_lo"], plan["sub_inv"]))
    consts += tuple(jnp.asarray(np.asarray(a, np.float32)) for a in eq)
    for i, start in enumerate(starts):
        ys, _ = run_chunk(key, sc.prior, start, min(chunk, n - start), consts, chunk_size=chunk,
                          n_months=months, reducer="refine", config=(N_SUB,))
        ys = jax.device_get(ys)
        counts += ys["counts"].reshape(months, n_series, len(q), N_SUB + 2)
        bin_min = np.minimum(bin_min, ys["bin_min"])
        bin_max = np.maximum(bin_max, ys["bin_max"])
        n_lo += ys["n_eq_lo"]
        n_hi += ys["n_eq_hi"]
        report(unit0 + i, total_units, phase)
    return qmod.by_slot(plan, counts, bin_min, bin_max, n_lo, n_hi)


def save(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write netCDF (or Zarr for a .zarr path) atomically: a temporary file, then a rename."""
    path = Path(path)
    if path.suffix == ".zarr":
        raise RunError("Zarr output needs the zarr package; install it or write .nc")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        ds.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
