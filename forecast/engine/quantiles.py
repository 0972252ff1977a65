"""Host side of the bands: quantile ranks and batch moments.

Quantile definition: Q(p) = x_(ceil(p N)), the inverted empirical CDF (numpy's
method="inverted_cdf"): every reported value is a simulated value of known rank
(forecast.lockstep reads it exactly). Batch moments are folded in global batch order
(Chan et al.'s parallel update, float64), so they do not depend on devices or processes.
"""
from __future__ import annotations

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
