"""Bands: closed form, exactness against materialised runs, chunk invariance, recompiles."""
import numpy as np
import pytest
from scipy import stats

import forecast
from forecast.engine.options import run_batch
from forecast.scenario import with_months, with_params
from kernels import OUTPUTS, SPECS, TRACE_COUNT
from tests.conftest import materialize, series


def trajectory_params(sc, seed, i) -> dict:
    """Trajectory i's parameters, drawn outside the kernel from its own keys."""
    import jax

    from kernels import keys, sample_params

    key = keys.trajectory_key(jax.random.key(seed), np.int32(i))
    p = sample_params(keys.stream_key(key, keys.PARAMS), sc.prior, keys.stream_key(key, keys.POSTERIOR))
    return {name: np.asarray(v) for name, v in p._asdict().items()}


def random_walk_only(baseline, months=24):
    """Power capacity with a constant growth rate and no moratorium: log P is a random walk
    with drift from P0 = compute0 x kW per H100e x (1 + headroom) = 1e6 x 1 kW x 2 = 2 GW."""
    fixed = lambda v: {"dist": "fixed", "value": v}  # noqa: E731
    sc = with_params(baseline, compute0=fixed(1.0e6), fleet_kw0=fixed(1.0), kw_per_h100e0=fixed(1.0),
                     power_headroom0=fixed(1.0), power_growth0=fixed(0.6), power_growth_inf=fixed(0.6),
                     power_vol=fixed(0.3))
    return with_months(sc, months)


@pytest.mark.slow
def test_random_walk_bands_match_lognormal_quantiles(baseline):
    sc = random_walk_only(baseline)
    n = 20_000
    ds = forecast.run(sc, n_trajectories=n, seed=1)
    q = np.asarray(ds["quantile"])
    for t in (0, 11, 23):
        years = (t + 1) / 12
        mu, sd = np.log(2.0) + 0.6 * years, 0.3 * np.sqrt(years)
        got = np.log(ds["power"].isel(time=t).sel(region="us").values)
        want = mu + sd * stats.norm.ppf(q)
        se = sd * np.sqrt(q * (1 - q) / n) / stats.norm.pdf(stats.norm.ppf(q))
        assert np.all(np.abs(got - want) < 4.5 * se), (t, got - want, se)
        mean = ds["power_mean"].isel(time=t).sel(region="us").item()
        want_mean = np.exp(mu + sd**2 / 2)
        assert abs(mean - want_mean) < 4.5 * want_mean * np.sqrt(np.expm1(sd**2) / n)


# FORECAST_BLOCK_VALUES: the default (a small run advances in one block of months) and a
# budget of one value (a block of one month, as at 1e6 trajectories).
MONTHLY = pytest.param("1", id="one-month-blocks", marks=pytest.mark.slow)
WHOLE = pytest.param("", id="one-block")


@pytest.mark.parametrize("blocks", [MONTHLY, WHOLE])
@pytest.mark.parametrize("n, months, seed", [(1024, 24, 5), pytest.param(8192 + 3001, 12, 6, marks=pytest.mark.slow)])
def test_quantiles_are_the_exact_order_statistics(baseline, n, months, seed, blocks, monkeypatch):
    """Every reported q is Q(q) = x_(ceil(q N)) of the same trajectories, sorted, whatever
    the block length.

    1024: one batch; 11193: two batches (a partial one), so values, counts and moments are
    gathered across batches.
    """
    monkeypatch.setenv("FORECAST_BLOCK_VALUES", blocks)
    sc = with_months(baseline, months)
    ds = forecast.run(sc, n_trajectories=n, seed=seed)
    assert ds.attrs["band_passes"] == f"lockstep ({1 if blocks else months}-month blocks)"
    raw = materialize(sc, n=n, seed=seed)
    xs = np.sort(raw, axis=1)
    k = forecast.DEFAULT_SAMPLE
    assert ds.sizes["sample"] == k and list(ds["sample"].values) == list(range(k))
    # Its parameters are each trajectory's own draw (kernels.params.sample_params, by its keys).
    for i in (0, k - 1):
        own = trajectory_params(sc, seed, i)
        for spec in SPECS:
            np.testing.assert_allclose(ds[f"param_{spec.name}"].isel(sample=i).values, own[spec.name], rtol=2e-6,
                                       err_msg=(i, spec.name))
    for spec in OUTPUTS:
        # The sample is the run's first k trajectories, whole: the same values, bit for bit.
        kept = np.moveaxis(ds[f"{spec.name}_sample"].values, 0, 1).reshape(months, k, -1)
        np.testing.assert_array_equal(kept, series(sc, raw, spec.name)[:, :k].reshape(months, k, -1),
                                      err_msg=spec.name)
        v = ds[spec.name].values.reshape(len(ds["quantile"]), months, -1)
        ref = series(sc, xs, spec.name).reshape(months, n, -1)
        for j, qq in enumerate(ds["quantile"].values):
            np.testing.assert_array_equal(v[j], ref[:, int(np.ceil(qq * n)) - 1], err_msg=(spec.name, qq))
        assert ds[spec.name].attrs["max_quantile_rank_error"] == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("blocks", [MONTHLY, WHOLE])
def test_same_seed_any_chunk_size_is_bit_identical(baseline, blocks, monkeypatch):
    monkeypatch.setenv("FORECAST_BLOCK_VALUES", blocks)
    sc = with_months(baseline, 12)
    batch = forecast.batch_size()
    n = 2 * batch + 100
    assert run_batch(n) == batch
    a = forecast.run(sc, n_trajectories=n, seed=7, chunk_size=batch)
    b = forecast.run(sc, n_trajectories=n, seed=7, chunk_size=2 * batch)
    c = forecast.run(sc, n_trajectories=n, seed=8, chunk_size=batch)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    assert not np.array_equal(a["compute"].values, c["compute"].values)
    # Keeping no sample changes no band: the sample is read beside them, never instead.
    none = forecast.run(sc, n_trajectories=n, seed=7, chunk_size=batch, sample=0)
    assert "sample" not in none.dims and not any(v.startswith("param_") for v in none.data_vars)
    for name in none.data_vars:
        np.testing.assert_array_equal(a[name].values, none[name].values, err_msg=name)


@pytest.mark.slow
def test_values_and_seed_do_not_recompile(baseline):
    sc = with_months(baseline, 12)
    forecast.run(sc, n_trajectories=600, seed=1)
    before = TRACE_COUNT["advance"]
    other = with_params(sc, g_alg={"median": 2.5}, moratorium_probability={"value": 0.5})
    forecast.run(other, n_trajectories=600, seed=2)
    assert TRACE_COUNT["advance"] == before


def test_bad_run_arguments():
    batch = run_batch(10)
    with pytest.raises(forecast.RunError, match="chunk_size must be a multiple of the batch size"):
        forecast.run("baseline", n_trajectories=10, chunk_size=batch + 1)
    with pytest.raises(forecast.RunError, match="chunk_size must be a whole number"):
        forecast.run("baseline", n_trajectories=10, chunk_size=1)
    with pytest.raises(forecast.RunError, match="n_trajectories"):
        forecast.run("baseline", n_trajectories=0)
    with pytest.raises(forecast.RunError, match="sample must be a whole number"):
        forecast.run("baseline", n_trajectories=10, sample=-1)
    with pytest.raises(forecast.RunError, match=r"sample must be at most the batch size of this run \(8192"):
        forecast.run("baseline", n_trajectories=20_000, sample=10_000)


DEVICES_SCRIPT = """
import jax, numpy as np, forecast
from forecast.scenario import load, with_months
assert len(jax.local_devices()) == 8, jax.local_devices()
sc = with_months(load("baseline", calibration="none"), 12)
import os
n = 3 * forecast.batch_size() + 7
for blocks in ("", "1"):  # one block of months (the default at this size), then a month a block
    os.environ["FORECAST_BLOCK_VALUES"] = blocks
    one = forecast.run(sc, n_trajectories=n, seed=3)  # on a CPU the default is one device
    eight = forecast.run(sc, n_trajectories=n, seed=3, devices=8)
    assert one.attrs["devices_used"] == 1 and eight.attrs["devices_used"] == 8
    assert one.attrs["band_passes"] == f"lockstep ({1 if blocks else 12}-month blocks)"
    for name in one.data_vars:
        np.testing.assert_array_equal(one[name].values, eight[name].values, err_msg=name)
try:
    forecast.run(sc, n_trajectories=10, devices=9)
except forecast.RunError as e:
    assert "devices: 9 requested" in str(e)
else:
    raise AssertionError("9 devices accepted")
print("identical")
"""


@pytest.mark.slow
def test_devices_do_not_change_results():
    """1 vs 8 CPU devices, bit for bit (in a process of its own: eight devices each compile
    their own executables, which the test process need not carry)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    res = subprocess.run([sys.executable, "-c", DEVICES_SCRIPT], env=env, capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0 and "identical" in res.stdout, res.stderr[-3000:]


@pytest.mark.slow
def test_small_runs_simulate_little_more_than_asked(baseline):
    sc = with_months(baseline, 6)
    for n, batch in ((600, 1024), (3000, 2048), (10_000, 5120), (20_000, forecast.batch_size())):
        calls = -(-n // batch)
        # Below two full batches: under 1024 padding per call; above: under one batch.
        assert run_batch(n) == batch and calls * batch - n < (calls * 1024 if n < 2 * forecast.batch_size() else batch)
    ds = forecast.run(sc, n_trajectories=600, seed=0)
    assert ds.attrs["batch_size"] == 1024 and ds.attrs["n_trajectories"] == 600


class Interrupt(Exception):
    pass


@pytest.mark.slow
@pytest.mark.parametrize("stops", [(9, 45, 84)])  # in the second month, mid-run, at the last month's last batch
def test_resume_after_interruption_is_bit_identical(baseline, tmp_path, stops, monkeypatch):
    """12 one-month blocks of 7 batches each: a checkpoint after every block."""
    import os

    monkeypatch.setenv("FORECAST_BLOCK_VALUES", "1")
    sc = with_months(baseline, 12)
    os.environ["FORECAST_BATCH"] = "1024"
    try:
        n = 6 * 1024 + 5
        whole = forecast.run(sc, n_trajectories=n, seed=9, chunk_size=1024)
        ck = tmp_path / "run.ckpt.npz"
        for stop_at in stops:
            seen = []

            def progress(done, total, phase, stop_at=stop_at):
                seen.append(done)
                if done == stop_at:
                    raise Interrupt(phase)

            with pytest.raises(Interrupt):
                forecast.run(sc, n_trajectories=n, seed=9, chunk_size=1024, progress=progress, checkpoint=ck,
                             checkpoint_every=0)
            assert ck.exists()
            again = forecast.run(sc, n_trajectories=n, seed=9, chunk_size=1024, checkpoint=ck, resume=True)
            assert again.attrs["resumed_from_checkpoint"] == 1
            assert not ck.exists()  # removed once the run completed
            for name in whole.data_vars:
                np.testing.assert_array_equal(whole[name].values, again[name].values, err_msg=(stop_at, name))
    finally:
        del os.environ["FORECAST_BATCH"]


@pytest.mark.slow
def test_a_run_of_one_block_writes_no_checkpoint(baseline, tmp_path):
    """A checkpoint is saved between blocks of months: a run of one block saves none, and
    an interrupted one leaves nothing behind."""
    sc = with_months(baseline, 6)
    ck = tmp_path / "a.ckpt.npz"

    def stop(done, total, phase):
        assert phase == "lockstep"
        if done == 1:
            raise Interrupt(phase)

    with pytest.raises(Interrupt):
        forecast.run(sc, n_trajectories=5000, seed=1, progress=stop, checkpoint=ck, checkpoint_every=0,
                     chunk_size=run_batch(5000))
    assert list(tmp_path.iterdir()) == []
    forecast.run(sc, n_trajectories=5000, seed=1, checkpoint=ck, checkpoint_every=0, output=tmp_path / "a.nc")
    assert [p.name for p in tmp_path.iterdir()] == ["a.nc"]


@pytest.mark.slow
def test_checkpoint_of_another_run_is_refused(baseline, tmp_path, monkeypatch):
    monkeypatch.setenv("FORECAST_BLOCK_VALUES", "1")  # a month a block: a checkpoint after each
    sc = with_months(baseline, 6)
    ck = tmp_path / "a.ckpt.npz"

    def stop(done, total, phase):
        if done == 3:  # in the second month (two batches a month), after the first's checkpoint
            raise Interrupt(phase)

    with pytest.raises(Interrupt):
        forecast.run(sc, n_trajectories=5000, seed=1, progress=stop, checkpoint=ck, checkpoint_every=0,
                     chunk_size=run_batch(5000))
    with pytest.raises(forecast.RunError, match="its seed is 1, this run's is 2"):
        forecast.run(sc, n_trajectories=5000, seed=2, checkpoint=ck, resume=True)
    with pytest.raises(forecast.RunError, match="number of trajectories is 5000"):
        forecast.run(sc, n_trajectories=5001, seed=1, checkpoint=ck, resume=True)
    other = with_params(sc, g_alg={"median": 2.5})
    with pytest.raises(forecast.RunError, match="scenario contents"):
        forecast.run(other, n_trajectories=5000, seed=1, checkpoint=ck, resume=True)
    with pytest.raises(forecast.RunError, match="nothing to resume"):
        forecast.run(sc, n_trajectories=5000, seed=1, checkpoint=tmp_path / "none.npz", resume=True)
    ck.write_bytes(b"truncated")
    with pytest.raises(forecast.RunError, match="not a readable checkpoint"):
        forecast.run(sc, n_trajectories=5000, seed=1, checkpoint=ck, resume=True)


def test_save_removes_stale_temporary_files(tmp_path):
    import xarray as xr

    stale = tmp_path / ".out.nc.999999999.tmp"  # a dead process's
    stale.write_text("half")
    mine_running = tmp_path / f".out.nc.{1}.tmp"  # pid 1 is alive: not ours to remove
    mine_running.write_text("busy")
    forecast.save(xr.Dataset({"a": ("x", [1.0])}), tmp_path / "out.nc")
    assert not stale.exists() and mine_running.exists() and (tmp_path / "out.nc").exists()


def test_a_run_that_cannot_fit_in_memory_is_refused_before_any_work(baseline, monkeypatch):
    """Every trajectory's parameters and state are held at once: a run whose carries and
    block of values exceed the memory available is refused with the numbers, not killed
    by the system midway."""
    import importlib

    engine = importlib.import_module("forecast.engine.run")
    monkeypatch.setattr(engine, "available_memory", lambda: {"host": 10**8, "device": None})
    before = TRACE_COUNT["advance"]
    with pytest.raises(forecast.RunError, match=r"100000 trajectories need about 1\.\d GB of memory on this host "
                                                r"\(each trajectory's parameters and state, 0\.2 GB, .*0\.1 GB is "
                                                r"available; run fewer trajectories, or spread them"):
        forecast.run(baseline, n_trajectories=100_000, progress=lambda *a: pytest.fail("work began"))
    assert TRACE_COUNT["advance"] == before
