"""forecast.engine.checkpoint on its own: what a run saves between blocks comes back bit
for bit, a checkpoint of another run is refused by the field that differs, and a finished
run's file is removed."""
import numpy as np
import pytest

from forecast.engine.checkpoint import Checkpoint, CheckpointError, default_path, for_process
from forecast.engine.lockstep import Phase

HEADER = dict(engine_version="test", scenario=["baseline"], priors=["none"], seed=3, n_trajectories=100,
              quantiles=[0.05, 0.5, 0.95], batch=1024, sample=0, scenario_hash=["abc"])


def test_a_saved_block_comes_back_bit_for_bit(tmp_path):
    rng = np.random.default_rng(0)
    acc = {"values": rng.normal(size=(4, 3, 2)).astype(np.float32), "count": rng.integers(0, 9, (4, 3))}
    state = {"carry0/0": rng.normal(size=(5, 2)).astype(np.float32)}
    ck = Checkpoint(tmp_path / "run.ckpt.npz", HEADER, every=0)
    ck.progress(Phase.LOCKSTEP, 2, acc, state)
    again = Checkpoint(tmp_path / "run.ckpt.npz", HEADER, resume=True)
    t0, saved, carried = again.partial(Phase.LOCKSTEP)
    assert t0 == 2
    for k, v in acc.items():
        assert saved[k].dtype == v.dtype and saved[k].tobytes() == v.tobytes()
    assert carried["carry0/0"].tobytes() == state["carry0/0"].tobytes()
    assert again.partial("another phase") is None


@pytest.mark.parametrize("field, value, named", [("seed", 4, "seed"), ("n_trajectories", 101, "number of trajectories"),
                                                 ("scenario_hash", ["abd"], "scenario contents")])
def test_a_checkpoint_of_another_run_is_refused_by_name(tmp_path, field, value, named):
    path = tmp_path / "run.ckpt.npz"
    Checkpoint(path, HEADER, every=0).progress(Phase.LOCKSTEP, 1, {"count": np.zeros(3, np.int64)})
    with pytest.raises(CheckpointError, match=named):
        Checkpoint(path, dict(HEADER, **{field: value}), resume=True)


def test_nothing_to_resume_is_said_and_a_finished_run_removes_its_file(tmp_path):
    path = tmp_path / "run.ckpt.npz"
    with pytest.raises(CheckpointError, match="nothing to resume"):
        Checkpoint(path, HEADER, resume=True)
    ck = Checkpoint(path, HEADER, every=0)
    ck.progress(Phase.LOCKSTEP, 1, {"count": np.ones(3, np.int64)})
    assert path.exists()
    ck.remove()
    assert not path.exists()


def test_where_checkpoints_live():
    out = default_path("results/baseline.nc")
    assert out.parent.name == "results" and out.name.startswith("baseline.nc")
    assert for_process(out, 0, 1) == out  # one process: the path itself
    assert for_process(out, 1, 3) != for_process(out, 2, 3) != out
