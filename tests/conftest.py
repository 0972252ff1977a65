import os

# Four CPU devices: one per NUTS chain (calibration tests); must be set before JAX starts.
# (The test of device-count independence runs eight in a process of its own.)
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from forecast import scenario as sc_mod  # noqa: E402
from forecast.run import run_batch  # noqa: E402
from kernels import OUTPUTS, output_sizes, run_chunk  # noqa: E402

os.environ.setdefault("FORECAST_CACHE_DIR", "off")  # the CLI tests write no compilation cache


def materialize(scenario, n=512, seed=0, start=0, run_n=None):
    """(time, trajectory, series) outputs of trajectories [start, start + n), computed by
    the same compiled program (one batch shape) that forecast.run of run_n (default:
    start + n) trajectories uses."""
    batch = run_batch(run_n or start + n)
    parts = []
    for s in range(start, start + n, batch):
        ys, _ = run_chunk(jax.random.key(seed), scenario.prior, s, min(batch, start + n - s),
                          batch_size=batch, n_months=scenario.months, reducer="materialize")
        parts.append(np.asarray(ys)[:, :min(batch, start + n - s)])
    return np.concatenate(parts, axis=1)


def series(scenario, x, name):
    """Slice one output variable out of materialised (time, trajectory, series) values."""
    block = x[..., columns(scenario, name)]
    dims = {"region": len(scenario.regions), "tier": 3, "class": 3}
    spec = next(o for o in OUTPUTS if o.name == name)
    if "," in spec.dims:  # several dims: one axis each (a single dim stays one axis)
        return block.reshape(block.shape[:-1] + tuple(dims[d] for d in spec.dims.split(",")))
    return block


def columns(scenario, name):
    """The slice of one output variable's series in a month's flattened outputs."""
    off = 0
    for spec, size in zip(OUTPUTS, output_sizes(len(scenario.regions))):
        if spec.name == name:
            return slice(off, off + size)
        off += size
    raise KeyError(name)


@pytest.fixture(scope="session")
def baseline():
    """The baseline with its hand-set priors (the mechanism and reference tests' subject)."""
    return sc_mod.load("baseline", calibration="none")


@pytest.fixture(autouse=True, scope="module")
def _fresh_compilation_caches():
    """Drop the compiled programs after each test module: a long test process that keeps
    every module's executables aborted inside XLA's compiler late in the suite (CI and
    here, twice), and no module needs another's programs."""
    yield
    jax.clear_caches()
    import gc

    gc.collect()
