import os
import shutil
import tempfile

# Four CPU devices: one per NUTS chain (calibration tests); must be set before JAX starts.
# (The test of device-count independence runs eight in a process of its own.)
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from forecast import scenario as sc_mod  # noqa: E402
from forecast.engine.options import run_batch  # noqa: E402
from kernels import SeriesLayout, run_chunk  # noqa: E402

os.environ.setdefault("FORECAST_CACHE_DIR", "off")  # the CLI tests write no cache of their own

# One persistent compilation cache for the session, removed at its end: compiling a
# scenario's program takes ~20-30 s on 2 cores and loading it ~1 s, and many modules run the
# same programs (the baseline's shapes at the same batch and horizon). Each module still
# drops its in-memory programs (below); a cached program is the same executable, so no
# result depends on whether it was compiled or loaded.
# Under pytest-xdist (`-n 2`, the fast tier's way to use both cores) the workers inherit
# the controller's folder through the environment, so they share it too, and the
# controller removes it.
CACHE_ENV = "FORECAST_TESTS_XLA_CACHE"
SESSION_CACHE = os.environ.get(CACHE_ENV) or tempfile.mkdtemp(prefix="forecast-tests-xla-")
os.environ[CACHE_ENV] = SESSION_CACHE
jax.config.update("jax_compilation_cache_dir", SESSION_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def pytest_sessionfinish(session, exitstatus):
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # a plain run, or xdist's controller
        shutil.rmtree(SESSION_CACHE, ignore_errors=True)


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
    """Slice one output variable out of materialised (time, trajectory, series) values, one
    axis per dim (kernels.SeriesLayout); a scalar output keeps its one series axis."""
    layout = SeriesLayout(len(scenario.regions))
    return x[..., layout.slice(name)].reshape(x.shape[:-1] + (layout.shape(name) or (1,)))


def columns(scenario, name):
    """The slice of one output variable's series in a month's flattened outputs."""
    return SeriesLayout(len(scenario.regions)).slice(name)


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
