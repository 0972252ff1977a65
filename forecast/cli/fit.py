"""The commands that read usage data: check-data, calibrate and backtest."""
from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from forecast.cli.options import (FORCE, fail, fit_options, fit_settings, load_data, model_names, parallel_chains,
                                  write_or_fail, writing)
from forecast.engine.files import atomic_text
from forecast.present.tables import (diagnostics_table, model_backtest_table, moved_table, scores_summary_table,
                                     scores_table)
from forecast.scenario import ScenarioError, load


WHAT = {".csv": "a CSV table", ".md": "markdown tables"}


@click.command("check-data")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--accept-outliers", is_flag=True, help="accept values far off their series' trend (warned)")
def check_data(files, accept_outliers):
    """Validate usage-data FILES (CSV or Parquet; none: the shipped data) for calibration."""
    console = Console(stderr=True)
    data = load_data(files, console, accept_outliers)
    table = Table(title=f"{len(data)} observations, all valid")
    for col in ("file", "metrics", "entities", "first", "last"):
        table.add_column(col)
    for name, g in data.groupby("file", sort=False):
        table.add_row(name, str(g["metric"].nunique()), str(g["entity"].nunique()),
                      str(g["date_parsed"].min().date()), str(g["date_parsed"].max().date()))
    Console().print(table)


def _fit(files, scenario, chains, warmup, samples, seed, models, cutoff, console, accept_outliers=False,
         data=None):
    from forecast.analysis.calibrate import calibrate as run_calibration
    from priors.models import CalibrationError

    parallel_chains(chains)
    settings = fit_settings(chains, warmup, samples, seed)
    names = model_names(models) if models else None
    if data is None:
        data = load_data(files, console, accept_outliers)
    try:
        sc = load(scenario, calibration="none")
    except ScenarioError as e:
        fail(str(e))
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("calibrating", total=None)

        def progress(done, total, model):
            bar.update(task, completed=done, total=total, description=f"fitting {model}")

        try:
            return run_calibration(data, sc, settings, cutoff=cutoff, models=names, progress=progress)
        except CalibrationError as e:
            fail(str(e))


@click.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("posterior.nc"),
              show_default=True, help="posterior file to write")
@fit_options
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
            for path in write_or_fail(plots, plot_checks, idata):
                console.print(f"wrote {path}")
        if not converged and not allow_unconverged:
            console.print("[red]error:[/red] the fit did not converge (see the table); nothing written. "
                          "Try more --samples or --warmup, check the data, or pass --allow-unconverged.")
            sys.exit(1)
        write_or_fail(output, save, idata)
    note = "" if converged else " [yellow](NOT converged: runs need --allow-unconverged)[/yellow]"
    console.print(f"wrote {output} in {time.perf_counter() - t0:.1f} s{note}")


@click.command()
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
@fit_options
@FORCE
def backtest(files, cutoffs, trajectories, csv_path, md_path, scenario, chains, warmup, samples, seed, models, plots,
             accept_outliers, force):
    """Fit on observations before each CUTOFF and score the later ones: the models'
    posterior predictive bands, then the forecast's own observation-level bands
    (`forecast.engine.run` started at the cutoff from a posterior fitted before it)."""
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
    """The model backtest at each cutoff, then the forecast backtest (its tables, --csv and
    --markdown)."""
    names = model_names(models)  # a bad --models is refused before the data are read
    data = load_data(files, console, accept_outliers)
    try:
        hand_set = load(scenario, calibration="none")
    except ScenarioError as e:
        fail(str(e))
    for cut in cuts:
        _backtest_models(files, cut, data, hand_set, (scenario, chains, warmup, samples, seed), names, plots,
                         accept_outliers, console)
    scores = _backtest_forecast(data, hand_set, cuts, trajectories, fit_settings(chains, warmup, samples, seed), seed,
                                models, console)
    if scores is None:
        return
    if csv_path is not None:
        write_or_fail(csv_path, lambda p: atomic_text(p, scores.to_csv(index=False)))
        console.print(f"wrote {csv_path}")
    if md_path is not None:
        from forecast.analysis.backtest import markdown

        write_or_fail(md_path, lambda p: atomic_text(p, markdown(scores)))
        console.print(f"wrote {md_path}")


def _backtest_models(files, cut, data, hand_set, fit_args, names, plots, accept_outliers, console):
    """Fit the models fittable before `cut` and table their later observations' coverage."""
    import jax

    from forecast.analysis.calibrate import fittable_models
    from priors.posterior import plot_checks

    scenario, chains, warmup, samples, seed = fit_args
    jax.clear_caches()  # each origin compiles its own fits (forecast.analysis.backtest.backtest says why)
    fittable = fittable_models(data, hand_set, cut, names)
    for name, why in fittable.items():
        if why:
            console.print(f"{cut.date()}: {name} not backtested: {why}")
    ready = [n for n, why in fittable.items() if not why]
    if not ready:
        return
    idata, fits = _fit(files, scenario, chains, warmup, samples, seed, ",".join(ready), cut, console,
                       accept_outliers, data=data)
    Console().print(diagnostics_table(fits))
    Console().print(model_backtest_table(idata, cut))
    if plots:
        for path in plot_checks(idata, plots):
            console.print(f"wrote {path}")


def _backtest_forecast(data, hand_set, cuts, trajectories, settings, seed, models, console):
    """Score the forecast's own outputs at the cutoffs (the scored series whose models are
    among --models); None where nothing is scored."""
    from forecast.analysis.backtest import SCORED
    from forecast.analysis.backtest import backtest as score_outputs
    from priors.models import CalibrationError

    chosen = {m.strip() for m in models.split(",")} if models else None
    scored = [name for name, spec in SCORED.items() if chosen is None or set(spec["models"]) <= chosen]
    if not scored:
        return None
    try:
        scores = score_outputs(data, hand_set, [str(c.date()) for c in cuts], n_trajectories=trajectories, seed=seed,
                               settings=settings, progress=lambda msg: console.print(msg), series=scored)
    except (CalibrationError, ScenarioError) as e:
        fail(str(e))
    if scores.empty:
        console.print("no published figure after any cutoff maps to a forecast output; nothing scored")
        return None
    Console().print(scores_table(scores))
    Console().print(scores_summary_table(scores))
    return scores
