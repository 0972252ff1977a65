"""The `forecast` command: run, compare, answers, sensitivity (cli.simulate); report,
plot, export, scenarios (cli.results); check-data, calibrate, backtest (cli.fit). What the
commands share, their one error path included: cli.options; the progress bar: cli.progress.
"""
import click

from forecast.cli import fit, results, simulate
from forecast.cli.options import Main


@click.group(cls=Main)
@click.version_option(package_name="ai-access-forecast", message="%(prog)s %(version)s")
def main():
    """Monte Carlo forecasts of AI access inequality."""


for command in (simulate.run, simulate.compare, simulate.answers, simulate.sensitivity, results.report, results.plot,
                results.export, results.scenarios, fit.check_data, fit.calibrate, fit.backtest):
    main.add_command(command)

__all__ = ["main"]
