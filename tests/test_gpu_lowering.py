"""The kernel lowers for CUDA on a CPU-only machine: no op without a GPU lowering, and no
host round trip (callback) inside the month loop. Compiles nothing, needs no GPU."""
import jax
import jax.numpy as jnp

from forecast.scenario import with_months
from kernels import output_sizes, run_chunk


def test_run_chunk_lowers_for_cuda(baseline):
    sc = with_months(baseline, 3)
    n_series = sum(output_sizes(len(sc.regions)))
    consts = (jnp.zeros((sc.months, n_series)), jnp.ones((sc.months, n_series)))
    traced = run_chunk.trace(jax.random.key(0), sc.prior, 0, 64, consts, batch_size=64, n_months=sc.months,
                             reducer="pass_a", config=(16,))
    lowered = traced.lower(lowering_platforms=("cuda",))
    text = lowered.as_text()
    assert "stablehlo.while" in text or "scan" in text  # the month loop is on the device
    assert "custom_call @xla_python" not in text and "callback" not in text.lower()


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
