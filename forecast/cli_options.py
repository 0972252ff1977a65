"""What every `forecast` command shares: the command group that turns Ctrl-C and refused
outputs into one message and an exit code, the output checks and locks, and the --force
option (forecast.cli uses them; docs/architecture in README, "Long runs").

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

from forecast.files import OutputError, check_output, exclusive, write_error

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
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except OutputError as e:
            fail(Console(stderr=True), str(e))
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


def fail(console, message):
    """A user's mistake: one message, exit code 2 (the message is text, not rich markup:
    "compute0[us]" keeps its brackets)."""
    from rich.markup import escape

    console.print(f"[red]error:[/red] {escape(str(message))}", soft_wrap=True)
    sys.exit(2)


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
            fail(console, str(e))
        yield


def write_or_fail(console, path, write, *args):
    """write(*args, path); a failed write (disk full, read-only) is a message naming the
    path, the reason and the bytes free on a full disk, and exit 2 (nothing half-written:
    the writers are atomic)."""
    try:
        return write(*args, path)
    except OSError as e:
        fail(console, write_error(path, e))


FORCE = click.option("--force", is_flag=True, help="replace an existing output")


def save_results(ds, output, console):
    """forecast.run.save (atomic); a failed write is a message with the bytes needed."""
    from forecast.run import RunError, save

    try:
        save(ds, output)
    except RunError as e:
        fail(console, str(e))
