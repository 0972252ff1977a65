"""Bands in one pass: the whole population advances month by month, in lockstep.

Every batch of trajectories goes through a block of months (kernels.advance), then the
next block, each batch carrying its parameters and state (kernels.Carry) from one block
to the next. So all trajectories' values for a block's months exist at once: the host
sorts each (month, series) and reads exact order statistics (rank error 0), sums exact
counts (P(>0), P(== 0), P(widening), non-finite values), folds the batches' moments in
global batch order, and drops the values before the next block.

Memory: the carries (about 2.3 kB a trajectory for one scenario: 226 parameters, 62 state
values and one month's 212 first-month values, float32), plus one block of values
(trajectories x block months x series, float32) and its sort. A block's months are the
largest divisor of the run's months whose values fit BLOCK_VALUES (1 GB), at least one
month: 1e6 trajectories of the baseline over 120 months hold 2.3 GB of carries and
0.85 GB of values (one month a block).

Several processes (jax.distributed): batch i is process i mod P's, as in every sweep.
Each process sorts its own values; an order statistic of the whole population is found
by bisection on the values' sortable 32-bit keys: every round, each process counts its
values at or below the candidate (a binary search in its sorted rows) and the counts are
summed across processes (an all-gather of (cells, quantiles) integers), 33 rounds a
block. The result is the unique value of that rank: bit-identical to one process. Each
process checkpoints its own carries (forecast.engine.checkpoint.for_process), all at the same blocks.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from enum import StrEnum
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from forecast.engine.bands import Bands, Block, process_sum
from kernels import advance, start

BLOCK_VALUES = 250_000_000  # values (trajectories x months x series) one block holds: 1 GB of float32
_COMPILE_LOCK = threading.Lock()


class Phase(StrEnum):
    """A run's phases: what the progress callback is told, and the checkpoint's key."""

    LOCKSTEP = "lockstep"
    DONE = "done"


def block_months(n: int, months: int, n_series: int, budget: int = BLOCK_VALUES) -> int:
    """Months per block: the largest divisor of `months` whose block of values
    (n x block x n_series) fits `budget`, and at least 1 (one compiled program a run)."""
    limit = max(1, budget // max(n * n_series, 1))
    return max(d for d in range(1, months + 1) if months % d == 0 and d <= limit)


class Lockstep:
    """A run's population advanced in lockstep over its months (see the module docstring).

    key, prior, months, n, batch: the run's; devices: the local devices (batch i runs on
    device i mod D, with `workers` batches in flight per device); checkpoint: a
    forecast.engine.checkpoint.Checkpoint (saved between blocks); sample: the run's first
    trajectories kept whole; report(done, total, phase) hears of every batch; check(acc)
    may refuse the run after any block (acc: "finite", trajectories still finite, and
    "nonfinite", (months, series) counts so far); budget: values a block may hold."""

    PHASE = Phase.LOCKSTEP

    def __init__(self, key, prior, months, n, batch, n_series, quantiles, devices, checkpoint, sample=0,
                 report=None, check=None, workers=2, budget=BLOCK_VALUES):
        self.key, self.prior, self.months, self.n, self.batch = key, prior, months, n, batch
        self.n_series, self.q = n_series, tuple(quantiles)
        self.devices, self.ck, self.sample, self.workers = devices, checkpoint, sample, workers
        self.report = report or (lambda done, total, phase: None)
        self.check = check
        self.block = block_months(n, months, n_series, budget)
        self.procs, self.me = jax.process_count(), jax.process_index()
        n_batches = -(-n // batch)
        self.mine = [i for i in range(n_batches) if i % self.procs == self.me]
        self.valid = {i: min(batch, n - i * batch) for i in self.mine}
        offsets = np.cumsum([0] + [self.valid[i] for i in self.mine])
        self.offset = dict(zip(self.mine, offsets[:-1].tolist()))
        self.n_local = int(offsets[-1])
        self.n_batches = n_batches
        self._compiled: set = set()  # devices whose first call (compilation) is done

    # ------------------------------------------------------------------ memory
    @cached_property
    def carry_shape(self):
        """A batch's Carry as jax.ShapeDtypeStruct leaves (traced once, never compiled)."""
        return jax.eval_shape(lambda: start(self.key, self.prior, 0, batch_size=self.batch))

    def carry_bytes(self) -> int:
        """Bytes of one trajectory's Carry (parameters, state, first-month values)."""
        return sum(int(np.prod(a.shape)) * a.dtype.itemsize for a in jax.tree.leaves(self.carry_shape)) // self.batch

    def memory_needed(self) -> dict:
        """This process's estimate, in bytes: "carries" (on the devices: its batches'
        Carry, padding included) and "host" (one block of values, as float32, plus each
        batch's block outputs in flight)."""
        carries = len(self.mine) * self.batch * self.carry_bytes()
        block = self.block * self.n_series * 4
        return {"carries": carries,
                "host": block * (self.n_local + self.workers * len(self.devices) * self.batch)}

    # ------------------------------------------------------------------ the run
    def run(self) -> Bands:
        """Every month's Bands of the whole population (a checkpoint saved between blocks
        when due; a resumed run continues from the checkpoint's block)."""
        bands = Bands.empty(self.months, self.n_series, len(self.q), self.sample)
        carries: dict = {}
        t0 = 0
        resumed = self.ck.partial(self.PHASE)
        if resumed is not None:
            t0, saved, state = resumed
            bands.load(saved)
            carries = self._load_carries(state)
        total_units = -(-self.months // self.block) * len(self.mine)
        self.report(t0 // self.block * len(self.mine), total_units, self.PHASE)
        while t0 < self.months:  # the block divides the months
            self._block(t0, self.block, carries, bands, total_units)
            t0 += self.block
            if self.check is not None:
                self.check({"finite": bands.finite, "nonfinite": bands.nonfinite})
            if t0 < self.months and self._save_now():  # gathering the carries costs: only when saved
                self.ck.progress(self.PHASE, t0, bands.dump(), self._dump_carries(carries))
        return bands

    def _block(self, t0, live, carries, bands: Bands, total_units):
        """Months [t0, t0 + live) of every batch of this process, reduced into `bands`."""
        block = Block(t0, live, self.n_series, self.n_local)
        n_dev = len(self.devices)

        def call(i):
            d = i % n_dev
            if d in self._compiled:
                return one(i, d)
            # Each device compiles its own executables, one device at a time, and a device's
            # other worker threads wait rather than compile the same program beside it
            # (concurrent first calls on eight CPU devices crashed XLA in CI).
            with _COMPILE_LOCK:
                out = one(i, d)
                self._compiled.add(d)
                return out

        def one(i, d):
            with jax.default_device(self.devices[d]):
                carry = carries.get(i)
                if carry is None:
                    carry = start(self.key, self.prior, i * self.batch, batch_size=self.batch)
                ys, carry, ok = advance(self.key, self.prior, i * self.batch, self.valid[i], carry, t0, live,
                                        batch_size=self.batch, n_months=self.block, reducer="lockstep",
                                        sample=self.sample)
                return jax.device_get(dict(ys, finite=jnp.sum(ok))), carry

        done0 = t0 // self.block * len(self.mine)
        with closing(self._in_order(call)) as batches:  # closed: the batches in flight are cancelled
            for k, i, ys in batches:
                carries[i] = ys.pop("carry")
                block.add(i, ys, self.valid[i], self.offset[i])
                if i == 0 and self.sample:
                    bands.sample[t0:t0 + live] = np.moveaxis(ys["head"][:live], 1, 2)
                    if t0 == 0:
                        bands.sample_params.update({key: np.asarray(v) for key, v in ys.items()
                                                    if key.startswith("param")})
                self.report(done0 + k + 1, total_units, self.PHASE)
        gather = None if self.procs == 1 else process_sum
        if gather is not None:
            block.gather(self.n_batches, self.procs)
            if self.sample:
                self._share_sample(bands.sample, bands.sample_params, t0, live)
        block.into(bands, self.q, gather)

    def _in_order(self, call):
        """(k, batch index, its outputs with its new carry under "carry") for this process's
        batches in order, `workers` per device in flight on a thread pool."""
        workers = self.workers * len(self.devices)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(call, i) for i in self.mine[:workers]]
            try:
                for k, i in enumerate(self.mine):
                    ys, carry = futures[k].result()
                    futures[k] = None
                    if k + workers < len(self.mine):
                        futures.append(pool.submit(call, self.mine[k + workers]))
                    yield k, i, dict(ys, carry=carry)
            finally:
                for f in futures:
                    if f is not None:
                        f.cancel()

    # ------------------------------------------------------------------ processes
    def _share_sample(self, sample, params, t0, live):
        """Process 0 holds batch 0, the sample: every process gets it."""
        from jax.experimental import multihost_utils

        part = sample[t0:t0 + live] if self.me == 0 else np.zeros_like(sample[t0:t0 + live])
        sample[t0:t0 + live] = np.asarray(multihost_utils.process_allgather(part))[0]
        if t0 == 0:  # kernels.advance's "param<i>/<name>": the first `sample` rows of the Carry's parameters
            ps = self.carry_shape.params  # one Params, or a tuple of them (paired scenarios)
            scenarios = (ps,) if hasattr(ps, "_asdict") else ps
            for i, ps in enumerate(scenarios):
                for name, s in ps._asdict().items():
                    key = f"param{i}/{name}"
                    mine = params.get(key, np.zeros((self.sample,) + s.shape[1:], s.dtype))
                    params[key] = np.asarray(multihost_utils.process_allgather(np.asarray(mine)))[0]

    # ------------------------------------------------------------------ checkpoints
    def _save_now(self) -> bool:
        """Whether to save after this block: the checkpoint is due on every process (each
        saves its own file; Checkpoint.agree is the collective, all call it or none)."""
        return self.ck.path is not None and self.ck.agree(self.ck.due())

    def _dump_carries(self, carries) -> dict:
        out = {}
        for i, carry in carries.items():
            for j, leaf in enumerate(jax.tree.leaves(jax.device_get(carry))):
                out[f"carry{i}/{j}"] = np.asarray(leaf)
        return out

    def _load_carries(self, state: dict) -> dict:
        treedef, leaves = jax.tree.structure(self.carry_shape), jax.tree.leaves(self.carry_shape)
        n_dev = len(self.devices)
        return {i: jax.device_put(jax.tree.unflatten(treedef, [np.asarray(state[f"carry{i}/{j}"]).astype(s.dtype)
                                                                for j, s in enumerate(leaves)]),
                                  self.devices[i % n_dev])
                for i in self.mine}
