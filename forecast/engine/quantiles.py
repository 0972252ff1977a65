"""Host side of the bands: exact order statistics, quantile ranks and batch moments.

Quantile definition: Q(p) = x_(ceil(p N)), the inverted empirical CDF (numpy's
method="inverted_cdf"): every reported value is a simulated value of known rank
(forecast.engine.lockstep reads it exactly). Batch moments are folded in global batch order
(Chan et al.'s parallel update, float64), so they do not depend on devices or processes.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np


class Moments:
    """Running count, mean and M2 per (time, series), merged batch by batch in order."""

    def __init__(self, shape):
        self.n = np.zeros(shape)
        self.mean = np.zeros(shape)
        self.m2 = np.zeros(shape)

    def add(self, ys):
        """One batch's pass-A outputs: (time, series) count, mean, m2 (M2 / scale^2), scale."""
        nb, mb = np.asarray(ys["count"], np.float64), np.asarray(ys["mean"], np.float64)
        m2b = np.asarray(ys["m2"], np.float64) * np.asarray(ys["scale"], np.float64) ** 2
        n = self.n + nb
        safe = np.where(n > 0, n, 1.0)
        delta = mb - self.mean
        self.mean = np.where(n > 0, self.mean + delta * nb / safe, self.mean)
        self.m2 = self.m2 + m2b + delta**2 * self.n * nb / safe
        self.n = n

    def dump(self) -> dict:
        """The running state, for a checkpoint."""
        return {"n": self.n, "mean": self.mean, "m2": self.m2}

    def load(self, saved: dict):
        self.n, self.mean, self.m2 = (np.asarray(saved[k], np.float64) for k in ("n", "mean", "m2"))

    @property
    def std(self):
        return np.sqrt(self.m2 / np.maximum(self.n - 1, 1))


def target_ranks(total, quantiles):
    """1-based rank of each quantile, ceil(q N) clipped to [1, N]: (time, series, q)."""
    return _rank(total, np.asarray(quantiles, np.float64))


def _rank(total, p):
    n = total[..., None].astype(np.float64)
    return np.clip(np.ceil(p * n - 1e-9), 1, np.maximum(n, 1))


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
