"""A GPU estimate on paper, until a device is lent: the kernel's cost per trajectory-month
from XLA's cost analysis, against an H100's roofline and the RNG floor.

    python -m benchmarks.roofline            # print the table (about a minute on a 2-core CPU)
    python -m benchmarks.roofline --write    # and put it in benchmarks/README.md

What it measures, per trajectory-month of the baseline (5 regions, 212 series a month):
- `Lowered.cost_analysis()` of kernels.run_chunk lowered for CUDA (no GPU needed): FLOPs,
  transcendentals and bytes accessed of the program before XLA's fusion passes. Every
  intermediate counts as a trip to memory there, so its bytes are an upper bound on what
  an H100 would move.
- The same program compiled for this CPU (`Compiled.cost_analysis()`): bytes after fusion,
  a nearer guess at the traffic that remains (GPU fusion differs in detail).
Each is taken at 12 and 24 months and differenced, so that the per-month cost excludes the
setup (parameter draws, the start's state). Two programs: the simulation with the pass-A
reducer (one counting pass: histograms, moments, extremes) and with `materialize` (every
value written out, as a lockstep month would hold them).

The roofline: time = max(FLOPs / 67 TFLOP/s (fp32, no tensor cores), bytes / 3.35 TB/s),
beside the RNG floor (normals a trajectory-month over ~1e12 normals/s). The ratio of FLOPs
to bytes says which bound limits the loop (the H100's ridge point is 67e12 / 3.35e12 = 20
FLOPs a byte).
"""
from __future__ import annotations

import argparse
import datetime as dt
import platform
from pathlib import Path

import jax
import jax.numpy as jnp

import forecast
from forecast.run import N_BINS
from kernels import output_sizes, run_chunk
from kernels.state import noise_size

README = Path(__file__).with_name("README.md")
H100 = {"flops": 67e12, "bytes": 3.35e12, "normals": 1e12}
BATCH = 4096  # the program's batch: costs are per trajectory, so any size gives the same ratios
MONTHS = (12, 24)
TARGET = (10_000_000, 120)  # the GPU target: 1e7 trajectories x 120 months
MARK = "<!-- table:roofline:{end} -->"


def _program(sc, months, reducer, config):
    sc = forecast.scenario.with_months(sc, months)
    n_series = sum(output_sizes(len(sc.regions)))
    consts = (jnp.zeros((months, n_series)), jnp.full((months, n_series), 10.0)) if reducer == "pass_a" else ()
    return run_chunk.trace(jax.random.key(0), sc.prior, 0, BATCH, consts, batch_size=BATCH, n_months=months,
                           reducer=reducer, config=config)


def _costs(analysis) -> dict:
    a = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
    return {k: float(a.get(k, 0.0)) for k in ("flops", "transcendentals", "bytes accessed")}


def per_trajectory_month(sc, reducer, config, compiled: bool) -> dict:
    """FLOPs, transcendentals and bytes per trajectory-month: the 24-month program's cost
    minus the 12-month one's, over 12 x BATCH trajectory-months."""
    out = []
    for months in MONTHS:
        traced = _program(sc, months, reducer, config)
        if compiled:
            out.append(_costs(traced.lower().compile().cost_analysis()))
        else:
            out.append(_costs(traced.lower(lowering_platforms=("cuda",)).cost_analysis()))
    steps = (MONTHS[1] - MONTHS[0]) * BATCH
    return {k: (out[1][k] - out[0][k]) / steps for k in out[0]}


def normals_per_trajectory_month(n_regions: int) -> int:
    """kernels.simulate.month_noise: the market shocks, two observation draws per region and
    ten tail draws."""
    return noise_size(n_regions) + 2 * n_regions + 10


def estimate(cost: dict, normals: int, n: int, months: int) -> dict:
    steps = n * months
    t = {"compute": cost["flops"] * steps / H100["flops"], "memory": cost["bytes accessed"] * steps / H100["bytes"],
         "rng": normals * steps / H100["normals"]}
    return dict(t, bound=max(t, key=t.get), seconds=max(t.values()),
                intensity=cost["flops"] / max(cost["bytes accessed"], 1.0))


def table() -> str:
    sc = forecast.load("baseline", calibration="none")
    normals = normals_per_trajectory_month(len(sc.regions))
    n, months = TARGET
    rows = []
    for label, reducer, config in (("simulation + pass-A reducer", "pass_a", (N_BINS,)),
                                   ("simulation, every value written", "materialize", ())):
        for where, compiled in (("CUDA, before fusion", False), ("CPU, after fusion", True)):
            c = per_trajectory_month(sc, reducer, config, compiled)
            e = estimate(c, normals, n, months)
            rows.append(f"| {label} | {where} | {c['flops']:,.0f} | {c['transcendentals']:,.0f} | "
                        f"{c['bytes accessed']:,.0f} | {e['intensity']:.2f} | {e['compute']:.2f} | {e['memory']:.2f} | "
                        f"{e['rng']:.3f} | {e['bound']} | {e['seconds']:.1f} |")
    head = (f"Roofline estimate for an H100 (67 TFLOP/s fp32, 3.35 TB/s, ~1e12 normals/s), per pass of "
            f"{n:.0e} trajectories x {months} months; costs per trajectory-month from XLA's cost analysis "
            f"({dt.date.today()}, jax {jax.__version__}, Python {platform.python_version()}, analysed on "
            f"{platform.machine()} with no GPU; {normals} normals a trajectory-month).\n\n"
            "| program | analysis | FLOPs | transcendentals | bytes | FLOPs/byte | compute s | memory s | rng s | "
            "bound | estimate s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
    return head + "\n".join(rows) + "\n"


def write(text: str):
    body = README.read_text()
    start, end = MARK.format(end="start"), MARK.format(end="end")
    block = f"{start}\n{text}{end}"
    if start in body:
        body = body[:body.index(start)] + block + body[body.index(end) + len(end):]
    else:
        body = body.rstrip("\n") + "\n\n## GPU estimate on paper (roofline)\n\n" + block + "\n"
    README.write_text(body)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="put the table in benchmarks/README.md")
    args = ap.parse_args(argv)
    text = table()
    print(text)
    if args.write:
        write(text)


if __name__ == "__main__":
    main()
