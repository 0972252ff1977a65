"""Host side of the band accumulators: chunk merges and exact-count quantile resolution.

The kernel's reducers (kernels/reduce.py) count values into bins; here counts from every
chunk are summed (integers: exact, order-free), block moments are folded in global block
order (Chan et al.'s parallel update, float64), and each quantile is read off the counts.

Quantile definition: Q(p) = x_(ceil(p N)), the inverted empirical CDF (numpy's
method="inverted_cdf"). A reported value v for quantile q is accepted when it lies between
Q(q - eps) and Q(q + eps) (eps = 1e-4): for a bin boundary with C values below it, that
holds when ceil((q - eps) N) <= C <= ceil((q + eps) N) - 1, and a value clipped to the
extremes of the bin it bounds keeps the property. Where no boundary qualifies because
values are tied, a bin whose min equals its max *is* the quantile. The achieved rank error
of every reported quantile is known exactly and returned alongside it.
"""
from __future__ import annotations

import numpy as np

EPS = 1e-4


class Moments:
    """Running count, mean and M2 per (time, series), merged block by block in order."""

    def __init__(self, shape):
        self.n = np.zeros(shape)
        self.mean = np.zeros(shape)
        self.m2 = np.zeros(shape)

    def add_blocks(self, count, mean, m2_scaled, scale):
        """count, mean, m2_scaled, scale: (time, block, series) from one chunk, in block order."""
        count, mean = np.asarray(count, np.float64), np.asarray(mean, np.float64)
        m2 = np.asarray(m2_scaled, np.float64) * np.asarray(scale, np.float64) ** 2
        for b in range(count.shape[1]):
            nb, mb, m2b = count[:, b], mean[:, b], m2[:, b]
            n = self.n + nb
            safe = np.where(n > 0, n, 1.0)
            delta = mb - self.mean
            self.mean = np.where(n > 0, self.mean + delta * nb / safe, self.mean)
            self.m2 = self.m2 + m2b + delta**2 * self.n * nb / safe
            self.n = n

    @property
    def std(self):
        return np.sqrt(self.m2 / np.maximum(self.n - 1, 1))


def coarse_ranges(ymin, ymax, n_bins):
    """Pass-A bin layout per (time, series) from the pilot's extremes: (lo, inv_w)."""
    ok = np.isfinite(ymin) & np.isfinite(ymax)
    lo = np.where(ok, ymin, 0.0)
    span = np.where(ok, ymax - ymin, 0.0)
    inv_w = np.where(span > 0, n_bins / np.where(span > 0, span, 1.0), 1.0)
    return lo.astype(np.float32), inv_w.astype(np.float32)


def target_ranks(total, quantiles):
    """1-based rank of each quantile: ceil(q N), at least 1."""
    q = np.asarray(quantiles)
    return np.maximum(np.ceil(q[None, None, :] * total[..., None] - 1e-9), 1)


def plan(counts, below_base, rank, layout_lo, layout_inv, n_layout, vmin, vmax, n_sub, active):
    """Choose, per (time, series, quantile), the bin holding the target rank, and split it.

    counts: (time, series, q or 1, n_layout + 2) counts in a layout indexed like
    kernels.reduce.coarse_index; below_base: values below the whole layout; layout_lo,
    layout_inv: the layout (broadcastable to (time, series, q)); vmin, vmax: extremes of the
    values in the layout, in y space (for the under- and overflow bins); active: which
    quantiles still need this pass. Quantiles sharing a bin read the first one's slot.
    """
    shape = rank.shape
    cum = below_base[..., None] + np.cumsum(counts, axis=-1)
    target = np.argmax(cum >= rank[..., None], axis=-1)
    below = np.where(target > 0, np.take_along_axis(np.broadcast_to(cum, shape + cum.shape[-1:]),
                                                   np.maximum(target - 1, 0)[..., None], -1)[..., 0], below_base)
    lo = np.broadcast_to(np.asarray(layout_lo, np.float64), shape)
    inv = np.broadcast_to(np.asarray(layout_inv, np.float64), shape)
    vmin = np.broadcast_to(vmin, shape)
    vmax = np.broadcast_to(vmax, shape)
    over_lo = lo + n_layout / inv
    sub_lo = np.where(target == 0, vmin, np.where(target == n_layout + 1, over_lo, lo + (target - 1) / inv))
    span = np.where(target == 0, lo - vmin, np.where(target == n_layout + 1, vmax - over_lo, 1.0 / inv))
    span = np.where(np.isfinite(span) & (span > 0), span, 1.0)
    sub_lo = np.where(np.isfinite(sub_lo), sub_lo, 0.0)
    n_q = shape[-1]
    slot = np.broadcast_to(np.arange(n_q), shape).copy()
    for i in range(1, n_q):
        for j in range(i):
            same = (target[..., i] == target[..., j]) & (lo[..., i] == lo[..., j]) & (inv[..., i] == inv[..., j])
            slot[..., i] = np.where(same & (slot[..., i] == i) & active[..., j], j, slot[..., i])
    target = np.where((slot == np.arange(n_q)) & active, target, -1)
    return dict(
        layout_lo=lo.astype(np.float32), layout_inv=inv.astype(np.float32), n_layout=np.float32(n_layout),
        target=target.astype(np.int32), slot=slot, below=below, rank=rank,
        sub_lo=sub_lo.astype(np.float32), sub_inv=(n_sub / span).astype(np.float32),
    )


def by_slot(plan, counts, *per_slot):
    """Each quantile's counts and per-slot arrays, read from the slot that holds its bin."""
    slot = plan["slot"]
    return (np.take_along_axis(counts, slot[..., None], 2),) + tuple(
        np.take_along_axis(a, slot, 2) for a in per_slot)


def resolve(plan, counts, bin_min, bin_max, total, quantiles, log_scale, eps=EPS, min_run=1,
            eq=None):
    """Quantile values, achieved rank errors (fractions of N) and a resolved mask.

    counts: (time, series, quantile, n_sub + 2) by slot; bin_min, bin_max: extremes (x
    space) of the values in each target bin; total: (time, series) finite values.
    min_run: the fewest qualifying boundaries accepted (2 asks for a boundary with room on
    both sides; the pass that follows refines the rest). eq: (eq_lo, eq_hi, n_eq_lo,
    n_eq_hi), values whose exact repeats in the bin were counted: a target rank inside such
    a point mass is that value exactly.
    """
    q = np.asarray(quantiles)[None, None, :]
    n = np.maximum(total[..., None].astype(np.float64), 1.0)
    n_sub = counts.shape[-1] - 2
    below = plan["below"].astype(np.float64)
    c = below[..., None] + np.concatenate([np.zeros(counts.shape[:-1] + (1,)), np.cumsum(counts, -1)], -1)
    k = np.arange(n_sub + 3)
    edge_y = plan["sub_lo"][..., None].astype(np.float64) + (k - 1) / plan["sub_inv"][..., None].astype(np.float64)
    bmin, bmax = bin_min.astype(np.float64)[..., None], bin_max.astype(np.float64)[..., None]
    with np.errstate(over="ignore"):
        edge = np.clip(np.where(log_scale[None, :, None, None], np.exp(edge_y), edge_y), bmin, bmax)
    lo_ok = np.ceil((q - eps) * n - 1e-9)[..., None]
    hi_ok = (np.ceil((q + eps) * n - 1e-9) - 1)[..., None]
    ok = (c >= lo_ok) & (c <= hi_ok)
    distance = np.abs(c - (q * n)[..., None])
    # Qualifying boundaries form a run (C grows with k); its middle keeps away from the
    # data values on either side, which float32 rounding of log can blur by ~1e-7.
    run_len = ok.sum(-1)
    best = np.argmax(ok, -1) + run_len // 2
    nearest = np.argmin(distance, -1)
    found = run_len >= min_run
    tied = bin_min == bin_max
    pick = np.where(found, best, nearest)[..., None]
    value = np.where(tied & ~found, bin_min, np.take_along_axis(edge, pick, -1)[..., 0])
    error = np.take_along_axis(distance, pick, -1)[..., 0] / n
    error = np.where(tied & ~found, 0.0, error)
    resolved = found | tied
    if eq is not None:
        eq_lo, eq_hi, n_lo, n_hi = eq
        r = plan["rank"]
        in_bin = c[..., -1]
        at_lo = (n_lo > 0) & (eq_lo == bin_min) & (r > below) & (r <= below + n_lo)
        at_hi = (n_hi > 0) & (eq_hi == bin_max) & (r > in_bin - n_hi) & (r <= in_bin)
        point = (at_lo | at_hi) & ~found
        value = np.where(point, np.where(at_lo, eq_lo, eq_hi), value)
        error = np.where(point, 0.0, error)
        resolved = resolved | point
    empty = total[..., None] == 0
    return np.where(empty, np.nan, value), np.where(empty, 0.0, error), resolved | empty
