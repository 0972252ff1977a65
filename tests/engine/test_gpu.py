"""The GPU path, run where a GPU is present (the device check of benchmarks/README.md) and
skipped elsewhere: the same trajectories on the GPU and on the CPU of one process. The
random numbers are the same bits on both (threefry), so the values differ by floating-point
rounding only (other fused operations and transcendental implementations), and a band
differs by at most a few order statistics."""
import jax
import numpy as np
import pytest

import forecast
from conftest import materialize
from forecast.scenario import with_months
from kernels import OUTPUTS, output_sizes


def _gpus():
    try:
        return jax.devices("gpu")
    except RuntimeError:
        return []


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _gpus(), reason="no GPU on this machine")]


def _on_cpu(fn):
    with jax.default_device(jax.devices("cpu")[0]):
        return fn()


def test_gpu_values_are_the_cpu_values_up_to_rounding(baseline):
    """Elementwise over 4096 trajectories x 24 months x every series: at least 99.9% agree
    to 1e-3 relative (a threshold event, e.g. a moratorium's trigger, may flip where a value
    sits within rounding of it, and then its trajectory's later months differ)."""
    sc = with_months(baseline, 24)
    gpu = materialize(sc, 4096)
    cpu = _on_cpu(lambda: materialize(sc, 4096))
    assert gpu.shape == cpu.shape
    close = np.isclose(gpu, cpu, rtol=1e-3, atol=1e-6) | (np.isnan(gpu) & np.isnan(cpu))
    assert close.mean() > 0.999, close.mean()


def test_gpu_bands_are_the_cpu_values_quantiles_within_monte_carlo_error(baseline):
    """forecast.run on the GPU (its lockstep reducer and batch size): every reported q-band
    v of every series and month is a q-quantile of the CPU's values up to 5 Monte Carlo sd
    (sqrt(q (1 - q) / n)) plus one order statistic: the CPU's share below v is at most q,
    and its share at or below v at least q (ties: point masses such as zero)."""
    sc = with_months(baseline, 12)
    n = 8192
    ds = forecast.run(sc, n_trajectories=n, seed=3)
    cpu = _on_cpu(lambda: materialize(sc, n, seed=3))  # (time, trajectory, series)
    q = ds["quantile"].values
    tol = (5 * np.sqrt(q * (1 - q) / n) + 1.0 / n)[:, None, None]
    off = 0
    for spec, size in zip(OUTPUTS, output_sizes(len(sc.regions))):
        v = ds[spec.name].values.reshape(len(q), sc.months, 1, size)  # (quantile, time, 1, series)
        x = cpu[None, :, :, off:off + size]
        off += size
        below, at_or_below = (x < v).mean(axis=2), (x <= v).mean(axis=2)  # (quantile, time, series)
        ok = (below <= q[:, None, None] + tol) & (at_or_below >= q[:, None, None] - tol)
        assert np.all(ok | ~np.isfinite(v[:, :, 0])), spec.name
