"""The engine's bands against the independent NumPy reference (benchmarks/reference_numpy.py).

Two independent samples of the same model: at the engine's reported q-quantile v, the
reference's empirical CDF must be within Monte Carlo error of q. The difference of two
empirical CDFs at one point has standard deviation sqrt(q (1 - q) (1/N1 + 1/N2)); with
~11k (month, series, quantile) cells we allow 5.5 of them (a false alarm per cell ~4e-8).
Point masses (exact zeros) are handled by accepting any CDF level in [F(v-), F(v)].
"""
import numpy as np
import pytest

import forecast
from forecast.scenario import with_months
from benchmarks.reference_numpy import simulate
from kernels import OUTPUTS, output_sizes

MONTHS = 24
N_ENGINE = 20_000
N_REF = 10_000


@pytest.mark.slow
def test_reference_bands_agree_with_engine(baseline):
    sc = with_months(baseline, MONTHS)
    ds = forecast.run(sc, n_trajectories=N_ENGINE, seed=11)
    ref = np.sort(simulate(sc, n=N_REF, seed=12, keep=True), axis=1)  # (time, traj, series)
    q = ds["quantile"].values
    tol = 5.5 * np.sqrt(q * (1 - q) * (1 / N_ENGINE + 1 / N_REF)) + 1.0 / N_REF

    offset = 0
    for spec, size in zip(OUTPUTS, output_sizes(len(sc.regions))):
        v = ds[spec.name].values.reshape(len(q), MONTHS, size)
        for j in range(len(q)):
            for t in range(MONTHS):
                col = ref[t, :, offset:offset + size]
                below = np.array([np.searchsorted(col[:, k], v[j, t, k], "left") for k in range(size)]) / N_REF
                upto = np.array([np.searchsorted(col[:, k], v[j, t, k], "right") for k in range(size)]) / N_REF
                ok = (upto + tol[j] >= q[j]) & (below - tol[j] <= q[j])
                assert ok.all(), (spec.name, q[j], t, np.nonzero(~ok)[0], below[~ok], upto[~ok])
        offset += size
