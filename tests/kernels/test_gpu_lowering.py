"""The kernel lowers for CUDA on a CPU-only machine: no op without a GPU lowering, and no
host round trip (callback) inside the month loop. Compiles nothing, needs no GPU."""
import jax
import jax.numpy as jnp

from forecast.scenario import with_months
from kernels import advance, start


def test_the_lockstep_programs_lower_for_cuda(baseline):
    """start (parameters and initial state) and advance (a block of months with the
    lockstep reducer and a sample), the two programs of every run."""
    sc = with_months(baseline, 3)
    key = jax.random.key(0)
    begin = start.trace(key, sc.prior, 0, batch_size=64).lower(lowering_platforms=("cuda",)).as_text()
    carry = jax.eval_shape(lambda: start(key, sc.prior, 0, batch_size=64))
    traced = advance.trace(key, sc.prior, 0, 64, carry, 0, sc.months, batch_size=64, n_months=sc.months,
                           reducer="lockstep", sample=4)
    text = traced.lower(lowering_platforms=("cuda",)).as_text()
    assert "stablehlo.while" in text  # the month loop is on the device
    for t in (begin, text):
        assert "custom_call @xla_python" not in t and "callback" not in t.lower()


def test_run_paths_lowers_for_cuda(baseline):
    """The sensitivity design's kernel (explicit inputs, selected series kept)."""
    from kernels import n_entries, run_paths

    sc = with_months(baseline, 3)
    n = 64
    z = jnp.zeros((n, n_entries(sc.prior)))
    rows = jnp.zeros((n, n_entries(sc.prior)), jnp.int32)
    noise = jnp.zeros((n, 2), jnp.int32)
    lowered = run_paths.trace(jax.random.key(0), sc.prior, z, rows, noise, n_months=sc.months,
                              select=(0, 5, 40)).lower(lowering_platforms=("cuda",))
    text = lowered.as_text()
    assert "stablehlo.while" in text
    assert "custom_call @xla_python" not in text and "callback" not in text.lower()
