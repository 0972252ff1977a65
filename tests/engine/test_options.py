"""RunOptions: keyword-only, checked into a Plan, every refusal naming the keyword, its
value and what is allowed."""
import pytest

from forecast import RunError, RunOptions
from forecast.engine.options import CHUNK_BATCHES, DEFAULT_QUANTILES, DEFAULT_SAMPLE, run_batch


def test_the_defaults_plan_a_run():
    plan = RunOptions().plan()
    assert plan.n == 10_000 and plan.seed == 0 and plan.quantiles == DEFAULT_QUANTILES
    assert plan.batch == run_batch(10_000) and plan.chunk == plan.batch * CHUNK_BATCHES
    assert plan.sample == DEFAULT_SAMPLE


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        RunOptions(1000)


@pytest.mark.parametrize("options, named", [
    (dict(n_trajectories=0), "n_trajectories must be a whole number >= 1, got 0"),
    (dict(n_trajectories=2.5), "n_trajectories must be a whole number"),
    (dict(seed=-1), "seed must be a whole number in \\[0, 2\\*\\*64\\)"),
    (dict(quantiles=(0.5, 0.2)), "quantiles must be increasing"),
    (dict(quantiles=(0.0, 0.5)), "within \\(0, 1\\)"),
    (dict(sample=-1), "sample must be a whole number >= 0"),
    (dict(output="x.csv"), "x.csv: results are written as netCDF"),
    (dict(n_trajectories=100_000, chunk_size=12_345), "chunk_size must be a multiple of the batch size"),
])
def test_a_bad_option_is_named(options, named):
    with pytest.raises(RunError, match=named):
        RunOptions(**options).plan()


def test_a_small_run_keeps_at_most_its_own_size_whole():
    plan = RunOptions(n_trajectories=50, sample=200).plan()
    assert plan.sample == 50 and plan.batch == run_batch(50)
