"""The benchmark harness runs end to end on a tiny size and renders its table."""
import pytest

from benchmarks import run as bench


@pytest.mark.slow
def test_harness_smoke(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "README", tmp_path / "README.md")
    bench.main(["--sizes", "300", "--months", "3", "--repeats", "1", "--only", "engine,numpy,rng,numpyro",
                "--tag", "smoke"])
    text = (tmp_path / "README.md").read_text()
    assert "<!-- table:smoke:begin -->" in text and "<!-- table:smoke:end -->" in text
    for label in ("engine kernel", "NumPy reference", "RNG-only floor", "numpyro Predictive"):
        assert label in text
    # A second run replaces the table rather than appending another.
    bench.main(["--sizes", "300", "--months", "3", "--repeats", "1", "--only", "rng", "--tag", "smoke"])
    text = (tmp_path / "README.md").read_text()
    assert text.count("<!-- table:smoke:begin -->") == 1 and "NumPy reference" not in text


@pytest.mark.slow
def test_process_benchmark_smoke(tmp_path, monkeypatch):
    """One call (each size's processes compile cold, so one call is most of the test's time):
    at 200 trajectories NumPy, the engine cold and warm; above --numpy-max NumPy's time is
    extrapolated linearly (2x the size: 2x the time), and above --warm-max the engine runs
    cold only. The 6-month table replaces its own stale block and no other."""
    from benchmarks import process

    monkeypatch.setattr(process, "README", tmp_path / "README.md")
    begin, end = process.markers(6)
    (tmp_path / "README.md").write_text(f"# Benchmarks\n\n{begin}\nstale\n{end}\n")
    process.main(["--sizes", "200,400", "--months", "6", "--numpy-max", "200", "--warm-max", "200"])
    text = (tmp_path / "README.md").read_text()
    assert text.count(begin) == 1 and "stale" not in text and "engine, warm cache" in text
    assert "6 months" in text and process.markers(120)[0] not in text
    rows = [line for line in text.splitlines() if line.startswith("| 200 |")]
    assert len(rows) == 3 and all(float(r.split("|")[5]) > 0.05 for r in rows)  # a peak RSS was read
    rows = {line.split("|")[2].strip(): line.split("|") for line in text.splitlines() if line.startswith("| 400 |")}
    assert set(rows) == {"NumPy reference (extrapolated from 200)", "engine, cold compile"}
    at_200 = next(line.split("|") for line in text.splitlines() if line.startswith("| 200 | NumPy reference |"))
    assert float(rows["NumPy reference (extrapolated from 200)"][3]) == pytest.approx(2 * float(at_200[3]), abs=0.11)
