"""What a run is asked to do: `RunOptions` (run() and compare()'s keywords), checked into a
`Plan` (the sizes a run uses), the backend's batch size, and RunError for a request that
cannot be carried out."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from kernels.keys import SEED_LIMIT

DEFAULT_QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
# Trajectories per kernel call, per backend: large enough to fill the device, small enough
# for its memory (a trajectory-month's working set is ~16 kB). Fixed, because a different
# shape is a different compiled program, which may round differently in the last bit.
BATCH = {"cpu": 8192, "gpu": 262_144, "cuda": 262_144, "rocm": 262_144, "tpu": 262_144}
BATCH_ENV = "FORECAST_BATCH"  # override (changes results in the last bit; recorded in attrs)
SMALL_STEP = 1024  # a small run's batch is a multiple of this (one compiled program per size)
BLOCK_ENV = "FORECAST_BLOCK_VALUES"  # override of forecast.engine.lockstep.BLOCK_VALUES (tests: several blocks)
# Whole trajectories a run keeps by default (`sample`): about 100 kB each for one scenario
# over 120 months (212 series, float32), and about 70 kB of file (random values compress little).
DEFAULT_SAMPLE = 200
CHUNK_BATCHES = 4  # default chunk_size, in batches (kept for the interface; nothing depends on it)
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


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """How a run is carried out: run() and compare()'s keywords. `plan()` checks them and
    gives the sizes a run uses.

    n_trajectories: trajectories to simulate. seed: a whole number in [0, 2**64), every
    bit used. chunk_size: a multiple of the backend's batch size (`batch_size()`: 8192 on
    CPU, 262144 on GPU), checked and recorded; since runs advance in lockstep nothing
    depends on it. quantiles: the bands' quantiles, increasing, in (0, 1). progress:
    called as progress(done, total, phase). max_nonfinite_fraction: the share of
    trajectories that may turn non-finite (left out of the bands) before the run is
    refused; a refused run removes its checkpoint. devices: use the first `devices` local
    devices (default: all accelerators, or one CPU; results do not depend on it).
    checkpoint: a file where the run's state (every trajectory's carry, the bands so far)
    is saved between blocks of months, at most every `checkpoint_every` seconds (a run of
    one block, and a shorter run, writes none: see README, "Long runs"); resume: continue
    from it (refused if it belongs to another run). A resumed run gives the same bits as
    an uninterrupted one. output: a netCDF path the result is written to (atomically)
    before the checkpoint is removed, so that a kill at any moment leaves the output or the
    checkpoint; without it the checkpoint is removed when the run returns. sample: keep
    the first `sample` trajectories whole (every output at every month, as
    `<output>_sample`, and their parameters, as `param_<name>`, on a `sample` dimension);
    at most the batch size, 0 for none. Each costs about 100 kB of memory and 70 kB of
    file (little compresses) for one scenario over 120 months; the bands do not depend on
    it."""

    n_trajectories: int = 10_000
    seed: int = 0
    chunk_size: int | None = None
    quantiles: tuple = DEFAULT_QUANTILES
    progress: Callable[[int, int, str], None] | None = None
    max_nonfinite_fraction: float = 1e-3
    devices: int | None = None
    checkpoint: str | os.PathLike | None = None
    resume: bool = False
    checkpoint_every: float = 60.0
    output: str | os.PathLike | None = None
    sample: int = DEFAULT_SAMPLE

    def plan(self) -> Plan:
        """The checked sizes (a RunError names the keyword, its value and what is allowed)."""
        n = check_int("n_trajectories", self.n_trajectories, 1)
        seed = check_seed(self.seed)
        if self.output is not None and Path(self.output).suffix != ".nc":
            raise RunError(f"{self.output}: results are written as netCDF; give a path ending in .nc")
        if n >= 2**31:
            raise RunError(f"n_trajectories must be below 2**31, got {n}")
        q = tuple(float(x) for x in self.quantiles)
        if not q or any(not 0.0 < x < 1.0 for x in q) or list(q) != sorted(set(q)):
            raise RunError(f"quantiles must be increasing, distinct and within (0, 1), got {self.quantiles!r}")
        batch = run_batch(n)
        k = min(check_int("sample", self.sample, 0), n)
        if k > batch:
            raise RunError(f"sample must be at most the batch size of this run ({batch} on "
                           f"{jax.default_backend()}), got {self.sample}")
        if self.chunk_size is None:
            chunk = batch * CHUNK_BATCHES
        else:
            chunk = check_int("chunk_size", self.chunk_size, batch)
            if chunk % batch:
                raise RunError(f"chunk_size must be a multiple of the batch size {batch} of this run ({n} "
                               f"trajectories on {jax.default_backend()}), got {chunk}")
        return Plan(n=n, seed=seed, quantiles=q, batch=batch, sample=k, chunk=chunk)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """A run's checked sizes: trajectories, seed, band quantiles, trajectories per kernel
    call, whole trajectories kept, and the (recorded) chunk size."""

    n: int
    seed: int
    quantiles: tuple[float, ...]
    batch: int
    sample: int
    chunk: int


def env_int(name: str, default: int, minimum: int) -> int:
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
    return env_int(BATCH_ENV, BATCH.get(jax.default_backend(), BATCH["cpu"]), 1)


def run_batch(n: int) -> int:
    """Trajectories per kernel call for a run of n: the backend's batch, or for a run of
    fewer than WORKERS batches, n / WORKERS rounded up to a multiple of SMALL_STEP (so a
    quick look simulates at most SMALL_STEP - 1 trajectories per call more than asked).
    Depends on n and the backend only, never on devices or chunks: one program per run."""
    full = batch_size()
    if os.environ.get(BATCH_ENV) or n >= WORKERS * full:
        return full
    return min(full, SMALL_STEP * -(-(-(-n // WORKERS)) // SMALL_STEP))


def check_int(name, value, minimum):
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
