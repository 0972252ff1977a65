"""The `forecast` command: run, compare, answers, sensitivity, report, plot, export,
scenarios, check-data, calibrate and backtest (their shared checks, locks and exits:
forecast.cli_options)."""
from __future__ import annotations

import sys
import warnings
from contextlib import ExitStack
from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from forecast.cli_options import (FORCE, Main, fail, file_inputs, interrupted, save_results, write_or_fail,
                                  writing)
from forecast.files import atomic
from forecast.headline import HEADLINES, YEARS, fmt, years_present
from forecast.plots import available
from forecast.scenario import ScenarioError, builtin_descriptions, load

SUMMARY = tuple((h.name, h.sel, h.label) for h in HEADLINES)  # (variable, selection, label)
SUMMARY_YEARS = YEARS


def _quantiles(ctx, param, value):
    """--quantiles "0.05,0.5,0.95": increasing, in (0, 1), the median among them."""
    if value is None:
        from forecast.run import DEFAULT_QUANTILES

        return DEFAULT_QUANTILES
    try:
        q = tuple(float(x) for x in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give quantiles as numbers separated by commas, e.g. 0.05,0.5,0.95")
    if 0.5 not in q or any(not 0 < x < 1 for x in q) or list(q) != sorted(set(q)):
        raise click.BadParameter(f"{value!r}: quantiles must be increasing, distinct, within (0, 1) and include 0.5")
    return q


QUANTILES = click.option("--quantiles", default=None, callback=_quantiles, metavar="Q,Q,...",
                         help="band quantiles to compute, with the median [default: 0.05,0.1,0.25,0.5,0.75,0.9,0.95]")
SAMPLE = click.option("--sample", type=int, default=None, metavar="N",
                      help="keep the first N trajectories whole (outputs and parameters) in the file, for "
                      "distribution views; 0: none [default: 200, about 70 kB each per scenario over 120 months]")
DETAIL = click.option("--detail", is_flag=True, help="show each cell's mean and P(>0) in the summary too")


def _sample(sample) -> dict:
    """--sample N as a keyword for run/compare (unset: the library's default)."""
    return {} if sample is None else {"sample": sample}


def _compilation_cache(path):
    """Keep compiled kernels on disk, so a second run skips compilation (same programs)."""
    import os

    import jax

    path = str(path or os.environ.get("FORECAST_CACHE_DIR") or Path.home() / ".cache" / "ai-access-forecast")
    if path == "off":
        return
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


@click.group(cls=Main)
@click.version_option(package_name="ai-access-forecast", message="%(prog)s %(version)s")
def main():
    """Monte Carlo forecasts of AI access inequality."""




@main.command()
@click.argument("scenario", default="baseline")
@click.option("-n", "--n-trajectories", type=int, default=10_000, show_default=True, help="trajectories to simulate")
@click.option("--seed", type=int, default=0, show_default=True, help="random seed (same seed: same shocks)")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="netCDF file to write [default: SCENARIO.nc]")
@click.option("--chunk-size", type=int, default=None,
              help="trajectories per host round trip and progress step: a multiple of the backend's batch "
              "size (8192 on CPU, 262144 on GPU); results do not depend on it")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="where compiled kernels are kept between runs [default: ~/.cache/ai-access-forecast; "
              "env FORECAST_CACHE_DIR; 'off' disables]")
@click.option("--priors", "priors", default=None, metavar="POSTERIOR.nc|shipped|none",
              help="posterior file (from `forecast calibrate`) the calibrated parameters are drawn from; "
              "'none': hand-set priors [default: the scenario's `calibration`, 'shipped' for built-ins]")
@click.option("--allow-unconverged", is_flag=True, help="use a posterior whose fit did not pass its diagnostics")
@click.option("--devices", type=int, default=None,
              help="use the first N local devices [default: all GPUs/TPUs, or one CPU]; results do not "
              "depend on it")
@click.option("--resume", is_flag=True,
              help="continue an interrupted run from its checkpoint (OUTPUT.ckpt.npz); same bits as an "
              "uninterrupted run")
@click.option("--checkpoint-every", type=float, default=60.0, show_default=True,
              help="seconds between checkpoints (a run shorter than this writes none; 0: after every chunk and pass)")
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
    from forecast.run import run as run_scenario

    _compilation_cache(cache_dir)
    console = Console(stderr=True)
    writer = True
    multi = distributed or coordinator or num_processes or process_id is not None
    if multi:  # before anything starts JAX's backend
        from forecast.run import distributed as join

        me, count = join(coordinator, num_processes, process_id)
        writer = me == 0
        console.print(f"process {me} of {count}")
    sc, output = _scenario_and_output(scenario, priors, allow_unconverged, output, "{}.nc", console)
    with writing(console, output if writer else None, what="results (netCDF)", suffixes=(".nc",),
                  inputs=file_inputs(scenario, sc.calibration), force=force):
        ds = _simulate(run_scenario, sc, sc.name, console, checkpoint_for=output, resume=resume,
                       output=output if writer else None, n_trajectories=n_trajectories, seed=seed,
                       chunk_size=chunk_size, devices=devices, checkpoint_every=checkpoint_every, quantiles=quantiles,
                       **_sample(sample))
    if not writer:
        return
    console.print(summary_table(ds, detail=detail))
    _done(ds, output, console)


def _done(ds, output, console):
    bad = int(ds.attrs.get("nonfinite_trajectories", 0))
    if bad:
        n = int(ds.attrs["n_trajectories"])
        console.print(f"[yellow]note:[/yellow] {bad} of {n} trajectories ({bad / n:.3%}) produced non-finite values "
                      "and are left out of the bands (see each variable's nonfinite_values attribute)")
    console.print(f"wrote {output} ({ds.attrs['n_trajectories']} trajectories, {ds.attrs['wall_seconds']:.1f} s"
                  + (", resumed from a checkpoint" if ds.attrs.get("resumed_from_checkpoint") else "") + ")")


def _simulate(fn, what, label, console, checkpoint_for=None, resume=False, **kwargs):
    """fn(what, progress=..., **kwargs) under a progress bar with the rate and time left; a
    RunError or ScenarioError becomes a message and exit 2, Ctrl-C one line and exit 130,
    a warning (a checkpoint that could not be saved) a yellow line. With `checkpoint_for`
    (the output), the run checkpoints beside it (resume: continue from there; with
    nothing to continue, it starts afresh and says so)."""
    import time

    from forecast.run import RunError, check_seed

    if "seed" in kwargs:  # before the progress bar: a mistake is one clean message
        try:
            check_seed(kwargs["seed"])
        except RunError as e:
            fail(console, str(e))
    if checkpoint_for is not None:
        import jax

        from forecast.checkpoint import default_path, for_process

        kwargs.update(checkpoint=default_path(checkpoint_for))
        ck = for_process(kwargs["checkpoint"], jax.process_index(), jax.process_count())  # this process's file
        if resume and not ck.exists():
            console.print(f"[yellow]note:[/yellow] no checkpoint at {ck} (a run of one block of months writes none, "
                          "and a completed run removes its own): starting from the beginning", soft_wrap=True)
            resume = False
        kwargs.update(resume=resume)
        if ck.exists() and not resume:
            console.print(f"[yellow]note:[/yellow] {ck} holds an interrupted run; starting afresh (pass --resume to "
                          "continue it instead)", soft_wrap=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[rate]}"), TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("left"),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        compiling = f"{label}: compiling the kernel (first batch; a minute or less)"
        task = bar.add_task(compiling, total=None, rate="")
        seen = {"t0": None, "first": None, "told": False}
        n = kwargs.get("n_trajectories")

        def progress(done, total, phase):
            rate = ""
            now = time.perf_counter()
            if done > 0 and seen["t0"] is None:
                seen["t0"], seen["first"] = now, done  # after the first batch (and compilation)
            elif seen["t0"] is not None and done > seen["first"] and n:
                per_unit = (now - seen["t0"]) / (done - seen["first"])  # a unit: one batch through one block
                rate = f"{n / total / per_unit:,.0f} traj/s"
                left = per_unit * (total - done)
                if not seen["told"] and left > 60:
                    console.print(f"estimated time left: {left / 60:.1f} min ({total - done} batches of work)")
                    seen["told"] = True
            # Until a batch has come back the kernel is compiling: say so, not "0/N".
            bar.update(task, completed=done, total=total, rate=rate,
                       description=f"{label}: {phase}" if done > 0 else compiling)

        def show(message, category, filename, lineno, file=None, line=None):
            console.print(f"[yellow]warning:[/yellow] {message}", soft_wrap=True)

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.showwarning = show
                return fn(what, progress=progress, **kwargs)
        except (RunError, ScenarioError) as e:
            bar.stop()
            fail(console, str(e))
        except KeyboardInterrupt:
            bar.stop()
            where = kwargs.get("checkpoint")
            interrupted(f"; the work done so far is in {where}: run the same command with --resume to continue"
                         if where is not None and Path(where).exists() else "")


def _scenario_and_output(scenario, priors, allow_unconverged, output, default, console):
    """The scenario (a ScenarioError: message, exit 2) and the output path (default:
    `default` formatted with the scenario's name)."""
    try:
        sc = load(scenario, calibration=priors, allow_unconverged=allow_unconverged)
    except ScenarioError as e:
        fail(console, str(e))
    return sc, output or Path(default.format(sc.name))


WHAT = {".csv": "a CSV table", ".md": "markdown tables"}


CELL = 18  # characters of a summary cell: a 14-character label and three cells fit 80 columns


def band_cell(ds, var, at) -> str:
    """"median [lowest, highest quantile]" of one cell, in at most CELL characters: two
    significant digits, or one for the band's ends (then for the median too) where two
    would not fit ("2.9e5 [7e4, 1e6]", "1e15 [5e13, 8e16]")."""
    da = ds[var].sel(at).squeeze()
    q = {float(k): float(v) for k, v in zip(da["quantile"].values, da.values)}
    for mid, ends in ((2, 2), (2, 1), (1, 1)):
        text = f"{fmt(q[0.5], mid)} [{fmt(q[min(q)], ends)}, {fmt(q[max(q)], ends)}]"
        if len(text) <= CELL:
            break
    return text


def summary_table(ds, scenario=None, detail=False) -> Table:
    """Medians and bands of the headline metrics in January of the summary years, one
    "median [5%, 95%]" per cell (fits 80 columns); detail: the mean and, where zero is
    possible, P(>0) on a second line of each cell. scenario: which one, in a comparison."""
    name = scenario or ds.attrs["scenario"]
    qs = [float(q) for q in ds["quantile"].values]
    title = f"{name}: median [{min(qs):.0%}, {max(qs):.0%}]" + ("; mean; P(>0)" if detail else "")
    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    table.add_column("metric", no_wrap=True)  # headline labels are at most 14 characters
    years = years_present(ds)
    for y in years:
        table.add_column(str(y), justify="right", no_wrap=True)
    pick = {"scenario": scenario} if scenario is not None and "scenario" in ds.dims else {}
    for var, sel, label in SUMMARY:
        if not available(ds, var, sel):
            continue
        cells = []
        for y in years:
            at = dict(sel, **pick, time=f"{y}-01")
            cell = band_cell(ds, var, at)
            if detail:
                cell += f"\nmean {fmt(float(ds[f'{var}_mean'].sel(at).squeeze()))}"
                if f"{var}_p_positive" in ds:
                    cell += f"; P(>0) {float(ds[f'{var}_p_positive'].sel(at).squeeze()):.2f}"
            cells.append(cell)
        table.add_row(label, *cells)
    return table


def compare_table(ds) -> Table:
    """P(higher than the first scenario) of the summary metrics, per compared scenario."""
    first = ds.attrs["compared_against"]
    table = Table(title=f"P(higher than {first}) [P(equal)], paired", box=box.SIMPLE_HEAD, padding=(0, 1),
                  pad_edge=False)
    table.add_column("metric", no_wrap=True)
    table.add_column("scenario", no_wrap=True)
    years = years_present(ds)
    for y in years:
        table.add_column(str(y), justify="right", no_wrap=True)
    for var, sel, label in SUMMARY:
        if not available(ds, f"{var}_p_higher", sel):
            continue
        for other in ds["compared"].values:
            cells = []
            for y in years:
                at = dict(sel, compared=other, time=f"{y}-01")
                hi = float(ds[f"{var}_p_higher"].sel(at).squeeze())
                eq = float(ds[f"{var}_p_equal"].sel(at).squeeze())
                cells.append(f"{hi:.2f} [{eq:.2f}]")
            table.add_row(label, str(other), *cells)
    return table


@main.command()
@click.argument("scenarios", nargs=-1, required=True)
@click.option("-n", "--n-trajectories", type=int, default=10_000, show_default=True, help="trajectories to simulate")
@click.option("--seed", type=int, default=0, show_default=True, help="random seed (same seed: same shocks)")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("compare.nc"),
              show_default=True, help="netCDF file to write")
@click.option("--chunk-size", type=int, default=None, help="as for `forecast run`")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="as for `forecast run`")
@click.option("--priors", "priors", default=None, metavar="POSTERIOR.nc|shipped|none",
              help="posterior for every scenario [default: each scenario's `calibration`]")
@click.option("--allow-unconverged", is_flag=True, help="use a posterior whose fit did not pass its diagnostics")
@click.option("--devices", type=int, default=None, help="as for `forecast run`")
@click.option("--resume", is_flag=True, help="as for `forecast run`")
@click.option("--checkpoint-every", type=float, default=60.0, show_default=True, help="as for `forecast run`")
@QUANTILES
@SAMPLE
@DETAIL
@FORCE
def compare(scenarios, n_trajectories, seed, output, chunk_size, cache_dir, priors, allow_unconverged, devices,
            resume, checkpoint_every, quantiles, sample, detail, force):
    """Run SCENARIOS on the same trajectories and compare each with the first (paired).

    Writes every scenario's bands (dimension `scenario`) and, for each scenario after the
    first, the bands of the paired difference and P(higher), P(equal) per metric and month."""
    from forecast.run import compare as compare_scenarios

    _compilation_cache(cache_dir)
    console = Console(stderr=True)
    if len(scenarios) < 2:
        fail(console, "compare needs at least two scenarios")
    try:
        scs = [load(s, calibration=priors, allow_unconverged=allow_unconverged) for s in scenarios]
    except ScenarioError as e:
        fail(console, str(e))
    with writing(console, output, what="results (netCDF)", suffixes=(".nc",), force=force,
                  inputs=file_inputs(*scenarios, *(s.calibration for s in scs))):
        ds = _simulate(compare_scenarios, scs, "compare", console, checkpoint_for=output, resume=resume,
                       output=output, n_trajectories=n_trajectories, seed=seed, chunk_size=chunk_size,
                       devices=devices, checkpoint_every=checkpoint_every, quantiles=quantiles, **_sample(sample))
    for name in ds["scenario"].values:
        console.print(summary_table(ds, str(name), detail=detail))
    console.print(compare_table(ds))
    _done(ds, output, console)


@main.command()
@click.option("-n", "--n-trajectories", type=int, default=3000, show_default=True,
              help="trajectories per scenario")
@click.option("--seed", type=int, default=0, show_default=True, help="random seed (same seed: same worlds)")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("answers.md"),
              show_default=True, help="Markdown file to write (the shipped one: docs/answers.md)")
@click.option("--scenario", "only", multiple=True, metavar="NAME",
              help="compare only these built-in scenarios with baseline (repeat) [default: all]")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="as for `forecast run`")
@FORCE
def answers(n_trajectories, seed, output, only, cache_dir, force):
    """Answer the four questions (the trusted gap, the agentic squeeze, policies, the
    North/South gap) from paired runs of every built-in scenario against baseline, with the
    table of expected effects; writes Markdown (docs/answers.md is this command's output)."""
    from forecast.effects.answers import BASE, compared_scenarios, render, run_pairs, unmet, write

    _compilation_cache(cache_dir)
    console = Console(stderr=True)
    names = compared_scenarios()
    for name in only:
        if name not in names:
            fail(console, f"--scenario {name!r}: not a built-in scenario other than {BASE}; choose from {names}")
    with writing(console, output, what="the answers (Markdown)", suffixes=(".md",), force=force):
        pairs = _simulate(run_pairs, list(only) or None, "answers", console, n_trajectories=n_trajectories,
                          seed=seed)
        write_or_fail(console, output, write, render(pairs, n_trajectories, seed))
    for e in unmet(pairs):
        console.print(f"[yellow]not borne out in 2030:[/yellow] {e.scenario}: {e.where} expected {e.direction}")
    console.print(f"wrote {output}")


@main.command()
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
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="as for `forecast run`")
@click.option("--priors", "priors", default=None, metavar="POSTERIOR.nc|shipped|none",
              help="as for `forecast run`")
@click.option("--allow-unconverged", is_flag=True, help="use a posterior whose fit did not pass its diagnostics")
@FORCE
def sensitivity(scenario, metrics, n_base, seed, output, ungroup, parameters, resamples, confidence, year, cache_dir,
                priors, allow_unconverged, force):
    """Sobol' sensitivity indices of METRICs of SCENARIO at every month: which uncertain
    assumptions drive them (first-order and total indices with bootstrap intervals)."""
    from forecast.sensitivity import sensitivity as analyse

    _compilation_cache(cache_dir)
    console = Console(stderr=True)
    sc, output = _scenario_and_output(scenario, priors, allow_unconverged, output, "{}_sensitivity.nc", console)
    with writing(console, output, what="results (netCDF)", suffixes=(".nc",), force=force,
                  inputs=file_inputs(scenario, sc.calibration)):
        ds = _simulate(analyse, sc, f"{sc.name} sensitivity", console, metrics=list(metrics) or ["north_south_ratio"],
                       n=n_base, seed=seed, ungroup=ungroup, parameters=list(parameters) or None,
                       resamples=resamples, confidence=confidence)
        save_results(ds, output, console)
    for table in sensitivity_tables(ds, year):
        console.print(table)
    dropped = ds.attrs["dropped_base_samples"]
    console.print(f"wrote {output} ({ds.attrs['n_trajectories']} trajectories, {ds['parameter'].size} groups, "
                  f"{ds.attrs['wall_seconds']:.1f} s" + (f"; {dropped} non-finite base samples dropped" if dropped
                                                         else "") + ")")


def sensitivity_tables(ds, year, k=8):
    """Per metric (at its default cell): the k largest total indices in January of `year`
    (or the nearest year simulated), with first-order indices and intervals."""
    from rich.markup import escape

    from forecast.sensitivity import default_cell, metric_names, top

    years = sorted(set(ds["time"].dt.year.values.tolist()))
    year = min(years, key=lambda y: abs(y - year))
    conf = float(ds.attrs.get("confidence", 0.95))
    for metric in metric_names(ds):
        cell = default_cell(ds, metric)
        where = "".join(f" {v}" for v in cell.values())
        table = Table(title=f"{metric}{where}, January {year}: Sobol' indices [{conf:.0%} bootstrap interval]")
        for col in ("parameter", "total", "first-order"):
            table.add_column(col, justify="left" if col == "parameter" else "right")
        for name, row in top(ds, metric, dict(cell, time=f"{year}-01"), k).iterrows():
            table.add_row(escape(str(name)), f"{row.total:.3f} [{row.total_low:.3f}, {row.total_high:.3f}]",
                          f"{row['first']:.3f} [{row.first_low:.3f}, {row.first_high:.3f}]")
        yield table


def _open_results(path, console):
    import xarray as xr

    kinds = "a results file written by `forecast run`, `compare` or `sensitivity`"
    try:
        ds = xr.open_dataset(path, engine="h5netcdf").load()
    except FileNotFoundError:
        fail(console, f"results file {str(path)!r} does not exist")
    except Exception as e:  # not netCDF
        fail(console, f"{path}: not {kinds} ({e})")
    if "engine_version" not in ds.attrs or ("quantile" not in ds.dims and ds.attrs.get("kind") != "sensitivity"):
        fail(console, f"{path}: not {kinds}")
    return ds


@main.command()
@click.argument("results", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("report.html"),
              show_default=True, help="HTML file to write (self-contained: figures embedded)")
@click.option("--findings", "only_findings", is_flag=True,
              help="print the findings (sentences in calibrated-likelihood language) and write nothing")
@FORCE
def report(results, output, only_findings, force):
    """Write a self-contained HTML report of RESULTS (from `forecast run` or `forecast compare`):
    findings first, then tables, figures, scenario changes and provenance."""
    from forecast.findings import findings
    from forecast.report import write_report

    console = Console(stderr=True)
    if only_findings:
        ds = _open_results(results, console)
        for f in findings(ds):
            click.echo(f"- {f.text}")
        return
    with writing(console, output, what="the HTML report", suffixes=(".html", ".htm"), inputs=[results],
                 force=force):
        ds = _open_results(results, console)
        write_or_fail(console, output, write_report, ds)
    console.print(f"wrote {output}")


@main.command()
@click.argument("results", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("figures"),
              show_default=True, help="folder for the figures (PNG and SVG)")
@click.option("--at", default=None, metavar="YYYY[-MM]",
              help="month of the distribution views (a results file with a sample) [default: 2030, or the run's "
              "nearest year]")
@FORCE
def plot(results, output, at, force):
    """Write every standard figure of RESULTS as PNG and SVG into a folder."""
    from forecast.plots import month_at
    from forecast.report import write_figures

    console = Console(stderr=True)
    with writing(console, output, what="the figures", folder=True, inputs=[results], force=force):
        ds = _open_results(results, console)
        if at is not None:
            try:
                month_at(ds, at)
            except ValueError as e:
                fail(console, f"--at: {e}" if "outside" in str(e) else f"--at: {at!r} is not a year or YYYY-MM")
        paths = write_or_fail(console, output, lambda d, p: write_figures(d, p, at), ds)
    console.print(f"wrote {len(paths)} files to {output}")


@main.command()
@click.argument("results", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), default=None,
              help="tidy long CSV to write: one row per value")
@click.option("--parquet", "parquet_path", type=click.Path(path_type=Path), default=None,
              help="the same tidy table as a Parquet file")
@FORCE
def export(results, csv_path, parquet_path, force):
    """Export RESULTS as a tidy long table (variable, statistic, quantile, coordinates, value,
    units): --csv, --parquet or both."""
    from forecast.report import write_csv, write_parquet

    console = Console(stderr=True)
    if csv_path is None and parquet_path is None:
        fail(console, "export needs --csv FILE.csv, --parquet FILE.parquet or both")
    with ExitStack() as stack:
        if csv_path is not None:
            stack.enter_context(writing(console, csv_path, what="a CSV table", suffixes=(".csv",), inputs=[results],
                                         force=force))
        if parquet_path is not None:
            stack.enter_context(writing(console, parquet_path, what="a Parquet table", suffixes=(".parquet", ".pq"),
                                         inputs=[results, csv_path], force=force))
        ds = _open_results(results, console)
        for path, write in ((csv_path, write_csv), (parquet_path, write_parquet)):
            if path is not None:
                write_or_fail(console, path, write, ds)
                console.print(f"wrote {path}")


@main.command()
def scenarios():
    """List the built-in scenarios."""
    for name, description in builtin_descriptions().items():
        click.echo(f"{name:20s} {description}")


@main.command("check-data")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--accept-outliers", is_flag=True, help="accept values far off their series' trend (warned)")
def check_data(files, accept_outliers):
    """Validate usage-data FILES (CSV or Parquet; none: the shipped data) for calibration."""
    console = Console(stderr=True)
    data = _load_data(files, console, accept_outliers)
    table = Table(title=f"{len(data)} observations, all valid")
    for col in ("file", "metrics", "entities", "first", "last"):
        table.add_column(col)
    for name, g in data.groupby("file", sort=False):
        table.add_row(name, str(g["metric"].nunique()), str(g["entity"].nunique()),
                      str(g["date_parsed"].min().date()), str(g["date_parsed"].max().date()))
    Console().print(table)


def _load_data(files, console, accept_outliers=False):
    from priors.usage import DataError, load as load_data, shipped

    try:
        if not files:
            return shipped()
        return load_data(files, accept_outliers=accept_outliers,
                         warn=lambda m: console.print(f"[yellow]warning:[/yellow] {m}"))
    except DataError as e:
        fail(console, str(e))


def _settings(chains, warmup, samples, seed):
    from priors.fit import Settings

    for name, value, least in (("--chains", chains, 2), ("--warmup", warmup, 50), ("--samples", samples, 50)):
        if value < least:
            raise click.BadParameter(f"{value} is too few; at least {least}", param_hint=name)
    if not 0 <= seed < 2**32:
        raise click.BadParameter(f"{seed} is not a fit seed: a whole number in [0, 2**32)", param_hint="--seed")
    return Settings(chains=chains, warmup=warmup, samples=samples, seed=seed)


def _parallel_chains(chains):
    """One CPU device per chain, so chains run in parallel; must precede JAX's first use."""
    import numpyro

    numpyro.set_host_device_count(chains)


_FIT_OPTIONS = [
    click.option("--scenario", default="baseline", show_default=True,
                 help="scenario whose start, regions and hand-set priors the fit uses"),
    click.option("--chains", type=int, default=4, show_default=True, help="NUTS chains"),
    click.option("--warmup", type=int, default=500, show_default=True, help="warm-up iterations per chain"),
    click.option("--samples", type=int, default=1000, show_default=True, help="kept draws per chain"),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--models", default=None, metavar="NAME,...",
                 help="fit only these models (adoption, adoption_noise, demand, prices, compute, power, choice) "
                      "[default: all]"),
    click.option("--plots", type=click.Path(file_okay=False, path_type=Path), default=None,
                 help="folder for prior and posterior predictive check plots (one PNG per model)"),
    click.option("--accept-outliers", is_flag=True,
                 help="fit values far off their series' trend too (warned; refused by default)"),
]


def _fit_options(f):
    for option in reversed(_FIT_OPTIONS):
        f = option(f)
    return f


def _model_names(models: str | None) -> list[str]:
    """--models as a list (every model when not given); unknown names are refused."""
    from priors.models import MODELS

    if not models:
        return list(MODELS)
    names = [m.strip() for m in models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown or not names:
        raise click.BadParameter(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}", param_hint="--models")
    return names


def _fit(files, scenario, chains, warmup, samples, seed, models, cutoff, console, accept_outliers=False,
         data=None):
    from forecast.calibrate import calibrate as run_calibration
    from priors.models import CalibrationError

    _parallel_chains(chains)
    settings = _settings(chains, warmup, samples, seed)
    names = _model_names(models) if models else None
    if data is None:
        data = _load_data(files, console, accept_outliers)
    try:
        sc = load(scenario, calibration="none")
    except ScenarioError as e:
        fail(console, str(e))
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("calibrating", total=None)

        def progress(done, total, model):
            bar.update(task, completed=done, total=total, description=f"fitting {model}")

        try:
            return run_calibration(data, sc, settings, cutoff=cutoff, models=names, progress=progress)
        except CalibrationError as e:
            fail(console, str(e))


def moved_table(idata, scenario_name) -> Table:
    """What the fit moved: each calibrated entry's hand-set prior against its posterior."""
    from rich.markup import escape

    from forecast.calibrate import moved

    frame = moved(idata.posterior, load(scenario_name, calibration="none"))
    table = Table(title="what the data moved: median [5%, 95%], hand-set prior -> posterior; shift in prior "
                        "sds; posterior width / prior width")
    for col in ("model", "parameter", "prior", "posterior", "shift", "width"):
        table.add_column(col, justify="left" if col in ("model", "parameter") else "right")
    for _, r in frame.iterrows():
        name = r.parameter + (f"[{r.entry}]" if r.entry else "")
        table.add_row(r.model, escape(name), f"{fmt(r.prior_median)} [{fmt(r.prior_5)}, {fmt(r.prior_95)}]",
                      f"{fmt(r.posterior_median)} [{fmt(r.posterior_5)}, {fmt(r.posterior_95)}]",
                      f"{r['shift']:+.1f}", f"{r.narrowing:.2f}")
    return table


def diagnostics_table(fits) -> Table:
    table = Table(title="NUTS diagnostics (worst over every quantity)")
    for col in ("model", "max r_hat", "min bulk ESS", "min tail ESS", "divergences", "seconds", "verdict"):
        table.add_column(col, justify="right" if col not in ("model", "verdict") else "left")
    for name, f in fits.items():
        d = f.diagnostics
        verdict = "[green]converged[/green]" if f.converged else "[red]" + "; ".join(f.problems[:2]) + "[/red]"
        table.add_row(name, f"{d['max_rhat']:.4f}", f"{d['min_ess_bulk']:.0f}", f"{d['min_ess_tail']:.0f}",
                      str(d["divergences"]), f"{f.seconds:.1f}", verdict)
    return table


@main.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("posterior.nc"),
              show_default=True, help="posterior file to write")
@_fit_options
@click.option("--allow-unconverged", is_flag=True, help="write the posterior even if a diagnostic fails")
@FORCE
def calibrate(files, output, scenario, chains, warmup, samples, seed, models, plots, accept_outliers,
              allow_unconverged, force):
    """Fit the model's uncertain parameters to usage FILES (CSV/Parquet; none: the shipped data).

    Writes a posterior for `forecast run --priors`. A fit with r_hat > 1.01, bulk or tail
    ESS < 400 or any divergence is not converged: nothing is written unless
    --allow-unconverged is given (and runs then need --allow-unconverged too)."""
    import time

    from priors.posterior import plot_checks, save

    console = Console(stderr=True)
    t0 = time.perf_counter()
    with ExitStack() as stack:
        # Every output checked (and locked) before the fit, which takes minutes.
        stack.enter_context(writing(console, output, what="a posterior (netCDF)", suffixes=(".nc",),
                                     inputs=list(files), force=force))
        if plots:
            stack.enter_context(writing(console, plots, what="the check plots", folder=True, inputs=list(files),
                                         force=force))
        idata, fits = _fit(files, scenario, chains, warmup, samples, seed, models, None, console, accept_outliers)
        Console().print(diagnostics_table(fits))
        Console().print(moved_table(idata, scenario))
        converged = all(f.converged for f in fits.values())
        if plots:
            for path in write_or_fail(console, plots, plot_checks, idata):
                console.print(f"wrote {path}")
        if not converged and not allow_unconverged:
            console.print("[red]error:[/red] the fit did not converge (see the table); nothing written. "
                          "Try more --samples or --warmup, check the data, or pass --allow-unconverged.")
            sys.exit(1)
        write_or_fail(console, output, save, idata)
    note = "" if converged else " [yellow](NOT converged: runs need --allow-unconverged)[/yellow]"
    console.print(f"wrote {output} in {time.perf_counter() - t0:.1f} s{note}")


@main.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--cutoff", "cutoffs", multiple=True,
              default=("2024-07-01", "2025-01-01", "2025-04-01", "2025-07-01", "2026-01-01"),
              show_default=True, help="fit rows dated before this date only; repeat for a rolling origin")
@click.option("-n", "--n-trajectories", "--trajectories", "trajectories", type=click.IntRange(min=1024), default=4096,
              show_default=True, help="trajectories per cutoff for scoring the forecast's own outputs")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write one row per scored observation (forecast outputs) to this CSV")
@click.option("--markdown", "md_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the forecast backtest's tables (as in docs/calibration.md) to this .md file")
@_fit_options
@FORCE
def backtest(files, cutoffs, trajectories, csv_path, md_path, scenario, chains, warmup, samples, seed, models, plots,
             accept_outliers, force):
    """Fit on observations before each CUTOFF and score the later ones: the models'
    posterior predictive bands, then the forecast's own observation-level bands
    (`forecast.run` started at the cutoff from a posterior fitted before it)."""
    import pandas as pd

    console = Console(stderr=True)
    cuts = []
    for cutoff in cutoffs:
        try:
            cuts.append(pd.Timestamp(cutoff))
        except ValueError:
            raise click.BadParameter(f"{cutoff!r} is not a date (YYYY-MM-DD)", param_hint="--cutoff") from None
    with ExitStack() as stack:
        for path, suffix in ((csv_path, ".csv"), (md_path, ".md")):
            if path is not None:
                stack.enter_context(writing(console, path, what=WHAT[suffix], suffixes=(suffix,), inputs=list(files),
                                             force=force))
        _backtest(files, cuts, trajectories, csv_path, md_path, scenario, chains, warmup, samples, seed, models,
                  plots, accept_outliers, console)


def _backtest(files, cuts, trajectories, csv_path, md_path, scenario, chains, warmup, samples, seed, models, plots,
              accept_outliers, console):
    import pandas as pd

    import jax

    from forecast.backtest import backtest as score_outputs
    from forecast.backtest import summary
    from forecast.calibrate import fittable_models
    from priors.models import CalibrationError
    from priors.posterior import coverage, plot_checks, sites

    names = _model_names(models)
    data = _load_data(files, console, accept_outliers)
    try:
        hand_set = load(scenario, calibration="none")
    except ScenarioError as e:
        fail(console, str(e))
    for cut in cuts:
        jax.clear_caches()  # each origin compiles its own fits (forecast.backtest.backtest says why)
        fittable = fittable_models(data, hand_set, cut, names)
        for name, why in fittable.items():
            if why:
                console.print(f"{cut.date()}: {name} not backtested: {why}")
        ready = [n for n, why in fittable.items() if not why]
        if not ready:
            continue
        idata, fits = _fit(files, scenario, chains, warmup, samples, seed, ",".join(ready), cut, console,
                           accept_outliers, data=data)
        Console().print(diagnostics_table(fits))
        table = Table(title=f"model backtest: fitted before {cut.date()}, later observations inside the "
                            "posterior predictive bands")
        for col in ("model", "site", "later obs", "inside 50%", "inside 90%", "median 90% width"):
            table.add_column(col, justify="left" if col in ("model", "site") else "right")
        for model, site in sites(idata):
            c = coverage(idata, model, site)
            if c["n"]:
                inverse = idata.observed_data[f"{model}__{site}"].attrs.get("inverse")
                width = f"x{c['width90']:.3g}" if inverse == "exp" else f"{c['width90']:.3g}"
                table.add_row(model, site, str(c["n"]), f"{c['in50']:.0%}", f"{c['in90']:.0%}", width)
        Console().print(table)
        if plots:
            for path in plot_checks(idata, plots):
                console.print(f"wrote {path}")
    from forecast.backtest import SCORED

    chosen = {m.strip() for m in models.split(",")} if models else None
    scored = [name for name, spec in SCORED.items() if chosen is None or set(spec["models"]) <= chosen]
    if not scored:
        return
    try:
        scores = score_outputs(data, load(scenario, calibration="none"), [str(c.date()) for c in cuts],
                               n_trajectories=trajectories, seed=seed,
                               settings=_settings(chains, warmup, samples, seed),
                               progress=lambda msg: console.print(msg), series=scored)
    except (CalibrationError, ScenarioError) as e:
        fail(console, str(e))
    if scores.empty:
        console.print("no published figure after any cutoff maps to a forecast output; nothing scored")
        return
    table = Table(title="forecast backtest: later published figures against the forecast's observation-level "
                        "bands (adoption_observed, compute_observed, chip_power_observed, tokens_observed, list_price_observed); "
                        "'latent': inside the latent band")
    for col in ("cutoff", "series", "figure", "90% band", "50%", "90%", "latent", "score"):
        table.add_column(col, justify="left" if col in ("cutoff", "series") else "right")
    for _, r in scores.iterrows():
        latent = "-" if pd.isna(r.latent_inside90) else ("in" if r.latent_inside90 else "out")
        table.add_row(f"{r.cutoff}", f"{r.series} {r.date}", f"{r.observed:.3g}", f"{r.q05:.3g}-{r.q95:.3g}",
                      "in" if r.inside50 else "out", "in" if r.inside90 else "out", latent, f"{r.interval_score:.3g}")
    Console().print(table)
    summ = Table(title="forecast backtest summary (targets: 90% band 85-95%, 50% band 40-60%)")
    for col in ("model", "figures", "in 50%", "in 90%", "in latent 90%", "interval score", "score/figure",
                "width/median", "fits converged"):
        summ.add_column(col, justify="left" if col == "model" else "right")
    for _, r in summary(scores).iterrows():
        summ.add_row(r.model, str(r.observations), f"{r.inside50:.0%}", f"{r.inside90:.0%}",
                     "-" if pd.isna(r.latent_inside90) else f"{r.latent_inside90:.0%}",
                     "-" if pd.isna(r.interval_score) else f"{r.interval_score:.3g}",
                     f"{r.interval_score_relative:.2f}", f"{r.relative_width:.2f}",
                     "yes" if r.fits_converged else "[yellow]no[/yellow]")
    Console().print(summ)
    if csv_path is not None:
        write_or_fail(console, csv_path, lambda p: _atomic_text(p, scores.to_csv(index=False)))
        console.print(f"wrote {csv_path}")
    if md_path is not None:
        from forecast.backtest import markdown

        write_or_fail(console, md_path, lambda p: _atomic_text(p, markdown(scores)))
        console.print(f"wrote {md_path}")


def _atomic_text(path, text: str):
    with atomic(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
