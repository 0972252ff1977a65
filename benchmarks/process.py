"""Whole-process benchmarks: what a user waits for, paired in one run.

    python -m benchmarks.process                      # 1e4 and 1e5 (CPU: ~15 min)
    python -m benchmarks.process --sizes 1000000      # 1e6 (CPU: ~45 min)
    python -m benchmarks.process --sizes 100000,1000000 --months 12   # 1e6 in ~10 min
    python -m benchmarks.process --sizes 10000,100000,1000000 --numpy-max 100000 --warm-max 100000
        # 1e6 x 120 too (CPU: ~20 min): NumPy's time there extrapolated linearly from
        # 1e5 (it would take over 20 minutes), the engine cold only

For each size, each command runs as its own process, one after the other:
- engine, cold: `forecast run baseline --priors none -n N` with the compilation cache off;
- engine, warm: the same with a compilation cache that a first (untimed) run filled;
- NumPy reference: `benchmarks/reference_numpy.simulate` (the same model and priors,
  float64, np.quantile bands), started as `python -c ...`.
Wall seconds, CPU seconds (user + system, from the kernel's accounting of the child) and
peak resident memory (ru_maxrss of the child) are recorded; the table goes to
benchmarks/README.md between its `process` markers.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

README = Path(__file__).with_name("README.md")


def markers(months):
    """The README markers of a month count's table (120 months: the original `process`)."""
    key = "process" if months == 120 else f"process-{months}"
    return f"<!-- table:{key}:begin -->", f"<!-- table:{key}:end -->"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated trajectory counts")
    ap.add_argument("--months", type=int, default=120, help="horizon (a scenario extending baseline)")
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    ap.add_argument("--numpy-max", type=int, default=None,
                    help="above this size, extrapolate NumPy's wall and CPU time linearly from the largest size "
                         "measured (labelled so in the table)")
    ap.add_argument("--warm-max", type=int, default=None,
                    help="above this size, run the engine cold only (a warm run would first fill the cache with "
                         "a whole run of that size)")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-process-"))
    scenario = "baseline"
    if args.months != 120:
        scenario = str(tmp / "baseline_months.toml")
        Path(scenario).write_text(f'name = "baseline"\nextends = "baseline"\nmonths = {args.months}\n')
    base = dict(os.environ)
    rows = []
    measured: list = []  # (size, NumPy's result) where it ran
    for n in sizes:
        out = str(tmp / "out.nc")
        engine = [sys.executable, "-c", "from forecast_entry import main; main()", "run", scenario, "--priors", "none",
                  "-n", str(n), "-o", out, "--force"]
        numpy = [sys.executable, "-c", "from benchmarks import reference_numpy as r; from forecast.scenario import "
                 f"load; r.simulate(load({scenario!r}, calibration='none'), n={n})"]
        cache = str(tmp / f"cache-{n}")
        results = {}
        for label, cmd, env in (
            ("NumPy reference", numpy, base),
            ("engine, cold compile", engine, dict(base, FORECAST_CACHE_DIR="off")),
            ("engine, warm cache", engine, dict(base, FORECAST_CACHE_DIR=cache)),
        ):
            if label == "NumPy reference" and args.numpy_max is not None and n > args.numpy_max:
                m, r = measured[-1]
                label = f"NumPy reference (extrapolated from {m:,})"
                results[label] = {"wall": r["wall"] * n / m, "cpu": r["cpu"] * n / m, "rss": float("nan")}
                continue
            if label == "engine, warm cache":
                if args.warm_max is not None and n > args.warm_max:
                    continue
                _own_peak(engine, env)  # fills the cache
            results[label] = _own_peak(cmd, env)
            if label == "NumPy reference":
                measured.append((n, results[label]))
        ref = next(r for k, r in results.items() if k.startswith("NumPy reference"))
        for label, r in results.items():
            rows.append((n, label, r["wall"], r["cpu"], r["rss"], r["wall"] / ref["wall"], r["cpu"] / ref["cpu"]))
            print(f"{n:>10,} {label:40s} wall {r['wall']:8.1f} s  cpu {r['cpu']:8.1f} s  peak {r['rss']:5.2f} GB",
                  flush=True)
    table = _table(rows, args.months)
    print(table)
    if not args.no_write:
        write_table(table, args.months)


def write_table(table: str, months: int):
    """Put the table between its markers in benchmarks/README.md (a new section if none)."""
    BEGIN, END = markers(months)
    text = README.read_text()
    block = f"{BEGIN}\n{table}\n{END}"
    if BEGIN in text:
        start, end = text.index(BEGIN), text.index(END) + len(END)
        text = text[:start] + block + text[end:]
    else:
        text = text.rstrip() + f"\n\n## Whole processes, {months} months\n\n" + block + "\n"
    README.write_text(text)


def _own_peak(cmd, env) -> dict:
    """Run cmd under a small wrapper process whose RUSAGE_CHILDREN covers cmd alone: wall
    seconds, CPU seconds (user + system) and peak RSS (GB) of that one process."""
    wrapper = [sys.executable, "-c",
               "import resource, subprocess, sys, time, json\n"
               "t0 = time.perf_counter()\n"
               "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
               "w = time.perf_counter() - t0\n"
               "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
               "print(json.dumps({'rc': p.returncode, 'wall': w, 'cpu': u.ru_utime + u.ru_stime, "
               "'rss': u.ru_maxrss / 1024**2, 'err': p.stderr[-2000:]}))\n",
               *cmd]
    import json

    proc = subprocess.run(wrapper, env=env, capture_output=True, text=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["rc"]:
        raise RuntimeError(f"{' '.join(cmd)} failed: {result['err']}")
    return result


def _table(rows, months=120) -> str:
    import jax
    import numpy as np

    dev = jax.devices()[0]
    head = (f"Device: {dev.platform} ({dev.device_kind}), {os.cpu_count()} cores; jax {jax.__version__}, numpy "
            f"{np.__version__}, Python {platform.python_version()}; baseline, hand-set priors, {months} months; "
            f"{dt.date.today().isoformat()}.\n\n"
            "| trajectories | command | wall s | CPU s | peak RSS GB | wall / NumPy | CPU / NumPy |\n"
            "|---:|---|---:|---:|---:|---:|---:|")
    lines = [f"| {n:,} | {label} | {w:.1f} | {c:.1f} | {'-' if r != r else f'{r:.2f}'} | {wn:.2f}x | {cn:.2f}x |"
             for n, label, w, c, r, wn, cn in rows]
    return head + "\n" + "\n".join(lines)


if __name__ == "__main__":
    main()
