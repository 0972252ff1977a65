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
XLA's cost analysis counts a while loop's body once, whatever its trip count, so one month
of the loop's body (every trajectory's step and the reducer) is analysed on its own, over
BATCH trajectories; the setup (parameter draws, the start's state) is left out. Two
bodies: the simulation with the lockstep
reducer (every value written out, with exact counts and moments) and with `materialize`
(every value written out, nothing else).

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
from kernels.state import noise_size

README = Path(__file__).with_name("README.md")
H100 = {"flops": 67e12, "bytes": 3.35e12, "normals": 1e12}
BATCH = 4096  # the program's batch: costs are per trajectory, so any size gives the same ratios
TARGET = (10_000_000, 120)  # the GPU target: 1e7 trajectories x 120 months
MARK = "<!-- table:roofline:{end} -->"


def _month(sc, reducer):
    """One month of the loop's body over BATCH trajectories (kernels.run_chunk's `body`):
    every trajectory's step, its values and their bin-space transform, and the reducer.
    XLA's cost analysis counts a while loop's body once whatever its trip count, so the
    body is analysed alone."""
    from kernels import keys, reduce
    from kernels.month import flatten, init, month_noise, step
    from kernels.simulate import log_scale_mask

    n_regions = len(sc.regions)
    log_mask = log_scale_mask(n_regions)
    n_series = int(log_mask.shape[0])
    index = jnp.arange(BATCH, dtype=jnp.int32)
    traj_keys = jax.vmap(keys.trajectory_key, in_axes=(None, 0))(jax.random.key(0), index)
    params, state = jax.eval_shape(lambda k, pr: jax.vmap(init, in_axes=(0, None))(k, pr), traj_keys, sc.prior)
    dtype = jnp.float32

    def one(p, st, t, key):
        new, out = step(p, st, t, month_noise(key, t, n_regions, dtype))
        return new, flatten(out, dtype)

    def body(p, st, x0, t, k, lo, inv_w):
        st, out = jax.vmap(one, in_axes=(0, 0, None, 0))(p, st, t, k)
        out = jax.lax.optimization_barrier(out)
        valid = jnp.ones((BATCH,), bool)
        return st, reduce.REDUCERS[reducer](out, x0, valid)

    spec = jax.ShapeDtypeStruct
    return jax.jit(body).trace(params, state, spec((BATCH, n_series), dtype), spec((), jnp.int32),
                               jax.eval_shape(lambda: traj_keys), spec((n_series,), dtype), spec((n_series,), dtype))


def _costs(analysis) -> dict:
    a = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
    return {k: float(a.get(k, 0.0)) for k in ("flops", "transcendentals", "bytes accessed")}


def per_trajectory_month(sc, reducer, compiled: bool) -> dict:
    """FLOPs, transcendentals and bytes per trajectory-month: one month's body over BATCH."""
    traced = _month(sc, reducer)
    if compiled:
        cost = _costs(traced.lower().compile().cost_analysis())
    else:
        cost = _costs(traced.lower(lowering_platforms=("cuda",)).cost_analysis())
    return {k: v / BATCH for k, v in cost.items()}


def floor_bytes(sc) -> dict:
    """The least a trajectory-month must move with perfect fusion: its state read and
    written, its parameters read, its values (and their bin-space copy, kept behind the
    loop's barrier) written and read once by the reducer."""
    from kernels import keys
    from kernels.month import init
    from kernels.simulate import log_scale_mask

    key = keys.trajectory_key(jax.random.key(0), jnp.int32(0))
    params, state = jax.eval_shape(init, key, sc.prior)
    size = lambda tree: sum(int(x.size) * x.dtype.itemsize for x in jax.tree.leaves(tree))  # noqa: E731
    values = int(log_scale_mask(len(sc.regions)).shape[0]) * 4
    return {"flops": 0.0, "transcendentals": 0.0, "bytes accessed": float(2 * size(state) + size(params) + 4 * values)}


def normals_per_trajectory_month(n_regions: int) -> int:
    """kernels.month.month_noise: the market shocks, two observation draws per region,
    ten tail draws and adoption's R + 2 (rate shocks, common shock, edition shock)."""
    return noise_size(n_regions) + 2 * n_regions + 10 + n_regions + 2


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
    for label, reducer in (("simulation + lockstep reducer", "lockstep"), ("simulation, every value written", "materialize")):
        for where, compiled in (("CUDA, before fusion", False), ("CPU, after fusion", True)):
            c = per_trajectory_month(sc, reducer, compiled)
            e = estimate(c, normals, n, months)
            rows.append(f"| {label} | {where} | {c['flops']:,.0f} | {c['transcendentals']:,.0f} | "
                        f"{c['bytes accessed']:,.0f} | {e['intensity']:.2f} | {e['compute']:.2f} | {e['memory']:.2f} | "
                        f"{e['rng']:.3f} | {e['bound']} | {e['seconds']:.1f} |")
            flops = c["flops"]
    f = floor_bytes(sc)
    e = estimate(dict(f, flops=flops), normals, n, months)
    rows.append(f"| memory floor: state, parameters and values moved once | shapes | ({flops:,.0f}) | | "
                f"{f['bytes accessed']:,.0f} | {e['intensity']:.2f} | {e['compute']:.2f} | {e['memory']:.2f} | "
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
