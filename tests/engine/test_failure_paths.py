"""The failure paths: nothing lost, nothing destroyed, nothing silently wrong.

Each defect class of the hostile review has a test here: outputs that are inputs, existing
outputs, wrong suffixes, two writers, seeds, flags, implausible posteriors, empty data,
read-only folders, circular extends, Ctrl-C at any moment, full disks, and the order of
the output and the checkpoint; and a property-style test that feeds every command random
bytes, truncated files and files of the wrong kind.
"""
import errno
import hashlib
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import forecast
import forecast.engine.checkpoint
from forecast.scenario.posterior import shipped_path
from forecast.cli import main
from forecast.engine.files import exclusive, lock_path
from forecast.scenario import ScenarioError, load, with_months, with_params

READ_ONLY = Path("/sys")  # a folder no one, root included, may create files in


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A small results file (6 months, 256 trajectories)."""
    path = tmp_path_factory.mktemp("results") / "r.nc"
    forecast.save(forecast.run(with_months(load("baseline", calibration="none"), 6), n_trajectories=256), path)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def invoke(args):
    """The CLI in-process; a user's mistake must be a SystemExit with a message, never
    an exception escaping the command."""
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exception is None or isinstance(res.exception, SystemExit), (args, res.output, res.exception)
    assert "Traceback" not in res.output, res.output
    return res


# ------------------------------------------------------------------ never overwrite an input
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(results, tmp_path):
    r = tmp_path / "r.nc"
    shutil.copy(results, r)
    post = tmp_path / "posterior.nc"
    shutil.copy(shipped_path(), post)
    before = digest(r), digest(post)
    for args in (["report", r, "-o", r], ["report", r, "-o", r, "--force"], ["export", r, "--csv", r],
                 ["export", r, "--parquet", r], ["plot", r, "-o", r],
                 ["run", "baseline", "-n", 16, "--priors", post, "-o", post, "--force"],
                 ["compare", "baseline", "moratorium", "-n", 16, "--priors", post, "-o", post, "--force"]):
        res = invoke(args)
        assert res.exit_code == 2 and "error" in res.output, (args, res.output)
    assert (digest(r), digest(post)) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["posterior.nc", "r.nc"]


@pytest.mark.parametrize("command, output, message", [
    (["report"], "r.csv", "ending in .html"),
    (["export", "--csv"], "r.html", "ending in .csv"),
    (["export", "--parquet"], "r.csv", "ending in .parquet"),
    (["plot", "-o"], "figs/b.png", "looks like a file name"),
])
def test_an_output_of_the_wrong_kind_is_refused(results, tmp_path, command, output, message):
    out = tmp_path / output
    args = [command[0], results] + (command[1:] if len(command) > 1 else ["-o"]) + [out]
    res = invoke(args)
    assert res.exit_code == 2 and message in " ".join(res.output.split()), res.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # over 15 s: the full suite runs it
def test_an_existing_output_is_replaced_only_with_force(results, tmp_path):
    for args, out in ((["report", results, "-o"], tmp_path / "r.html"), (["export", results, "--csv"], tmp_path / "r.csv"),
                      (["run", "baseline", "-n", 16, "--priors", "none", "-o"], tmp_path / "x.nc")):
        out.write_text("precious")
        res = invoke(args + [out])
        assert res.exit_code == 2 and "--force" in res.output and out.read_text() == "precious", res.output
        res = invoke(args + [out, "--force"])
        assert res.exit_code == 0, res.output
        assert out.read_bytes() != b"precious"
    figs = tmp_path / "figs"
    figs.mkdir()
    (figs / "notes.txt").write_text("mine")
    res = invoke(["plot", results, "-o", figs])
    assert res.exit_code == 2 and "--force" in res.output and [p.name for p in figs.iterdir()] == ["notes.txt"]
    assert invoke(["plot", results, "-o", figs, "--force"]).exit_code == 0
    assert (figs / "notes.txt").read_text() == "mine" and len(list(figs.iterdir())) > 2


# ------------------------------------------------------------------ one writer per output
@pytest.mark.slow
def test_a_second_writer_is_refused_by_name_and_a_dead_ones_lock_taken_over(results, tmp_path):
    out = tmp_path / "r.html"
    with exclusive(out):
        res = invoke(["report", results, "-o", out])
        assert res.exit_code == 2 and f"PID {os.getpid()}" in res.output and not out.exists()
    assert not lock_path(out).exists()  # released and removed
    lock_path(out).write_text("999999999")  # left by a process killed -9: no lock is held on it
    res = invoke(["report", results, "-o", out])
    assert res.exit_code == 0 and out.exists() and not lock_path(out).exists()


@pytest.mark.slow  # over 15 s: the full suite runs it
def test_two_runs_to_one_output_one_refused(tmp_path):
    out = tmp_path / "x.nc"
    env = dict(os.environ, FORECAST_CACHE_DIR="off", XLA_FLAGS="")
    cmd = [sys.executable, "-c", "import forecast_entry; forecast_entry.main()", "run", "baseline", "-n", "3000",
           "--priors", "none", "-o", str(out)]
    first = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not lock_path(out).exists():
        assert first.poll() is None and time.time() - t0 < 120, first.communicate()
        time.sleep(0.05)
    second = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2 and f"PID {first.pid}" in " ".join(second.stderr.split()), second.stderr
    assert first.wait(timeout=300) == 0 and out.exists()


# ------------------------------------------------------------------ values validated where they enter
@pytest.mark.slow
def test_seeds_use_all_64_bits_and_are_never_aliased(tmp_path):
    sc = with_months(load("baseline", calibration="none"), 3)
    zero = forecast.run(sc, n_trajectories=64, seed=0)
    wide = forecast.run(sc, n_trajectories=64, seed=2**32)
    assert not np.array_equal(zero["compute"].values, wide["compute"].values)
    top = forecast.run(sc, n_trajectories=64, seed=2**64 - 1)
    assert int(top.attrs["seed"]) == 2**64 - 1
    for bad in (2**64, -1, 1.5, True):
        with pytest.raises(forecast.RunError, match=r"seed must be a whole number in \[0, 2\*\*64\)"):
            forecast.run(sc, n_trajectories=64, seed=bad)
    res = invoke(["run", "baseline", "-n", 16, "--seed", 2**64, "-o", tmp_path / "x.nc"])
    assert res.exit_code == 2 and "seed must be" in res.output and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("table, message", [
    ({"value": {"us": 1.0, "europe": 1.0, "china": 0.0, "other_north": 1.0, "global_south": 0.5}},
     "north is a yes/no flag: 1 or 0, got 0.5"),
    ({"dist": "logitnormal", "median": 0.5, "sigma": 0.1}, "north is a yes/no flag"),
])
def test_flags_must_be_zero_or_one(table, message):
    with pytest.raises(ScenarioError, match=message):
        with_params(load("baseline", calibration="none"), north=table)


def test_scenario_values_outside_the_physical_range_are_refused():
    with pytest.raises(ScenarioError, match=r"params.compute0.median.us: 1e\+30 H100e is outside the physical range"):
        with_params(load("baseline", calibration="none"), compute0={"median": {"us": 1e30}})


def _posterior_with(tmp_path, name, index, value):
    """The shipped posterior's draw table with one value changed (group posterior only)."""
    with xr.open_dataset(shipped_path(), group="posterior", engine="h5netcdf") as ds:
        ds = ds.load()
    arr = ds[name].values.copy()
    arr[index] = value
    ds[name] = (ds[name].dims, arr)
    path = tmp_path / "bad_posterior.nc"
    ds.to_netcdf(path, group="posterior", engine="h5netcdf")
    return path


def test_a_posterior_value_outside_the_physical_range_is_refused_by_name_and_row(tmp_path):
    path = _posterior_with(tmp_path, "compute0", (2, 17, 0), 1e30)
    with pytest.raises(ScenarioError, match=r"compute0\[us\] = 1e\+30 H100e in draw 17 of chain 2 .* outside its "
                                            r"physical range \[1000, 1e\+10\]"):
        load("baseline", calibration=str(path))
    res = invoke(["run", "baseline", "-n", 16, "--priors", path, "-o", tmp_path / "x.nc"])
    assert res.exit_code == 2 and "compute0[us]" in res.output and not (tmp_path / "x.nc").exists()


# ------------------------------------------------------------------ every user mistake: a message and exit 2
@pytest.mark.parametrize("text", ["date,entity,metric,value,unit,source\n", "date,entity,metric,value,unit,source\n\n\n"])
def test_empty_or_blank_usage_files_are_a_message(tmp_path, text):
    path = tmp_path / "empty.csv"
    path.write_text(text)
    for args in (["check-data", path], ["calibrate", path, "-o", tmp_path / "p.nc"]):
        res = invoke(args)
        assert res.exit_code == 2 and "no observations (a header but no data rows)" in " ".join(res.output.split())
    assert [p.name for p in tmp_path.iterdir()] == ["empty.csv"]


@pytest.mark.skipif(not READ_ONLY.is_dir(), reason="needs a read-only folder (/sys)")
def test_read_only_folders_are_refused_before_any_work(results, tmp_path):
    for args in (["report", results, "-o", READ_ONLY / "r.html"], ["export", results, "--csv", READ_ONLY / "r.csv"],
                 ["plot", results, "-o", READ_ONLY / "figs"], ["run", "baseline", "-n", 16, "-o", READ_ONLY / "x.nc"],
                 ["calibrate", "-o", READ_ONLY / "p.nc"], ["sensitivity", "baseline", "-o", READ_ONLY / "s.nc"]):
        t0 = time.perf_counter()
        res = invoke(args)
        assert res.exit_code == 2 and "is not writable" in res.output, (args, res.output)
        assert time.perf_counter() - t0 < 20  # refused before a fit or a run, not after


@pytest.mark.parametrize("spelling", ["a.toml", "./a.toml", "../d/a.toml", "ABS", "b.toml"])
def test_circular_extends_however_spelled_is_a_message(tmp_path, spelling):
    folder = tmp_path / "d"
    folder.mkdir()
    target = str(folder / "a.toml") if spelling == "ABS" else spelling
    (folder / "a.toml").write_text(f'name = "a"\nextends = "{target}"\n')
    (folder / "b.toml").write_text('name = "b"\nextends = "a.toml"\n')
    with pytest.raises(ScenarioError, match="circular extends"):
        load(folder / "a.toml")
    res = invoke(["run", folder / "a.toml", "-n", 10, "-o", tmp_path / "x.nc"])
    assert res.exit_code == 2 and "circular extends" in res.output


def _cli(args, cwd, **kw):
    env = dict(os.environ, FORECAST_CACHE_DIR="off", XLA_FLAGS="", **kw.pop("env", {}))
    return subprocess.Popen([sys.executable, "-c", "import forecast_entry; forecast_entry.main()", *map(str, args)],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.3, 1.0, 2.0, 4.0, 8.0])
def test_ctrl_c_at_any_moment_is_one_line_and_130(tmp_path, delay):
    """From the imports (the first seconds) through compiling and simulating."""
    out = tmp_path / "x.nc"
    proc = _cli(["run", "baseline", "-n", 20000, "-o", out], tmp_path)  # one pass: no checkpoint
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130, err
    assert len(lines) == 1 and lines[0].startswith("interrupted"), err
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ full disks and the write order
@pytest.mark.slow  # over 15 s: the full suite runs it
def test_a_failed_checkpoint_save_warns_and_the_run_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("FORECAST_BLOCK_VALUES", "1")
    sc = with_months(load("baseline", calibration="none"), 6)
    want = forecast.run(sc, n_trajectories=3000, seed=2)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(forecast.engine.checkpoint.np.lib.format, "write_array", full)
    ck, out = tmp_path / "x.nc.ckpt.npz", tmp_path / "x.nc"
    with pytest.warns(UserWarning, match=r"could not write .*x.nc.ckpt.npz: no space left on its disk; it needs about"):
        got = forecast.run(sc, n_trajectories=3000, seed=2, checkpoint=ck, checkpoint_every=0, output=out)
    assert out.exists() and not ck.exists() and [p.name for p in tmp_path.iterdir()] == ["x.nc"]
    np.testing.assert_array_equal(got["compute"].values, want["compute"].values)


@pytest.mark.slow
def test_the_output_is_safe_before_the_checkpoint_goes(tmp_path, monkeypatch):
    """A kill during the final write leaves the checkpoint: --resume writes the output."""
    monkeypatch.setenv("FORECAST_BLOCK_VALUES", "1")
    sc = with_months(load("baseline", calibration="none"), 6)
    ck, out = tmp_path / "x.nc.ckpt.npz", tmp_path / "x.nc"
    real = xr.Dataset.to_netcdf

    def killed(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_netcdf", killed)
    with pytest.raises(KeyboardInterrupt):
        forecast.run(sc, n_trajectories=3000, seed=2, checkpoint=ck, checkpoint_every=0, output=out)
    assert ck.exists() and not out.exists() and [p.name for p in tmp_path.iterdir()] == [ck.name]
    monkeypatch.setattr(xr.Dataset, "to_netcdf", real)
    again = forecast.run(sc, n_trajectories=3000, seed=2, checkpoint=ck, resume=True, output=out)
    assert out.exists() and not ck.exists() and again.attrs["resumed_from_checkpoint"] == 1
    whole = forecast.run(sc, n_trajectories=3000, seed=2)
    for name in whole.data_vars:
        np.testing.assert_array_equal(whole[name].values, again[name].values, err_msg=name)


@pytest.mark.slow  # over 15 s: the full suite runs it
def test_a_refused_run_removes_its_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("FORECAST_BLOCK_VALUES", "1")
    sc = with_params(with_months(load("baseline", calibration="none"), 120),
                     enterprise_growth_inf={"median": 20.0, "sigma": 0.0},
                     enterprise_growth0={"median": 20.0, "sigma": 0.0},
                     demand_feedback={"dist": "fixed", "value": 1e-6})  # overflows float32 within five years
    ck = tmp_path / "x.ckpt.npz"
    with pytest.raises(forecast.RunError, match="non-finite"):
        forecast.run(sc, n_trajectories=1024, seed=0, checkpoint=ck, checkpoint_every=0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_full_disk_is_a_message_naming_the_path_and_the_bytes(tmp_path):
    """Files may grow to 100 kB only (RLIMIT_FSIZE): the checkpoint saves fail with a
    warning, the run goes on, the output's write fails with a message and exit 2, and
    nothing half-written is left."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    out = tmp_path / "x.nc"
    proc = _cli(["run", "baseline", "-n", 2000, "--priors", "none", "-o", out, "--checkpoint-every", "0"], tmp_path,
                preexec_fn=limit, env={"FORECAST_BLOCK_VALUES": "1"})
    _, err = proc.communicate(timeout=600)
    text = " ".join(err.split())
    assert proc.returncode == 2, err
    assert "warning: could not write" in text and "x.nc.ckpt.npz" in text
    assert f"could not write {out}: the file is larger than this process may write; it needs about" in text
    assert "Traceback" not in err and not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp") or p.name.endswith(".lock")]


# ------------------------------------------------------------------ property: garbage in, a message out
def _garbage(kind: Path, rng: random.Random, folder: Path) -> list[Path]:
    """Random bytes, truncations of a valid file of this kind, and files of other kinds
    under this kind's suffix."""
    data = kind.read_bytes()
    out = []
    for i in range(2):
        p = folder / f"random{i}{kind.suffix}"
        p.write_bytes(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 4000))))
        out.append(p)
    for i, cut in enumerate(sorted(rng.sample(range(1, len(data) - 2), 2))):  # never a whole file
        p = folder / f"cut{i}{kind.suffix}"
        p.write_bytes(data[:cut])
        out.append(p)
    return out


def test_random_bytes_truncated_files_and_wrong_kinds_never_traceback(results, tmp_path):
    rng = random.Random(20261205)
    sources = tmp_path / "sources"
    sources.mkdir()
    csv = sources / "usage.csv"
    csv.write_text("date,entity,metric,value,unit,source\n2025-06,United States,ai_user_share,28.3,%,x\n")
    toml = sources / "s.toml"
    toml.write_text(Path(forecast.scenario.__file__).with_name("builtin").joinpath("baseline.toml").read_text())
    nc = sources / "r.nc"
    shutil.copy(results, nc)
    wrong = {".nc": [csv, toml], ".csv": [nc, toml], ".toml": [nc, csv]}
    cases = []
    for kind in (nc, csv, toml):
        for bad in _garbage(kind, rng, sources) + [p for p in wrong[kind.suffix]]:
            if bad.suffix != kind.suffix:  # a file of another kind under this kind's name
                renamed = sources / f"{bad.stem}_as{kind.suffix}"
                shutil.copy(bad, renamed)
                bad = renamed
            cases.append((kind.suffix, bad))
    commands = {
        ".nc": lambda f, o: [["report", f, "-o", o / "r.html"], ["plot", f, "-o", o / "figs"],
                             ["export", f, "--csv", o / "t.csv"], ["run", "baseline", "-n", 16, "--priors", f, "-o",
                                                                     o / "x.nc"]],
        ".csv": lambda f, o: [["check-data", f], ["calibrate", f, "-o", o / "p.nc"]],
        ".toml": lambda f, o: [["run", f, "-n", 16, "-o", o / "x.nc"]],
    }
    outputs = tmp_path / "out"
    outputs.mkdir()
    for suffix, bad in cases:
        before = {p.name: digest(p) for p in sources.iterdir()}
        for args in commands[suffix](bad, outputs):
            res = invoke(args)
            assert res.exit_code == 2 and "error" in res.output, (args, res.output)
            assert list(outputs.iterdir()) == [], (args, list(outputs.iterdir()))
        assert {p.name: digest(p) for p in sources.iterdir()} == before


def test_docs_state_every_physical_range_the_code_enforces():
    import re

    from kernels.params import FLAGS, RANGES, SPECS

    text = (Path(__file__).parents[2] / "docs" / "model.md").read_text()
    for spec in SPECS:
        row = re.search(rf"^\| `{spec.name}` \|(.*)$", text, re.M)
        assert row, spec.name
        cell = row.group(1).split(" | ")[3].strip()
        if spec.name in FLAGS:
            assert cell == "0 or 1 (a flag)", spec.name
        elif spec.name in RANGES:
            lo, hi = RANGES[spec.name]
            assert cell == f"[{lo:g}, {hi:g}]", (spec.name, cell)
        else:
            assert spec.support == "month" and cell == "any month", spec.name
