"""The commands that read a results file (report, plot, export) and `scenarios`."""
from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import click
from rich.console import Console

from forecast.cli.options import FORCE, fail, open_results, write_or_fail, writing
from forecast.scenario import builtin_descriptions


@click.command()
@click.argument("results", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("report.html"),
              show_default=True, help="HTML file to write (self-contained: figures embedded)")
@click.option("--findings", "only_findings", is_flag=True,
              help="print the findings (sentences in calibrated-likelihood language) and write nothing")
@FORCE
def report(results, output, only_findings, force):
    """Write a self-contained HTML report of RESULTS (from `forecast run` or `forecast compare`):
    findings first, then tables, figures, scenario changes and provenance."""
    from forecast.present.findings import findings
    from forecast.present.report import write_report

    console = Console(stderr=True)
    if only_findings:
        ds = open_results(results, console)
        for f in findings(ds):
            click.echo(f"- {f.text}")
        return
    with writing(console, output, what="the HTML report", suffixes=(".html", ".htm"), inputs=[results],
                 force=force):
        ds = open_results(results, console)
        write_or_fail(output, write_report, ds)
    console.print(f"wrote {output}")


@click.command()
@click.argument("results", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("figures"),
              show_default=True, help="folder for the figures (PNG and SVG)")
@click.option("--at", default=None, metavar="YYYY[-MM]",
              help="month of the distribution views (a results file with a sample) [default: 2030, or the run's "
              "nearest year]")
@FORCE
def plot(results, output, at, force):
    """Write every standard figure of RESULTS as PNG and SVG into a folder."""
    from forecast.present.plots import month_at
    from forecast.present.report import write_figures

    console = Console(stderr=True)
    with writing(console, output, what="the figures", folder=True, inputs=[results], force=force):
        ds = open_results(results, console)
        if at is not None:
            try:
                month_at(ds, at)
            except ValueError as e:
                fail(f"--at: {e}" if "outside" in str(e) else f"--at: {at!r} is not a year or YYYY-MM")
        paths = write_or_fail(output, lambda d, p: write_figures(d, p, at), ds)
    console.print(f"wrote {len(paths)} files to {output}")


@click.command()
@click.argument("results", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), default=None,
              help="tidy long CSV to write: one row per value")
@click.option("--parquet", "parquet_path", type=click.Path(path_type=Path), default=None,
              help="the same tidy table as a Parquet file")
@FORCE
def export(results, csv_path, parquet_path, force):
    """Export RESULTS as a tidy long table (variable, statistic, quantile, coordinates, value,
    units): --csv, --parquet or both."""
    from forecast.present.report import write_csv, write_parquet

    console = Console(stderr=True)
    if csv_path is None and parquet_path is None:
        fail("export needs --csv FILE.csv, --parquet FILE.parquet or both")
    with ExitStack() as stack:
        if csv_path is not None:
            stack.enter_context(writing(console, csv_path, what="a CSV table", suffixes=(".csv",), inputs=[results],
                                         force=force))
        if parquet_path is not None:
            stack.enter_context(writing(console, parquet_path, what="a Parquet table", suffixes=(".parquet", ".pq"),
                                         inputs=[results, csv_path], force=force))
        ds = open_results(results, console)
        for path, write in ((csv_path, write_csv), (parquet_path, write_parquet)):
            if path is not None:
                write_or_fail(path, write, ds)
                console.print(f"wrote {path}")


@click.command()
def scenarios():
    """List the built-in scenarios."""
    for name, description in builtin_descriptions().items():
        click.echo(f"{name:20s} {description}")
