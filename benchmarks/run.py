"""Benchmarks: the engine side by side with the NumPy reference, the RNG-only floor,
squigglepy and numpyro's Predictive, in one run. Writes the table to benchmarks/README.md.

    python -m benchmarks.run            # 1e4, 1e5, 1e6 trajectories (CPU: ~1 h)
    python -m benchmarks.run --quick    # small sizes, under a minute on a CPU
    python -m benchmarks.run --sizes 10000000 --only engine,rng   # the GPU box

Every method: one warm-up call whose extra time over the steady state is reported as
compile time, then the median of --repeats timed calls (each waits for the device).
Throughput is trajectory-steps (trajectory-months) per second.

- engine kernel: one pass of the simulation over all trajectories with the in-loop
  lockstep reducer (every value, exact counts and moments), every month of a batch in one
  call.
- engine bands: forecast.run, the whole job (the population in lockstep: the same
  simulation, plus the host's gathering, sorting and selection of every month's values).
- numpy: benchmarks/reference_numpy.py, the same model vectorised over trajectories,
  with np.quantile bands each month.
- rng floor: the engine's random numbers alone (the same keys, fold-ins and normals per
  trajectory and month), summed so nothing is optimised away.
- squigglepy: the compute-growth component only (a lognormal random walk with drift per
  region), as a squigglepy user would write it.
- numpyro: numpyro.infer.Predictive forward-simulating the same kernel step (priors as
  numpyro sample sites, monthly shocks as sample sites), vectorised over samples, keeping
  the last month.
"""
from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import forecast
from benchmarks import reference_numpy
from forecast.engine.options import WORKERS, batch_size
from kernels import keys, run_chunk
from kernels.params import SPECS, constrain
from kernels.month import flatten, initial_state, step
from kernels.state import noise_size, split_noise

README = Path(__file__).with_name("README.md")
MARK = "<!-- table:{tag}:{end} -->"
METHODS = ("engine", "bands", "numpy", "rng", "squigglepy", "numpyro")


def timed(fn, repeats):
    """(compile_s, median_s): the first call's excess over the steady median, the median."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        runs.append(time.perf_counter() - t0)
    med = statistics.median(runs)
    return max(first - med, 0.0), med


def scenario(months):
    sc = forecast.load("baseline", calibration="none")  # hand-set priors, as the reference uses
    return sc if months == sc.months else forecast.scenario.with_months(sc, months)


def engine_kernel(sc, n):
    """One pass over n trajectories with the lockstep reducer (every value and the exact
    counts and moments, left on the device), every month of a batch in one call."""
    batch = batch_size()
    key = jax.random.key(0)

    def call(start):
        ys, _ = run_chunk(key, sc.prior, start, min(batch, n - start), batch_size=batch,
                          n_months=sc.months, reducer="lockstep")
        return jax.block_until_ready(ys["count"])

    def go():  # WORKERS batches in flight, as forecast.run keeps them
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            return list(pool.map(call, range(0, n, batch)))
    return go


def engine_bands(sc, n):
    return lambda: forecast.run(sc, n_trajectories=n, seed=0)["compute"].values


def numpy_reference(sc, n):
    return lambda: reference_numpy.simulate(sc, n=n, seed=0)


def rng_floor(sc, n):
    """The engine's random numbers and nothing else, in the same batch shape."""
    batch = batch_size()
    n_par = sum(int(np.size(l)) for l in sc.prior.loc)
    r = len(sc.regions)

    @jax.jit
    def draws(seed_key, start):
        idx = start + jnp.arange(batch, dtype=jnp.int32)
        tk = jax.vmap(keys.trajectory_key, in_axes=(None, 0))(seed_key, idx)
        z0 = jax.vmap(lambda k: jax.random.normal(keys.stream_key(k, keys.PARAMS), (n_par,)))(tk)
        z1 = jax.vmap(lambda k: jax.random.normal(keys.stream_key(k, keys.ONCE), (r,)))(tk)

        def body(acc, t):
            z = jax.vmap(lambda k: jax.random.normal(keys.month_key(k, t), (noise_size(r),)))(tk)
            return acc + jnp.sum(z, axis=0), None
        acc, _ = jax.lax.scan(body, jnp.zeros(noise_size(r)), jnp.arange(sc.months))
        return jnp.sum(acc) + jnp.sum(z0) + jnp.sum(z1)

    key = jax.random.key(0)
    return lambda: [draws(key, s) for s in range(0, n, batch)]


def squigglepy_compute(sc, n):
    """Compute growth alone (drift g, volatility s per region), month by month, in squigglepy."""
    import squigglepy as sq

    prior = {s.name: (np.asarray(l), np.asarray(c)) for s, l, c in zip(SPECS, sc.prior.loc, sc.prior.scale)}
    loc0, sd0 = prior["compute0"]
    g_loc, g_sd = prior["growth0"]
    v_loc, v_sd = prior["compute_vol"]

    def go():
        regions = []
        for r in range(len(sc.regions)):
            log_k = np.log(sq.sample(sq.lognorm(norm_mean=float(loc0[r]), norm_sd=float(sd0[r])), n=n))
            g = sq.sample(sq.lognorm(norm_mean=float(g_loc[r]), norm_sd=float(g_sd[r])), n=n)
            vol = sq.sample(sq.lognorm(norm_mean=float(v_loc), norm_sd=float(v_sd)), n=n)
            for _ in range(sc.months):
                log_k = log_k + g / 12 + vol * np.sqrt(1 / 12) * sq.sample(sq.norm(mean=0, sd=1), n=n)
            regions.append(log_k)
        return np.stack(regions)
    return go


def numpyro_predictive(sc, n):
    """numpyro Predictive over a model whose sites are the priors and the monthly shocks."""
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import Predictive

    r = len(sc.regions)
    shapes = [np.shape(l) for l in sc.prior.loc]

    def model():
        values = []
        for spec, loc, scale, shape in zip(SPECS, sc.prior.loc, sc.prior.scale, shapes):
            z = numpyro.sample(spec.name, dist.Normal(0.0, 1.0).expand(shape).to_event(len(shape)))
            values.append(constrain(spec.support, jnp.where(scale > 0, loc + scale * z, loc)))
        p = type(sc.prior.loc)(*values)
        z_once = numpyro.sample("once", dist.Normal(0.0, 1.0).expand((r,)).to_event(1))
        z_adoption = numpyro.sample("adoption_start", dist.Normal(0.0, 1.0).expand((r + 1,)).to_event(1))
        state = initial_state(p, z_once, z_adoption)
        noise = numpyro.sample("noise", dist.Normal(0.0, 1.0).expand((sc.months, noise_size(r) + r + 1)).to_event(2))

        def body(s, tz):
            t, z = tz
            return step_with_noise(p, s, t, z)
        _, outs = jax.lax.scan(body, state, (jnp.arange(sc.months), noise))
        numpyro.deterministic("last", outs[-1])

    batch = min(n, 65_536)
    pred = Predictive(model, num_samples=batch, parallel=True, return_sites=["last"])

    def go():
        return [pred(jax.random.key(i))["last"] for i in range(-(-n // batch))]
    return go


def step_with_noise(p, s, t, z):
    """The kernel's month step fed a given noise vector (numpyro draws it as a site): the
    market shocks, then adoption's R + 1 rate shocks. The published-figure noise of the
    *_observed outputs is left at zero (the t's numerator zero and its chi-square ones, so
    that it is 0 and finite; the adoption edition's shock zero)."""
    r = p.compute0.shape[0]
    tails = jax.numpy.array([0, 1, 1, 1, 1, 0, 0, 0, 0, 0], z.dtype)
    n = noise_size(r)
    adoption = jax.numpy.concatenate([z[n:], jax.numpy.zeros((1,), z.dtype)])
    new, out = step(p, s, t, split_noise(z[:n], r)._replace(observe=jax.numpy.zeros((2, r), z.dtype),
                                                            observe_tails=tails, adoption=adoption))
    return new, flatten(out, z.dtype)


BUILDERS = {"engine": engine_kernel, "bands": engine_bands, "numpy": numpy_reference, "rng": rng_floor,
            "squigglepy": squigglepy_compute, "numpyro": numpyro_predictive}
LABELS = {"engine": "engine kernel (1 pass)", "bands": "engine bands (forecast.run)", "numpy": "NumPy reference",
          "rng": "RNG-only floor", "squigglepy": "squigglepy (compute only)", "numpyro": "numpyro Predictive"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="sizes 1e3 and 1e4, 24 months")
    ap.add_argument("--sizes", default=None, help="comma-separated trajectory counts")
    ap.add_argument("--months", type=int, default=None, help="months simulated (default 120; 24 with --quick)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default=",".join(METHODS), help=f"methods among {','.join(METHODS)}")
    ap.add_argument("--max-seconds", type=float, default=300.0,
                    help="skip a method at larger sizes once one call of it took longer than this")
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    ap.add_argument("--tag", default=None, help="which table in README.md to replace (default: device and sizes)")
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in (args.sizes or ("1000,10000" if args.quick else "10000,100000,1000000")).split(",")]
    months = args.months or (24 if args.quick else 120)
    methods = [m for m in args.only.split(",") if m]
    sc = scenario(months)
    rows, slow = [], set()
    for n in sizes:
        for m in methods:
            if m in slow:
                rows.append((n, m, None, None))
                continue
            try:
                fn = BUILDERS[m](sc, n)
                compile_s, run_s = timed(fn, 1 if n >= 1_000_000 and m != "rng" else args.repeats)
            except ImportError as e:
                print(f"{m}: skipped ({e})")
                slow.add(m)
                rows.append((n, m, None, None))
                continue
            rows.append((n, m, compile_s, run_s))
            print(f"{n:>9,} {LABELS[m]:<28} compile {compile_s:7.2f} s  run {run_s:8.3f} s  "
                  f"{n * months / run_s:10.3g} traj-steps/s", flush=True)
            if run_s > args.max_seconds:
                slow.add(m)
    table = render(rows, months)
    print(table)
    if not args.no_write:
        write(table, args.tag or f"{jax.devices()[0].platform}-{'quick' if args.quick else 'full'}-{months}")


def render(rows, months):
    dev = jax.devices()[0]
    import numpyro
    head = (f"Device: {dev.platform} ({dev.device_kind}), batch {batch_size()}; jax {jax.__version__}, numpy "
            f"{np.__version__}, numpyro {numpyro.__version__}, Python {platform.python_version()}; "
            f"{months} months; {dt.date.today().isoformat()}.\n\n")
    lines = ["| trajectories | method | compile s | run s (median) | traj-steps/s | time / engine kernel |",
             "|---:|---|---:|---:|---:|---:|"]
    by = {(n, m): r for n, m, _, r in rows}
    for n, m, c, r in rows:
        if r is None:
            lines.append(f"| {n:,} | {LABELS[m]} | - | skipped | - | - |")
            continue
        eng = by.get((n, "engine"))
        ratio = f"{r / eng:.1f}x" if eng and m != "engine" else ""
        lines.append(f"| {n:,} | {LABELS[m]} | {c:.2f} | {r:.3f} | {n * months / r:.3g} | {ratio} |")
    return head + "\n".join(lines) + "\n"


def write(table, tag):
    """Replace the README's table with this tag (or append it)."""
    begin, end = MARK.format(tag=tag, end="begin"), MARK.format(tag=tag, end="end")
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    if begin not in text:
        text = text.rstrip("\n") + f"\n\n{begin}\n{end}\n"
    a, b = text.index(begin) + len(begin), text.index(end)
    README.write_text(text[:a] + "\n" + table + text[b:])


if __name__ == "__main__":
    main()
