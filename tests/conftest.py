import jax
import numpy as np
import pytest

from forecast import scenario as sc_mod
from kernels import OUTPUTS, output_sizes, run_chunk

CHUNK = 512


def materialize(scenario, n=CHUNK, seed=0):
    """(time, trajectory, series) outputs of the first n trajectories, all in one chunk."""
    ys, _ = run_chunk(jax.random.key(seed), scenario.prior, 0, n, (), chunk_size=CHUNK,
                      n_months=scenario.months, reducer="materialize")
    return np.asarray(ys)[:, :n]


def series(scenario, x, name):
    """Slice one output variable out of materialised (time, trajectory, series) values."""
    off = 0
    for spec, size in zip(OUTPUTS, output_sizes(len(scenario.regions))):
        if spec.name == name:
            block = x[..., off:off + size]
            if spec.dims == "region,tier":
                return block.reshape(block.shape[:-1] + (len(scenario.regions), 3))
            return block
        off += size
    raise KeyError(name)


@pytest.fixture(scope="session")
def baseline():
    return sc_mod.load("baseline")
