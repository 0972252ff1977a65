"""What every `forecast` command shares: the command group that turns Ctrl-C and refused
outputs into one message and an exit code, the output checks and locks, the options
several commands take (--force, --quantiles, --sample, --detail, the fit options) and the
inputs they read (scenario, results file, usage data) (README, "Long runs").

Every command checks its outputs before any work (never one of its inputs, the right
suffix, not an existing file unless --force, a folder it can write), holds a lock on each
output while it works (one writer per output), and turns a user's mistake into one message
and exit code 2, and Ctrl-C at any moment into one line and exit code 130.
"""
from __future__ import annotations

import signal
import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path

import click
from rich.console import Console

from forecast.engine.files import OutputError, check_output, exclusive, write_error
from forecast.scenario import ScenarioError, load

INTERRUPTED = "interrupted: nothing written"


class Main(click.Group):
    """The command group, run so that Ctrl-C at any moment (even before a command starts)
    is one line and exit code 130, and an output refused anywhere is a message and 2,
    never a traceback or click's "Aborted!" with exit code 1."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not getattr(sys.unraisablehook, "redelivers", False):
            sys.unraisablehook = redeliver_interrupts(sys.unraisablehook)
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except (KeyboardInterrupt, click.exceptions.Abort):
            interrupted()
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except OutputError as e:
            Refused(str(e)).show()
            sys.exit(Refused.exit_code)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        sys.exit(0)


def redeliver_interrupts(previous):
    """An unraisable-exception hook that re-sends a Ctrl-C that landed inside a callback
    (jax's garbage-collection callback, for one), where Python would print it and drop it:
    the run would go on. Installed by the command group, whatever the entry point."""

    def hook(unraisable):
        if issubclass(unraisable.exc_type, KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # handled again at the next line of ordinary code
            return
        previous(unraisable)

    hook.redelivers = True
    return hook


def interrupted(tail: str = ""):
    """Ctrl-C: one line on stderr, exit code 130."""
    sys.stderr.write(f"{INTERRUPTED}{tail}\n")
    sys.stderr.flush()
    sys.exit(130)


class Refused(click.ClickException):
    """A user's mistake: one message on stderr, "error: ...", and exit code 2. Every
    command's refusals take this one path (the command group shows it)."""

    exit_code = 2

    def show(self, file=None):
        from rich.markup import escape

        # The message is text, not rich markup: "compute0[us]" keeps its brackets.
        Console(stderr=True).print(f"[red]error:[/red] {escape(self.message)}", soft_wrap=True)


def fail(message):
    """Refuse: raise Refused(message)."""
    raise Refused(str(message))


def file_inputs(*refs) -> list[Path]:
    """The files among scenario references, posterior references and paths."""
    out = []
    for ref in refs:
        if ref is None or str(ref) in ("none", "shipped", ""):
            continue
        path = Path(str(ref))
        if path.is_file():
            out.append(path)
    return out


@contextmanager
def writing(console, *outputs, **check):
    """Check each output (files.check_output with `check`'s what/suffixes/inputs/force/
    folder; a refusal is a message and exit 2) and hold its lock for the block."""
    with ExitStack() as stack:
        try:
            for out in outputs:
                if out is not None:
                    check_output(out, **check)
            for out in outputs:
                if out is not None:
                    stack.enter_context(exclusive(out))
        except OutputError as e:
            fail(str(e))
        yield


def write_or_fail(path, write, *args):
    """write(*args, path); a failed write (disk full, read-only) is a message naming the
    path, the reason and the bytes free on a full disk, and exit 2 (nothing half-written:
    the writers are atomic)."""
    try:
        return write(*args, path)
    except OSError as e:
        fail(write_error(path, e))


FORCE = click.option("--force", is_flag=True, help="replace an existing output")


def save_results(ds, output, console):
    """forecast.engine.run.save (atomic); a failed write is a message with the bytes needed."""
    from forecast.engine.run import RunError, save

    try:
        save(ds, output)
    except RunError as e:
        fail(str(e))


def _quantiles(ctx, param, value):
    """--quantiles "0.05,0.5,0.95": increasing, in (0, 1), the median among them."""
    if value is None:
        from forecast.engine.options import DEFAULT_QUANTILES

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


def sample_kwargs(sample) -> dict:
    """--sample N as a keyword for run/compare (unset: the library's default)."""
    return {} if sample is None else {"sample": sample}


def compilation_cache(path):
    """Keep compiled kernels on disk, so a second run skips compilation (same programs)."""
    import os

    import jax

    path = str(path or os.environ.get("FORECAST_CACHE_DIR") or Path.home() / ".cache" / "ai-access-forecast")
    if path == "off":
        return
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def scenario_and_output(scenario, priors, allow_unconverged, output, default, console):
    """The scenario (a ScenarioError: message, exit 2) and the output path (default:
    `default` formatted with the scenario's name)."""
    try:
        sc = load(scenario, calibration=priors, allow_unconverged=allow_unconverged)
    except ScenarioError as e:
        fail(str(e))
    return sc, output or Path(default.format(sc.name))


def open_results(path, console):
    import xarray as xr

    kinds = "a results file written by `forecast run`, `compare` or `sensitivity`"
    try:
        ds = xr.open_dataset(path, engine="h5netcdf").load()
    except FileNotFoundError:
        fail(f"results file {str(path)!r} does not exist")
    except Exception as e:  # not netCDF
        fail(f"{path}: not {kinds} ({e})")
    if "engine_version" not in ds.attrs or ("quantile" not in ds.dims and ds.attrs.get("kind") != "sensitivity"):
        fail(f"{path}: not {kinds}")
    return ds


def load_data(files, console, accept_outliers=False):
    from priors.usage import DataError, load as load_data, shipped

    try:
        if not files:
            return shipped()
        return load_data(files, accept_outliers=accept_outliers,
                         warn=lambda m: console.print(f"[yellow]warning:[/yellow] {m}"))
    except DataError as e:
        fail(str(e))


def fit_settings(chains, warmup, samples, seed):
    from priors.fit import Settings

    for name, value, least in (("--chains", chains, 2), ("--warmup", warmup, 50), ("--samples", samples, 50)):
        if value < least:
            raise click.BadParameter(f"{value} is too few; at least {least}", param_hint=name)
    if not 0 <= seed < 2**32:
        raise click.BadParameter(f"{seed} is not a fit seed: a whole number in [0, 2**32)", param_hint="--seed")
    return Settings(chains=chains, warmup=warmup, samples=samples, seed=seed)


def parallel_chains(chains):
    """One CPU device per chain, so chains run in parallel; must precede JAX's first use."""
    import numpyro

    numpyro.set_host_device_count(chains)


def options(*decorators):
    """One decorator applying several click options, listed in --help in the order given."""

    def apply(f):
        for option in reversed(decorators):
            f = option(f)
        return f

    return apply


CACHE_DIR = click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                         help="where compiled kernels are kept between runs [default: ~/.cache/ai-access-forecast; "
                              "env FORECAST_CACHE_DIR; 'off' disables]")
# How a run is carried out (forecast.engine.options.RunOptions): run and compare.
ENGINE = options(
    click.option("--chunk-size", type=int, default=None,
                 help="trajectories per host round trip and progress step: a multiple of the backend's batch "
                      "size (8192 on CPU, 262144 on GPU); results do not depend on it"),
    CACHE_DIR,
    click.option("--devices", type=int, default=None,
                 help="use the first N local devices [default: all GPUs/TPUs, or one CPU]; results do not "
                      "depend on it"),
    click.option("--resume", is_flag=True,
                 help="continue an interrupted run from its checkpoint (OUTPUT.ckpt.npz); same bits as an "
                      "uninterrupted run"),
    click.option("--checkpoint-every", type=float, default=60.0, show_default=True,
                 help="seconds between checkpoints (a run shorter than this writes none; 0: after every block "
                      "of months)"),
)
# Where calibrated parameters come from: run, compare, sensitivity.
PRIORS = options(
    click.option("--priors", "priors", default=None, metavar="POSTERIOR.nc|shipped|none",
                 help="posterior file (from `forecast calibrate`) the calibrated parameters are drawn from; "
                      "'none': hand-set priors [default: the scenario's `calibration`, 'shipped' for built-ins]"),
    click.option("--allow-unconverged", is_flag=True, help="use a posterior whose fit did not pass its diagnostics"),
)


FIT_OPTIONS = [
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


fit_options = options(*FIT_OPTIONS)




def model_names(models: str | None) -> list[str]:
    """--models as a list (every model when not given); unknown names are refused."""
    from priors.models import MODELS

    if not models:
        return list(MODELS)
    names = [m.strip() for m in models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown or not names:
        raise click.BadParameter(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}", param_hint="--models")
    return names
