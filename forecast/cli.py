"""The `forecast` command: run scenarios, list built-ins."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from forecast.scenario import ScenarioError, builtin_descriptions, load

SUMMARY = (  # (variable, selection, label)
    ("north_south_ratio", {}, "North/South tokens per capita"),
    ("access_gini", {}, "access Gini"),
    ("unmet_share", {}, "unmet frontier demand"),
    ("price", {"tier": "consumer"}, "consumer price, USD/1M"),
    ("capability_lag", {"region": "global_south", "tier": "consumer"}, "South consumer lag, months"),
)
SUMMARY_YEARS = (2027, 2030, 2035)


def _compilation_cache(path):
    """Keep compiled kernels on disk, so a second run skips compilation (same programs)."""
    import os

    import jax

    path = str(path or os.environ.get("FORECAST_CACHE_DIR") or Path.home() / ".cache" / "ai-access-forecast")
    if path == "off":
        return
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


@click.group()
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
def run(scenario, n_trajectories, seed, output, chunk_size, cache_dir):
    """Run SCENARIO (a built-in name or a TOML path) and write its bands to a netCDF file."""
    from forecast.run import RunError, run as run_scenario, save

    _compilation_cache(cache_dir)
    console = Console(stderr=True)
    try:
        sc = load(scenario)
    except ScenarioError as e:
        console.print(f"[red]error:[/red] {e}")
        sys.exit(2)
    output = output or Path(f"{sc.name}.nc")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(f"{sc.name}: compiling", total=None)

        def progress(done, total, phase):
            bar.update(task, completed=done, total=total, description=f"{sc.name}: {phase}")

        try:
            ds = run_scenario(sc, n_trajectories=n_trajectories, seed=seed, chunk_size=chunk_size,
                              progress=progress)
        except (RunError, ScenarioError) as e:
            console.print(f"[red]error:[/red] {e}")
            sys.exit(2)
    save(ds, output)
    console.print(summary_table(ds))
    console.print(f"wrote {output} ({ds.attrs['n_trajectories']} trajectories, {ds.attrs['wall_seconds']:.1f} s)")


def summary_table(ds) -> Table:
    """Medians and 90% bands of a few key metrics in January of the summary years."""
    table = Table(title=f"{ds.attrs['scenario']}: median [5%, 95%]")
    table.add_column("metric")
    years = [y for y in SUMMARY_YEARS if str(y) in set(ds.time.dt.year.astype(str).values)]
    for y in years:
        table.add_column(str(y), justify="right")
    for var, sel, label in SUMMARY:
        cells = []
        for y in years:
            da = ds[var].sel(sel).sel(time=f"{y}-01").squeeze()
            q = {float(k): float(v) for k, v in zip(da["quantile"].values, da.values)}
            cells.append(f"{_fmt(q[0.5])} [{_fmt(q[0.05])}, {_fmt(q[0.95])}]")
        table.add_row(label, *cells)
    return table


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.2e}"


@main.command()
def scenarios():
    """List the built-in scenarios."""
    for name, description in builtin_descriptions().items():
        click.echo(f"{name:20s} {description}")


if __name__ == "__main__":
    main()


@main.command("check-data")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
def check_data(files):
    """Validate usage-data FILES (CSV or Parquet; none: the shipped data) for calibration."""
    from priors.usage import DataError, load, shipped

    console = Console(stderr=True)
    try:
        data = load(files) if files else shipped()
    except DataError as e:
        console.print(f"[red]error:[/red] {e}")
        sys.exit(2)
    table = Table(title=f"{len(data)} observations, all valid")
    for col in ("file", "metrics", "entities", "first", "last"):
        table.add_column(col)
    for name, g in data.groupby("file", sort=False):
        table.add_row(name, str(g["metric"].nunique()), str(g["entity"].nunique()),
                      str(g["date_parsed"].min().date()), str(g["date_parsed"].max().date()))
    Console().print(table)
