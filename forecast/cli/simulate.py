"""The commands that simulate: run, compare, answers and sensitivity."""
from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from forecast.cli.options import (CACHE_DIR, DETAIL, ENGINE, FORCE, PRIORS, QUANTILES, SAMPLE, compilation_cache, fail,
                                  file_inputs, sample_kwargs, save_results, scenario_and_output, write_or_fail, writing)
from forecast.cli.progress import done, with_progress
from forecast.present.tables import compare_table, sensitivity_tables, summary_table
from forecast.scenario import ScenarioError, load


@click.command()
@click.argument("scenario", default="baseline")
@click.option("-n", "--n-trajectories", type=int, default=10_000, show_default=True, help="trajectories to simulate")
@click.option("--seed", type=int, default=0, show_default=True, help="random seed (same seed: same shocks)")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="netCDF file to write [default: SCENARIO.nc]")
@ENGINE
@PRIORS
@click.option("--distributed", is_flag=True,
              help="one of several processes (jax.distributed): each simulates every P-th batch, process 0 "
              "writes the output; without the three options below the cluster is detected (SLURM, Open MPI)")
@click.option("--coordinator", default=None, metavar="HOST:PORT", help="process 0's address (with --distributed)")
@click.option("--num-processes", type=int, default=None, help="number of processes (with --distributed)")
@click.option("--process-id", type=int, default=None, help="this process's index, 0-based (with --distributed)")
@QUANTILES
@SAMPLE
@DETAIL
@FORCE
def run(scenario, n_trajectories, seed, output, chunk_size, cache_dir, priors, allow_unconverged, devices, resume,
        checkpoint_every, distributed, coordinator, num_processes, process_id, quantiles, sample, detail, force):
    """Run SCENARIO (a built-in name or a TOML path) and write its bands to a netCDF file.

    A run's state is checkpointed between blocks of months beside the output (OUTPUT.ckpt.npz,
    one file a process over several processes; removed once the output is written): after
    a kill or Ctrl-C, the same command with --resume continues where it stopped (README,
    "Long runs")."""
    from forecast.engine.run import run as run_scenario

    compilation_cache(cache_dir)
    console = Console(stderr=True)
    writer = True
    multi = distributed or coordinator or num_processes or process_id is not None
    if multi:  # before anything starts JAX's backend
        from forecast.engine.run import distributed as join

        me, count = join(coordinator, num_processes, process_id)
        writer = me == 0
        console.print(f"process {me} of {count}")
    sc, output = scenario_and_output(scenario, priors, allow_unconverged, output, "{}.nc", console)
    with writing(console, output if writer else None, what="results (netCDF)", suffixes=(".nc",),
                  inputs=file_inputs(scenario, sc.calibration), force=force):
        ds = with_progress(run_scenario, sc, sc.name, console, checkpoint_for=output, resume=resume,
                       output=output if writer else None, n_trajectories=n_trajectories, seed=seed,
                       chunk_size=chunk_size, devices=devices, checkpoint_every=checkpoint_every, quantiles=quantiles,
                       **sample_kwargs(sample))
    if not writer:
        return
    console.print(summary_table(ds, detail=detail))
    done(ds, output, console)


@click.command()
@click.argument("scenarios", nargs=-1, required=True)
@click.option("-n", "--n-trajectories", type=int, default=10_000, show_default=True, help="trajectories to simulate")
@click.option("--seed", type=int, default=0, show_default=True, help="random seed (same seed: same shocks)")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("compare.nc"),
              show_default=True, help="netCDF file to write")
@ENGINE
@PRIORS
@QUANTILES
@SAMPLE
@DETAIL
@FORCE
def compare(scenarios, n_trajectories, seed, output, chunk_size, cache_dir, priors, allow_unconverged, devices,
            resume, checkpoint_every, quantiles, sample, detail, force):
    """Run SCENARIOS on the same trajectories and compare each with the first (paired).

    Writes every scenario's bands (dimension `scenario`) and, for each scenario after the
    first, the bands of the paired difference and P(higher), P(equal) per metric and month."""
    from forecast.engine.run import compare as compare_scenarios

    compilation_cache(cache_dir)
    console = Console(stderr=True)
    if len(scenarios) < 2:
        fail("compare needs at least two scenarios")
    try:
        scs = [load(s, calibration=priors, allow_unconverged=allow_unconverged) for s in scenarios]
    except ScenarioError as e:
        fail(str(e))
    with writing(console, output, what="results (netCDF)", suffixes=(".nc",), force=force,
                  inputs=file_inputs(*scenarios, *(s.calibration for s in scs))):
        ds = with_progress(compare_scenarios, scs, "compare", console, checkpoint_for=output, resume=resume,
                       output=output, n_trajectories=n_trajectories, seed=seed, chunk_size=chunk_size,
                       devices=devices, checkpoint_every=checkpoint_every, quantiles=quantiles, **sample_kwargs(sample))
    for name in ds["scenario"].values:
        console.print(summary_table(ds, str(name), detail=detail))
    console.print(compare_table(ds))
    done(ds, output, console)


@click.command()
@click.option("-n", "--n-trajectories", type=int, default=3000, show_default=True,
              help="trajectories per scenario")
@click.option("--seed", type=int, default=0, show_default=True, help="random seed (same seed: same worlds)")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("answers.md"),
              show_default=True, help="Markdown file to write (the shipped one: docs/answers.md)")
@click.option("--scenario", "only", multiple=True, metavar="NAME",
              help="compare only these built-in scenarios with baseline (repeat) [default: all]")
@CACHE_DIR
@FORCE
def answers(n_trajectories, seed, output, only, cache_dir, force):
    """Answer the four questions (the trusted gap, the agentic squeeze, policies, the
    North/South gap) from paired runs of every built-in scenario against baseline, with the
    table of expected effects; writes Markdown (docs/answers.md is this command's output)."""
    from forecast.present.effects.answers import BASE, compared_scenarios, render, run_pairs, unmet, write

    compilation_cache(cache_dir)
    console = Console(stderr=True)
    names = compared_scenarios()
    for name in only:
        if name not in names:
            fail(f"--scenario {name!r}: not a built-in scenario other than {BASE}; choose from {names}")
    with writing(console, output, what="the answers (Markdown)", suffixes=(".md",), force=force):
        pairs = with_progress(run_pairs, list(only) or None, "answers", console, n_trajectories=n_trajectories,
                          seed=seed)
        write_or_fail(output, write, render(pairs, n_trajectories, seed))
    for e in unmet(pairs):
        console.print(f"[yellow]not borne out in 2030:[/yellow] {e.scenario}: {e.where} expected {e.direction}")
    console.print(f"wrote {output}")


@click.command()
@click.argument("scenario", default="baseline")
@click.option("--metric", "metrics", multiple=True, metavar="OUTPUT",
              help="output to analyse (repeat for several) [default: north_south_ratio]")
@click.option("--n-base", type=int, default=4096, show_default=True,
              help="base samples, a power of two; the engine runs n x (groups + 2) trajectories")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the design and the process noise")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="netCDF file to write [default: SCENARIO_sensitivity.nc]")
@click.option("--ungroup", is_flag=True, help="one index per parameter entry (per region or tier), not per name")
@click.option("--parameter", "parameters", multiple=True, metavar="NAME",
              help="give only these parameters groups of their own (repeatable); the other uncertain "
              "parameters are pooled in one group (fewer trajectories)")
@click.option("--resamples", type=int, default=200, show_default=True, help="bootstrap resamples for the intervals")
@click.option("--confidence", type=float, default=0.95, show_default=True, help="level of the bootstrap intervals")
@click.option("--year", type=int, default=2030, show_default=True, help="year (January) of the printed table")
@CACHE_DIR
@PRIORS
@FORCE
def sensitivity(scenario, metrics, n_base, seed, output, ungroup, parameters, resamples, confidence, year, cache_dir,
                priors, allow_unconverged, force):
    """Sobol' sensitivity indices of METRICs of SCENARIO at every month: which uncertain
    assumptions drive them (first-order and total indices with bootstrap intervals)."""
    from forecast.analysis.sensitivity import sensitivity as analyse

    compilation_cache(cache_dir)
    console = Console(stderr=True)
    sc, output = scenario_and_output(scenario, priors, allow_unconverged, output, "{}_sensitivity.nc", console)
    with writing(console, output, what="results (netCDF)", suffixes=(".nc",), force=force,
                  inputs=file_inputs(scenario, sc.calibration)):
        ds = with_progress(analyse, sc, f"{sc.name} sensitivity", console, metrics=list(metrics) or ["north_south_ratio"],
                       n=n_base, seed=seed, ungroup=ungroup, parameters=list(parameters) or None,
                       resamples=resamples, confidence=confidence)
        save_results(ds, output, console)
    for table in sensitivity_tables(ds, year):
        console.print(table)
    dropped = ds.attrs["dropped_base_samples"]
    console.print(f"wrote {output} ({ds.attrs['n_trajectories']} trajectories, {ds['parameter'].size} groups, "
                  f"{ds.attrs['wall_seconds']:.1f} s" + (f"; {dropped} non-finite base samples dropped" if dropped
                                                         else "") + ")")
