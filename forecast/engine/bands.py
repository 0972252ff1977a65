"""A run's reduction: `Bands`, every month's exact order statistics, counts, moments and
sample so far (the checkpoint's keys are its fields), and `Block`, one block of months
reduced batch by batch with its merge rule (over batches, then over processes) beside
what it holds. forecast.engine.lockstep drives them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecast.engine.quantiles import Moments, select

COUNTS = ("count", "nonfinite", "positive", "zero", "above_start")  # exact integers, summed
MOMENTS = ("count", "mean", "m2", "scale")
ARRAYS = ("values",) + COUNTS  # the Bands fields a checkpoint keeps under their own names


def process_sum(x: np.ndarray) -> np.ndarray:
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(np.asarray(x))).astype(np.int64).sum(axis=0)


@dataclass
class Bands:
    """A run's reduction, month by month: `values` (months, series, q) float32, the exact
    order statistics; the exact counts (COUNTS, (months, series) int64); `moments`
    (quantiles.Moments); `finite`, the trajectories still finite; `sample` ((months,
    series, k) float32) and `sample_params` ({"param<i>/<name>": array}), the first k
    trajectories whole (None where k is 0). `dump` and `load` name the checkpoint's keys
    after the fields."""

    values: np.ndarray
    count: np.ndarray
    nonfinite: np.ndarray
    positive: np.ndarray
    zero: np.ndarray
    above_start: np.ndarray
    moments: Moments
    sample: np.ndarray | None
    sample_params: dict | None
    finite: int = 0

    @classmethod
    def empty(cls, months: int, n_series: int, n_quantiles: int, sample: int) -> Bands:
        return cls(values=np.full((months, n_series, n_quantiles), np.nan, np.float32),
                   **{k: np.zeros((months, n_series), np.int64) for k in COUNTS}, moments=Moments((months, n_series)),
                   sample=np.full((months, n_series, sample), np.nan, np.float32) if sample else None,
                   sample_params={} if sample else None)

    def dump(self) -> dict:
        """The arrays a checkpoint keeps (the sample's parameters as "sample_param<i>/<name>")."""
        out = {name: getattr(self, name) for name in ARRAYS}
        out.update({f"moments/{k}": v for k, v in self.moments.dump().items()})
        if self.sample is not None:
            out.update(sample=self.sample, **{f"sample_{k}": v for k, v in self.sample_params.items()})
        return out

    def load(self, saved: dict):
        """Continue from a checkpoint's arrays (`dump`'s keys)."""
        for name in ARRAYS:
            setattr(self, name, saved[name])
        self.moments.load({k[len("moments/"):]: v for k, v in saved.items() if k.startswith("moments/")})
        if self.sample is not None:
            self.sample = saved["sample"].astype(np.float32)
            self.sample_params = {k[len("sample_"):]: v for k, v in saved.items() if k.startswith("sample_param")}


class Block:
    """One block of months reduced batch by batch, with its merge rule beside what it
    holds: every trajectory's values of this process (rows, for the exact order
    statistics), the exact counts, each batch's moments and the trajectories still
    finite. `add` takes a batch; `gather` merges the processes (counts and finite summed,
    every batch's moments shared); `into` folds the block into the run's Bands (moments in
    global batch order, order statistics exact over the whole population)."""

    def __init__(self, t0: int, live: int, n_series: int, n_local: int):
        self.t0, self.live, self.n_series = t0, live, n_series
        self.rows = np.empty((live, n_series, n_local), np.float32)
        self.counts = {k: np.zeros((live, n_series), np.int64) for k in COUNTS}
        self.per_batch: list = []
        self.finite = 0

    def add(self, i: int, ys: dict, valid: int, offset: int):
        """Batch i's block outputs (its first `valid` trajectories are real) at column `offset`."""
        live = self.live
        self.rows[:, :, offset:offset + valid] = ys["values"][:live, :, :valid]
        for c in COUNTS:
            self.counts[c] += ys[c][:live]
        self.per_batch.append((i, {m: ys[m][:live] for m in MOMENTS}))
        self.finite += int(ys["finite"])

    def gather(self, n_batches: int, procs: int):
        """Every process's share (a collective: every process calls it)."""
        self.counts = {c: process_sum(v) for c, v in self.counts.items()}
        self.finite = int(process_sum(np.asarray([self.finite]))[0])
        self.per_batch = all_batches(self.per_batch, self.live, self.n_series, n_batches, procs)

    def into(self, bands: Bands, quantiles, gather=None):
        sl = slice(self.t0, self.t0 + self.live)
        for c in COUNTS:
            getattr(bands, c)[sl] = self.counts[c]
        block_moments = Moments((self.live, self.n_series))
        for _, m in sorted(self.per_batch, key=lambda b: b[0]):  # global batch order
            block_moments.add(m)
        for name in ("n", "mean", "m2"):
            getattr(bands.moments, name)[sl] = getattr(block_moments, name)
        cells = self.rows.reshape(self.live * self.n_series, -1)
        bands.values[sl] = select(cells, self.counts["count"].ravel(), quantiles, gather).reshape(
            self.live, self.n_series, -1)
        bands.finite = self.finite


def all_batches(mine: list, live: int, n_series: int, n_batches: int, procs: int) -> list:
    """Every process's per-batch moments, as (batch index, arrays) pairs (a collective)."""
    from jax.experimental import multihost_utils

    slots = -(-n_batches // procs)
    index = np.full(slots, -1, np.int32)
    stacked = {m: np.zeros((slots, live, n_series), np.float32) for m in MOMENTS}
    for j, (i, arrays) in enumerate(mine):
        index[j] = i
        for m in MOMENTS:
            stacked[m][j] = arrays[m]
    every = np.asarray(multihost_utils.process_allgather(index)).ravel()
    gathered = {m: np.asarray(multihost_utils.process_allgather(v)).reshape((-1, live, n_series))
                for m, v in stacked.items()}
    return [(int(i), {m: gathered[m][j] for m in MOMENTS}) for j, i in enumerate(every) if i >= 0]
