"""Host side of the band accumulators: batch merges and exact-count quantile resolution.

The kernel's reducers (kernels/reduce.py) count values into bins; here counts from every
batch are summed (integers: exact, order-free), extremes are min/max-ed (exact), batch
moments are folded in global batch order (Chan et al.'s parallel update, float64), and
each quantile is read off the counts.

Quantile definition: Q(p) = x_(ceil(p N)), the inverted empirical CDF (numpy's
method="inverted_cdf"). Every reported value is a simulated value whose rank is known: the
min (rank C + 1) or max (rank C') of the sub-bin holding the target rank r = ceil(q N),
where C and C' count the values up to and including the sub-bin. It is accepted when its
rank lies in [ceil((q - eps) N), ceil((q + eps) N)] (eps = 1e-4), which puts it between
Q(q - eps) and Q(q + eps); a sub-bin whose min equals its max is a point mass and gives
the exact quantile. Otherwise the sub-bin is refined once more (pass C); what still cannot
be resolved is reported with its achieved rank error, |rank - r| / N.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from kernels.reduce import TINY

EPS = 1e-4


def exact(rows, total, quantiles, workers=2, block=256):
    """Exact order statistics Q(q) = x_(ceil(q n)) of kept values: (values, errors).

    rows: (time, series, N) float32, missing and non-finite values as NaN (they order after
    every number); total: (time, series) count of the other values. Partitions rows in
    place, block by block on `workers` threads (numpy releases the GIL). Errors are 0;
    a cell with no values gives NaN.
    """
    t_n, s_n, n = rows.shape
    flat = rows.reshape(t_n * s_n, n)
    counts = np.asarray(total, np.int64).ravel()
    rank = target_ranks(counts.astype(np.float64), quantiles).astype(np.int64) - 1  # (cells, q)
    out = np.full(rank.shape, np.nan, np.float32)

    def one(i):
        sl = slice(i, min(i + block, flat.shape[0]))
        part, r, c = flat[sl], rank[sl], counts[sl]
        for m in np.unique(c[c > 0]):  # cells of one count share their ranks (nearly always all)
            kth = np.unique(r[c == m])
            if (c == m).all():
                part.partition(kth, axis=-1)  # in place
                out[sl] = np.take_along_axis(part, r, axis=-1)
            else:
                idx = np.flatnonzero(c == m)
                sel = np.partition(part[idx], kth, axis=-1)
                out[sl][idx] = np.take_along_axis(sel, r[idx], axis=-1)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, range(0, flat.shape[0], block)))
    return out.reshape(t_n, s_n, -1), np.zeros((t_n, s_n, rank.shape[1]))


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


def central_ranges(hist, lo, inv_w, quantiles, n_bins, margin=0.25):
    """Pass-A layout over the pilot's central quantiles, widened by `margin` on each side.

    hist: (time, series, n_bins + 2) pilot counts over the (lo, inv_w) layout. The range
    runs from quantile min(q)/2 to 1 - (1 - max(q))/2 of the pilot values off the first and
    last bins (where point masses such as exact zeros sit; pass B counts those exactly) and
    under/overflow, so the target quantiles sit well inside it while
    tails fall into the under- and overflow bins. Quantile levels count every pilot value.
    """
    q = np.asarray(quantiles, np.float64)
    n_all = hist.sum(axis=-1)
    n_low = hist[..., :2].sum(axis=-1)
    hist = hist.copy()
    hist[..., :2] = 0
    hist[..., -2:] = 0
    total = hist.sum(axis=-1)
    cum = np.cumsum(hist, axis=-1)
    p = np.array([q.min() / 2, 1 - (1 - q.max()) / 2])
    # Ranks among all pilot values, counted from the first value off the first bin.
    rank = np.clip(_rank(n_all, p) - n_low[..., None], 1, np.maximum(total, 1)[..., None])
    idx = np.argmax(cum[:, :, None, :] >= rank[..., None], axis=-1)  # (time, series, 2)
    edge = lo[..., None].astype(np.float64) + (idx + np.array([-1, 0])) / inv_w[..., None]
    a, b = edge[..., 0], edge[..., 1]
    pad = margin * (b - a)
    a, b = a - pad, b + pad
    ok = (total > 0) & np.isfinite(a) & np.isfinite(b) & (b > a)
    lo_new = np.where(ok, a, lo)
    inv_new = np.where(ok, n_bins / np.where(ok, b - a, 1.0), inv_w)
    return lo_new.astype(np.float32), inv_new.astype(np.float32)


def target_ranks(total, quantiles):
    """1-based rank of each quantile, ceil(q N) clipped to [1, N]: (time, series, q)."""
    return _rank(total, np.asarray(quantiles, np.float64))


def to_y(x, log_scale):
    """Host copy of kernels.reduce.transform (float64): log for log-scale series.

    log_scale broadcasts against x's trailing axes from the series axis on. Layouts built
    from it need not match the kernel's float32 log to the last bit: values just outside a
    layout fall into its under- or overflow bin and are still counted exactly.
    """
    x = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(log_scale, np.log(np.maximum(x, TINY)), x)


def _rank(total, p):
    n = total[..., None].astype(np.float64)
    return np.clip(np.ceil(p * n - 1e-9), 1, np.maximum(n, 1))


def _slots(key):
    """Per (..., q): index of the first quantile with the same key (quantiles sharing a bin)."""
    n_q = key.shape[-1]
    slot = np.broadcast_to(np.arange(n_q), key.shape).copy()
    for i in range(n_q - 1, 0, -1):
        for j in range(i - 1, -1, -1):
            slot[..., i] = np.where(key[..., i] == key[..., j], j, slot[..., i])
    return slot


def _split(lo, span, n_sub):
    """A slot's n_sub equal sub-bins over [lo, lo + span) in y space: (sub_lo, sub_inv)."""
    span = np.where(np.isfinite(span) & (span > 0), span, 1.0)
    return np.where(np.isfinite(lo), lo, 0.0).astype(np.float32), (n_sub / span).astype(np.float32)


LEVELS = 2  # refine levels the kernel's refine reducer can index: pass B, then pass C


class Plan(NamedTuple):
    """What a refine sweep counts, and how to read it (all (time, series, q) but consts)."""

    consts: tuple  # the refine reducer's arrays: 7 for one level (pass B), 12 for two (C)
    slot: np.ndarray  # the slot whose sub-bins hold each quantile's target rank
    below: np.ndarray  # values below that slot (counted by earlier passes)
    rank: np.ndarray  # the target rank, ceil(q N)

    @property
    def level(self) -> int:
        return 1 if len(self.consts) == 7 else 2


class Reading(NamedTuple):
    """A refine sweep's counts read against its plan (all (time, series, q))."""

    value: np.ndarray  # the reported simulated value (NaN where the target was not found)
    error: np.ndarray  # its achieved rank error, a fraction of N (an upper bound)
    resolved: np.ndarray  # within eps of the target rank, or a point mass
    index: np.ndarray  # the sub-bin holding the target rank...
    before: np.ndarray  # ...the values before it...
    sub_min: np.ndarray  # ...and its min and max: what a narrower plan splits
    sub_max: np.ndarray


def plan_b(hist, rank, lo, inv_w, ymin, ymax, xmin, xmax, n_sub) -> Plan:
    """The first refine level (pass B): the pass-A bin holding each target rank, split into
    n_sub sub-bins.

    hist: (time, series, n_bins + 2) counts; rank: (time, series, q); lo, inv_w, ymin, ymax
    (y space) and xmin, xmax (values): (time, series).
    """
    t_n, s_n, width = hist.shape
    n_bins = width - 2
    n_q = rank.shape[-1]
    cum = np.cumsum(hist, axis=-1)
    target = np.argmax(cum[:, :, None, :] >= rank[..., None], axis=-1)  # (t, s, q)
    below = np.take_along_axis(cum, target, -1) - np.take_along_axis(hist, target, -1)
    lo64, inv64 = lo.astype(np.float64)[..., None], inv_w.astype(np.float64)[..., None]
    over_lo = lo64 + n_bins / inv64
    ymin, ymax = ymin[..., None], ymax[..., None]
    b_lo = np.where(target == 0, ymin, np.where(target == n_bins + 1, over_lo, lo64 + (target - 1) / inv64))
    span = np.where(target == 0, lo64 - ymin, np.where(target == n_bins + 1, ymax - over_lo, 1.0 / inv64))
    b_lo, b_inv = _split(b_lo, span, n_sub)
    slot = _slots(target)
    table = np.full((t_n, s_n, width), -1, np.int32)
    ti, si, qi = np.nonzero(slot == np.arange(n_q))
    table[ti, si, target[ti, si, qi]] = qi
    eq_lo = np.broadcast_to(xmin[..., None], rank.shape).astype(np.float32)
    eq_hi = np.broadcast_to(xmax[..., None], rank.shape).astype(np.float32)
    consts = (lo, inv_w, table, b_lo, b_inv, eq_lo, eq_hi)
    return Plan(consts, slot, below, rank)


def narrow(plan: Plan, res: Reading, unresolved, log_scale, n_sub) -> Plan:
    """The next level (pass C): split the sub-bin holding each unresolved target rank once
    more. Only a first-level plan can be narrowed (the kernel indexes two levels).

    res: the reading of `plan`'s sweep; unresolved: (time, series, q) mask. The first level
    keeps the plan's consts, so each chosen sub-bin holds the values it held before; its
    new layout spans [sub-bin min, sub-bin max] in y space with those two values as point
    masses.
    """
    if plan.level != 1:
        raise ValueError(f"only a first-level plan can be narrowed (the kernel indexes {LEVELS} levels)")
    t_n, s_n, n_q = unresolved.shape
    key = np.where(unresolved, plan.slot * (n_sub + 4) + res.index, -1 - np.arange(n_q))
    slot = _slots(key)
    table2 = np.full((t_n, s_n, n_q, n_sub + 4), -1, np.int32)
    ti, si, qi = np.nonzero((slot == np.arange(n_q)) & unresolved)
    table2[ti, si, plan.slot[ti, si, qi], res.index[ti, si, qi]] = qi
    mn, mx = res.sub_min, res.sub_max
    y_mn, y_mx = to_y(mn, log_scale[:, None]), to_y(mx, log_scale[:, None])
    with np.errstate(invalid="ignore"):
        c_lo, c_inv = _split(y_mn, y_mx - y_mn, n_sub)
    consts = plan.consts + (table2, c_lo, c_inv, mn.astype(np.float32), mx.astype(np.float32))
    return Plan(consts, slot, res.before, plan.rank)


def by_slot(plan: Plan, *arrays):
    """Each quantile's (time, series, q, ...) arrays, read from the slot that holds its bin."""
    slot = plan.slot
    return tuple(np.take_along_axis(a, slot.reshape(slot.shape + (1,) * (a.ndim - 3)), 2) for a in arrays)


def resolve(plan: Plan, counts, sub_min, sub_max, total, quantiles, eps=EPS) -> Reading:
    """Read a refine sweep: quantile values, achieved rank errors (fractions of N), whether
    each is resolved, and what a narrower plan needs.

    counts, sub_min, sub_max: (time, series, slot, width) from a refine pass; total:
    (time, series) finite values.
    """
    counts, sub_min, sub_max = by_slot(plan, counts, sub_min, sub_max)
    q = np.asarray(quantiles, np.float64)
    n = np.maximum(total[..., None].astype(np.float64), 1.0)
    r = plan.rank
    cum = plan.below[..., None] + np.cumsum(counts, axis=-1)
    inside = cum >= r[..., None]
    index = np.argmax(inside, axis=-1)
    found = inside[..., -1]
    take = lambda a: np.take_along_axis(a, index[..., None], -1)[..., 0]  # noqa: E731
    after = take(cum)
    before = after - take(counts)
    mn, mx = take(sub_min).astype(np.float64), take(sub_max).astype(np.float64)
    r_lo = _rank(total, q - eps)
    r_hi = _rank(total, q + eps)
    rank_min, rank_max = before + 1, after
    tied = mn == mx
    ok_min = rank_min >= r_lo
    ok_max = rank_max <= r_hi
    d_min, d_max = r - rank_min, rank_max - r
    use_max = (ok_max & ~ok_min) | ((ok_max == ok_min) & (d_max < d_min))
    value = np.where(tied | ~use_max, mn, mx)
    error = np.where(tied, 0.0, np.where(use_max, d_max, d_min)) / n
    resolved = found & (tied | ok_min | ok_max)
    empty = total[..., None] == 0
    return Reading(
        value=np.where(empty | ~found, np.nan, value),
        error=np.where(empty, 0.0, np.where(found, error, 1.0)),
        resolved=resolved | empty,
        index=index, before=before, sub_min=mn, sub_max=mx,
    )
