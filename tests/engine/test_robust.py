"""Robust edges of a run: horizons, non-finite reports, Ctrl-C, kill -9 and --resume."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

import forecast
from conftest import SESSION_CACHE
from forecast.engine.run import where_nonfinite
from forecast.scenario import ScenarioError, load, with_months

BATCH = "2048"  # small batches, so that a run has many checkpoints to be stopped between


def test_horizon_beyond_fifty_years_is_refused_with_the_reason():
    sc = load("baseline")
    assert with_months(sc, 600).months == 600
    with pytest.raises(ScenarioError, match=r"1\.\.600.*overflows float32"):
        with_months(sc, 601)


def test_nonfinite_report_names_month_and_outputs():
    sc = with_months(load("baseline"), 24)
    per_month = len(sc.regions) * 38 + 22  # series per month for 5 regions (kernels.output_sizes)
    from kernels import output_sizes

    assert sum(output_sizes(len(sc.regions))) == per_month
    counts = np.zeros((24, per_month), np.int64)
    counts[13, 0] = 2  # compute[us] in month 14
    counts[20, per_month - 1] = 1
    text = where_nonfinite(counts, sc, 1)
    assert text == ", first in 2027-02 (month 14 of 24) in compute"
    assert where_nonfinite(np.zeros_like(counts), sc, 1) == ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's tunables: Linux only")
@pytest.mark.parametrize("env, lines", [
    ({}, ["None", "glibc.malloc.hugetlb=1"]),
    ({"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"},
     ["glibc.malloc.tcache_count=0", "glibc.malloc.tcache_count=0:glibc.malloc.hugetlb=1"]),
    ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, ["glibc.malloc.hugetlb=0"]),
    ({"FORECAST_HUGEPAGES": "0"}, ["None"]),
], ids=["default", "kept-beside-others", "user-choice-kept", "opted-out"])
def test_the_console_script_asks_malloc_for_huge_pages_once(env, lines):
    """forecast_entry re-executes itself once with glibc.malloc.hugetlb=1 added to the
    user's tunables (benchmarks/NOTES.md, session 20), never over the user's own setting,
    and not with FORECAST_HUGEPAGES=0."""
    snippet = ("import os, forecast_entry; print(os.environ.get('GLIBC_TUNABLES'), flush=True); "
               "forecast_entry.hugepages()")
    base = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "FORECAST_HUGEPAGES")}
    out = subprocess.run([sys.executable, "-c", snippet], env=dict(base, **env), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == lines


def _cli(args, tmp_path, **kw):
    # The session's compilation cache for every process of these tests: the first compiles,
    # the rest load.
    env = dict(os.environ, FORECAST_BATCH=BATCH, FORECAST_CACHE_DIR=SESSION_CACHE, XLA_FLAGS="")
    # The console script's entry: Ctrl-C while the modules still load (seconds on a slow
    # machine) is its one line, as a user's would be.
    return subprocess.Popen([sys.executable, "-c", "import forecast_entry; forecast_entry.main()", *args], cwd=tmp_path,
                            env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(path, proc, timeout=240):
    t0 = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < timeout, "no checkpoint appeared"
        time.sleep(0.2)


def _reference(n, seed, scenario="baseline"):
    os.environ["FORECAST_BATCH"] = BATCH
    try:
        return forecast.run(scenario, n_trajectories=n, seed=seed)
    finally:
        del os.environ["FORECAST_BATCH"]


@pytest.mark.slow
def test_ctrl_c_and_kill_then_resume_give_the_uninterrupted_bands(tmp_path, monkeypatch):
    monkeypatch.setenv("FORECAST_BLOCK_VALUES", "1")  # a month a block: a checkpoint after each (one block saves none)
    n, seed = 8 * int(BATCH) + 11, 4
    out = tmp_path / "out.nc"
    ck = tmp_path / "out.nc.ckpt.npz"
    args = ["run", "baseline", "-n", str(n), "--seed", str(seed), "-o", str(out), "--chunk-size", BATCH,
            "--checkpoint-every", "0"]
    # Ctrl-C before anything was simulated (while compiling), then after some batches.
    for wait in ("start", "checkpoint"):
        proc = _cli(args, tmp_path)
        if wait == "start":
            time.sleep(3.0)
        else:
            _wait_for(ck, proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err and "terminate" not in err
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert ck.exists() and "--resume" in err
    # kill -9 after more checkpoints, then resume to the end.
    proc = _cli(args + ["--resume"], tmp_path)
    before = ck.stat().st_mtime_ns
    t0 = time.time()
    while ck.stat().st_mtime_ns == before and time.time() - t0 < 240:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert not out.exists()
    proc = _cli(args + ["--resume"], tmp_path)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "resumed from a checkpoint" in err and not ck.exists()
    got = xr.open_dataset(out, engine="h5netcdf").load()
    want = _reference(n, seed)
    for name in want.data_vars:
        np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)
    # A checkpoint from another run is refused by name, and nothing is written.
    proc = _cli(args[:-2] + ["--checkpoint-every", "0", "--force"], tmp_path)
    _wait_for(ck, proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    other = [a if a != str(seed) else str(seed + 1) for a in args]
    proc = _cli(other + ["--resume", "--force"], tmp_path)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "its seed is 4, this run's is 5" in err


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.parametrize("blocks", [pytest.param("1", id="one-month-blocks"), pytest.param("", id="one-block")])
def test_two_processes_give_the_single_process_bands(tmp_path, blocks, monkeypatch):
    """Two local processes through JAX's distributed runtime (CPU, gloo collectives): each
    sorts its own trajectories' values, and the bands found by bisection over both are the
    single process's, bit for bit."""
    monkeypatch.setenv("FORECAST_BLOCK_VALUES", blocks)
    n, seed = 5 * int(BATCH) + 3, 6
    out = tmp_path / "two.nc"
    port = _free_port()
    procs = [_cli(["run", "baseline", "-n", str(n), "--seed", str(seed), "-o", str(out), "--coordinator",
                   f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(k)], tmp_path) for k in (0, 1)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert "process 0 of 2" in errs[0] and "process 1 of 2" in errs[1] and "wrote" not in errs[1]
    got = xr.open_dataset(out, engine="h5netcdf").load()
    want = _reference(n, seed)
    for name in want.data_vars:
        np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_processes_killed_resume_to_the_single_process_bands(tmp_path, monkeypatch):
    """README, "Long runs": each of two processes checkpoints its own trajectories. Both are
    killed (-9) mid-run; restarted with one process's file missing, both refuse with the
    reason and keep the files; restarted with both files, they end with the bits of one
    uninterrupted process and remove their checkpoints."""
    import shutil

    monkeypatch.setenv("FORECAST_BLOCK_VALUES", "1")  # one-month blocks: a checkpoint after each
    n, seed = 5 * int(BATCH) + 3, 8
    scenario = tmp_path / "short.toml"
    scenario.write_text('name = "short"\nextends = "baseline"\nmonths = 24\n')
    out = tmp_path / "two.nc"
    files = [tmp_path / f"two.nc.ckpt.p{k}of2.npz" for k in (0, 1)]

    def start(resume):
        port = _free_port()
        return [_cli(["run", str(scenario), "-n", str(n), "--seed", str(seed), "-o", str(out), "--checkpoint-every",
                      "0", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(k)]
                     + (["--resume"] if resume else []), tmp_path) for k in (0, 1)]

    procs = start(False)
    for f, p in zip(files, procs):
        _wait_for(f, p)
    time.sleep(0.5)
    for p in procs:
        p.send_signal(signal.SIGKILL)
    for p in procs:
        p.communicate(timeout=60)
    assert not out.exists() and all(f.exists() for f in files)
    months = [int(np.load(f)["lockstep#next"]) for f in files]
    assert 0 < months[0] < 24

    aside = tmp_path / "aside.npz"
    shutil.move(files[1], aside)
    procs = start(True)
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [2, 2], errs
    assert f"process 0: month {months[0]}, process 1: none" in " ".join(errs[0].split()), errs[0]
    assert not out.exists() and files[0].exists()

    shutil.move(aside, files[1])
    procs = start(True)
    errs = [p.communicate(timeout=300)[1] for p in procs]
    if months[0] != months[1]:  # killed between the two renames (microseconds): refused by name
        assert [p.returncode for p in procs] == [2, 2] and "stop at different months" in errs[0], errs
        return
    assert [p.returncode for p in procs] == [0, 0], errs
    assert "resumed from a checkpoint" in errs[0]
    assert not any(f.exists() for f in files)
    got = xr.open_dataset(out, engine="h5netcdf").load()
    want = _reference(n, seed, load(scenario))
    for name in want.data_vars:
        np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)


@pytest.mark.slow
def test_a_kill_at_any_moment_leaves_the_output_or_the_checkpoint(tmp_path, monkeypatch):
    """README, "Long runs": kill -9 at random moments of a run of one-month blocks. After each kill the
    output is absent or complete, and once a checkpoint was saved there is always the
    output or a checkpoint; --resume from whatever is left ends with the bits of an
    uninterrupted run."""
    import random

    monkeypatch.setenv("FORECAST_BLOCK_VALUES", "1")
    rng = random.Random(7)
    n, seed = 6 * int(BATCH) + 5, 3
    scenario = tmp_path / "short.toml"  # two years: five times fewer values to save
    scenario.write_text('name = "short"\nextends = "baseline"\nmonths = 24\n')
    out, ck = tmp_path / "k.nc", tmp_path / "k.nc.ckpt.npz"
    args = ["run", str(scenario), "-n", str(n), "--seed", str(seed), "-o", str(out), "--chunk-size", BATCH,
            "--checkpoint-every", "0", "--resume"]
    kills = 0
    while True:
        saved = ck.stat().st_mtime_ns if ck.exists() else None
        proc = _cli(args, tmp_path)
        t0 = time.time()
        # Until this process has saved a checkpoint of its own (so that every attempt moves
        # the run on), then a random moment later.
        while proc.poll() is None and (ck.stat().st_mtime_ns if ck.exists() else None) == saved:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 2.5))
        if proc.poll() is not None:  # it finished first
            assert proc.returncode == 0, proc.communicate()
            break
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        kills += 1
        assert out.exists() or ck.exists(), f"kill {kills} after {time.time() - t0:.1f} s left neither"
        if out.exists():  # killed after the output was in place: it is complete
            break
    assert kills >= 1 and out.exists()
    got = xr.open_dataset(out, engine="h5netcdf").load()
    want = _reference(n, seed, load(scenario))
    for name in want.data_vars:
        np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)
