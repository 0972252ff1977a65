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
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from forecast.engine.quantiles import Moments, target_ranks
from kernels import advance, start

BLOCK_VALUES = 250_000_000  # values (trajectories x months x series) one block holds: 1 GB of float32
COUNTS = ("count", "nonfinite", "positive", "zero", "above_start")  # exact integers, summed
MOMENTS = ("count", "mean", "m2", "scale")
_COMPILE_LOCK = threading.Lock()


def block_months(n: int, months: int, n_series: int, budget: int = BLOCK_VALUES) -> int:
    """Months per block: the largest divisor of `months` whose block of values
    (n x block x n_series) fits `budget`, and at least 1 (one compiled program a run)."""
    limit = max(1, budget // max(n * n_series, 1))
    return max(d for d in range(1, months + 1) if months % d == 0 and d <= limit)


def sortable_keys(x: np.ndarray) -> np.ndarray:
    """float32 -> int32 keys whose integer order is the values' order (-0.0 below 0.0; the
    kernel's values carry no -0.0). The map is its own inverse on the int32 bits."""
    bits = np.ascontiguousarray(x, np.float32).view(np.int32)
    return bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))


def from_keys(k: np.ndarray) -> np.ndarray:
    k = np.asarray(k, np.int32)
    return (k ^ ((k >> 31) & np.int32(0x7FFFFFFF))).view(np.float32)


def sort_rows(rows: np.ndarray, workers: int = 2, block: int = 64):
    """Sort (cells, n) rows in place along the last axis, NaN last (numpy's vectorised
    quicksort, about 3 ns a value; numpy releases the GIL, so threads share the work)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda i: rows[i:i + block].sort(axis=-1), range(0, rows.shape[0], block)))


def count_at_or_below(rows: np.ndarray, finite: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """Per (cell, j): how many of row cell's first finite[cell] (sorted) values are <= pivot[cell, j]."""
    cells, n = rows.shape
    lo = np.zeros(pivot.shape, np.int64)
    hi = np.broadcast_to(finite[:, None], pivot.shape).astype(np.int64)
    at = np.arange(cells)[:, None] * n
    flat = rows.ravel()
    for _ in range(max(int(n).bit_length(), 1) + 1):
        live = lo < hi
        mid = (lo + hi) // 2
        below = flat[at + np.minimum(mid, n - 1)] <= pivot
        lo = np.where(live & below, mid + 1, lo)
        hi = np.where(live & ~below, mid, hi)
    return lo


def select(rows: np.ndarray, total: np.ndarray, quantiles, gather=None) -> np.ndarray:
    """Exact order statistics Q(q) = x_(ceil(q N)) over the population (numpy's
    method="inverted_cdf"): (cells, q) float32, NaN where a cell has no finite value.

    rows: (cells, n) this process's values, NaN for missing and non-finite ones (sorted
    in place here); total: (cells,) the population's finite values per cell. gather:
    None (one process: rows are the whole population) or a function that sums a
    (cells, q) int64 array over the processes (see the module docstring)."""
    sort_rows(rows)
    total = np.asarray(total, np.int64)
    rank = target_ranks(total.astype(np.float64), quantiles).astype(np.int64)  # 1-based, (cells, q)
    empty = total[:, None] == 0
    if gather is None:
        value = np.take_along_axis(rows, np.minimum(rank - 1, rows.shape[1] - 1), axis=1)
        return np.where(empty, np.nan, value).astype(np.float32)
    finite = np.sum(np.isfinite(rows), axis=1)
    # The smallest key K with (values <= K) >= rank: lo always below it, hi at or above.
    lo = np.full(rank.shape, int(sortable_keys(np.float32([-np.inf]))[0]) - 1, np.int64)
    hi = np.full(rank.shape, int(sortable_keys(np.float32([np.inf]))[0]), np.int64)
    while True:
        open_ = (hi - lo > 1) & ~empty
        if not gather(open_.any(axis=None, keepdims=True).astype(np.int64)).any():
            break
        mid = np.where(open_, lo + (hi - lo) // 2, hi)
        count = gather(count_at_or_below(rows, finite, from_keys(mid.astype(np.int32))))
        enough = count >= rank
        hi = np.where(open_ & enough, mid, hi)
        lo = np.where(open_ & ~enough, mid, lo)
    value = from_keys(hi.astype(np.int32))
    # -0.0's key sits just below 0.0's and counts the zeros (-0.0 <= 0.0): the values hold
    # no -0.0, so it stands for 0.0.
    return np.where(empty, np.nan, np.where(value == 0, np.float32(0), value)).astype(np.float32)


def process_sum(x: np.ndarray) -> np.ndarray:
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(np.asarray(x))).astype(np.int64).sum(axis=0)


class Lockstep:
    """A run's population advanced in lockstep over its months (see the module docstring).

    key, prior, months, n, batch: the run's; devices: the local devices (batch i runs on
    device i mod D, with `workers` batches in flight per device); checkpoint: a
    forecast.engine.checkpoint.Checkpoint (saved between blocks); sample: the run's first
    trajectories kept whole; report(done, total, phase) hears of every batch; check(acc)
    may refuse the run after any block (acc: "finite", trajectories still finite, and
    "nonfinite", (months, series) counts so far); budget: values a block may hold."""

    PHASE = "lockstep"

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
    def run(self) -> dict:
        """Returns "values" (months, series, q) float32, "moments" (quantiles.Moments),
        the exact counts (COUNTS, (months, series) int64), "finite" (trajectories that
        stayed finite), "sample" ((months, series, k) float32 or None) and
        "sample_params" ({"param<i>/<name>": array} or None)."""
        months, s, q = self.months, self.n_series, len(self.q)
        acc = {"values": np.full((months, s, q), np.nan, np.float32),
               **{k: np.zeros((months, s), np.int64) for k in COUNTS}}
        moments = Moments((months, s))
        sample = np.full((months, s, self.sample), np.nan, np.float32) if self.sample else None
        params: dict = {}
        carries: dict = {}
        t0 = 0
        resumed = self.ck.partial(self.PHASE)
        if resumed is not None:
            t0, saved, state = resumed
            acc = {k: saved[k] for k in acc}
            moments.load({k[len("moments/"):]: v for k, v in saved.items() if k.startswith("moments/")})
            if self.sample:
                sample = saved["sample"].astype(np.float32)
                params = {k[len("sample_"):]: v for k, v in saved.items() if k.startswith("sample_param")}
            carries = self._load_carries(state)
        blocks = -(-months // self.block)
        total_units = blocks * len(self.mine)
        self.report(t0 // self.block * len(self.mine), total_units, self.PHASE)
        finite = 0
        while t0 < months:  # the block divides the months
            finite = self._block(t0, self.block, carries, acc, moments, sample, params, total_units)
            t0 += self.block
            if self.check is not None:
                self.check({"finite": finite, "nonfinite": acc["nonfinite"]})
            if t0 < months and self._save_now():  # gathering the carries costs: only when saved
                self.ck.progress(self.PHASE, t0, {**acc, **{f"moments/{k}": v for k, v in moments.dump().items()},
                                                  **({"sample": sample, **{f"sample_{k}": v for k, v in params.items()}}
                                                     if self.sample else {})},
                                 self._dump_carries(carries))
        return {**acc, "moments": moments, "finite": finite, "sample": sample,
                "sample_params": params if self.sample else None}

    def _block(self, t0, live, carries, acc, moments, sample, params, total_units) -> int:
        """Months [t0, t0 + live) of every batch of this process; returns the number of
        trajectories of the whole population still finite."""
        rows = np.empty((live, self.n_series, self.n_local), np.float32)
        n_dev = len(self.devices)
        per_batch: list = []
        counts = {k: np.zeros((live, self.n_series), np.int64) for k in COUNTS}
        finite = 0

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
        workers = self.workers * n_dev
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(call, i) for i in self.mine[:workers]]
            try:
                for k, i in enumerate(self.mine):
                    ys, carries[i] = futures[k].result()
                    futures[k] = None
                    if k + workers < len(self.mine):
                        futures.append(pool.submit(call, self.mine[k + workers]))
                    nv, off = self.valid[i], self.offset[i]
                    rows[:, :, off:off + nv] = ys["values"][:live, :, :nv]
                    for c in COUNTS:
                        counts[c] += ys[c][:live]
                    per_batch.append((i, {m: ys[m][:live] for m in MOMENTS}))
                    finite += int(ys["finite"])
                    if i == 0 and self.sample:
                        sample[t0:t0 + live] = np.moveaxis(ys["head"][:live], 1, 2)
                        if t0 == 0:
                            params.update({key: np.asarray(v) for key, v in ys.items() if key.startswith("param")})
                    self.report(done0 + k + 1, total_units, self.PHASE)
            finally:
                for f in futures:
                    if f is not None:
                        f.cancel()
        gather = None if self.procs == 1 else process_sum
        if gather is not None:
            counts = {c: gather(v) for c, v in counts.items()}
            finite = int(gather(np.asarray([finite]))[0])
            per_batch = self._all_batches(per_batch, live)
            if self.sample:
                self._share_sample(sample, params, t0, live)
        sl = slice(t0, t0 + live)
        for c in COUNTS:
            acc[c][sl] = counts[c]
        block_moments = Moments((live, self.n_series))
        for _, m in sorted(per_batch, key=lambda b: b[0]):  # global batch order
            block_moments.add(m)
        for name in ("n", "mean", "m2"):
            getattr(moments, name)[sl] = getattr(block_moments, name)
        cells = rows.reshape(live * self.n_series, self.n_local)
        acc["values"][sl] = select(cells, counts["count"].ravel(), self.q, gather).reshape(live, self.n_series, -1)
        return finite

    # ------------------------------------------------------------------ processes
    def _all_batches(self, mine: list, live: int) -> list:
        """Every process's per-batch moments, as (batch index, arrays) pairs."""
        from jax.experimental import multihost_utils

        slots = -(-self.n_batches // self.procs)
        index = np.full(slots, -1, np.int32)
        stacked = {m: np.zeros((slots, live, self.n_series), np.float32) for m in MOMENTS}
        for j, (i, arrays) in enumerate(mine):
            index[j] = i
            for m in MOMENTS:
                stacked[m][j] = arrays[m]
        every = np.asarray(multihost_utils.process_allgather(index)).ravel()
        gathered = {m: np.asarray(multihost_utils.process_allgather(v)).reshape((-1, live, self.n_series))
                    for m, v in stacked.items()}
        return [(int(i), {m: gathered[m][j] for m in MOMENTS}) for j, i in enumerate(every) if i >= 0]

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
