"""A long job under a progress bar: the rate and the time left, a user's mistake as one
message, Ctrl-C as one line (and where the work done so far is), warnings as yellow lines."""
from __future__ import annotations

import warnings
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from forecast.cli.options import fail, interrupted
from forecast.scenario import ScenarioError


def done(ds, output, console):
    bad = int(ds.attrs.get("nonfinite_trajectories", 0))
    if bad:
        n = int(ds.attrs["n_trajectories"])
        console.print(f"[yellow]note:[/yellow] {bad} of {n} trajectories ({bad / n:.3%}) produced non-finite values "
                      "and are left out of the bands (see each variable's nonfinite_values attribute)")
    console.print(f"wrote {output} ({ds.attrs['n_trajectories']} trajectories, {ds.attrs['wall_seconds']:.1f} s"
                  + (", resumed from a checkpoint" if ds.attrs.get("resumed_from_checkpoint") else "") + ")")


def with_progress(fn, what, label, console, checkpoint_for=None, resume=False, **kwargs):
    """fn(what, progress=..., **kwargs) under a progress bar with the rate and time left; a
    RunError or ScenarioError becomes a message and exit 2, Ctrl-C one line and exit 130,
    a warning (a checkpoint that could not be saved) a yellow line. With `checkpoint_for`
    (the output), the run checkpoints beside it (resume: continue from there; with
    nothing to continue, it starts afresh and says so)."""
    from forecast.engine.options import RunError, check_seed

    if "seed" in kwargs:  # before the progress bar: a mistake is one clean message
        try:
            check_seed(kwargs["seed"])
        except RunError as e:
            fail(str(e))
    if checkpoint_for is not None:
        kwargs.update(_checkpointing(checkpoint_for, resume, console))
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[rate]}"), TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("left"),
                  TimeRemainingColumn(), console=console, transient=True) as bar:

        def show(message, category, filename, lineno, file=None, line=None):
            console.print(f"[yellow]warning:[/yellow] {message}", soft_wrap=True)

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.showwarning = show
                return fn(what, progress=_reporter(bar, label, kwargs.get("n_trajectories"), console), **kwargs)
        except (RunError, ScenarioError) as e:
            bar.stop()
            fail(str(e))
        except KeyboardInterrupt:
            bar.stop()
            where = kwargs.get("checkpoint")
            interrupted(f"; the work done so far is in {where}: run the same command with --resume to continue"
                         if where is not None and Path(where).exists() else "")


def _checkpointing(output, resume, console) -> dict:
    """The run's checkpoint and resume keywords for an output, with a note where --resume
    finds nothing to continue or a checkpoint is about to be started afresh."""
    import jax

    from forecast.engine.checkpoint import default_path, for_process

    path = default_path(output)
    ck = for_process(path, jax.process_index(), jax.process_count())  # this process's file
    if resume and not ck.exists():
        console.print(f"[yellow]note:[/yellow] no checkpoint at {ck} (a run of one block of months writes none, "
                      "and a completed run removes its own): starting from the beginning", soft_wrap=True)
        resume = False
    if ck.exists() and not resume:
        console.print(f"[yellow]note:[/yellow] {ck} holds an interrupted run; starting afresh (pass --resume to "
                      "continue it instead)", soft_wrap=True)
    return {"checkpoint": path, "resume": resume}


def _reporter(bar, label, n, console):
    """The run's progress callback (done, total, phase) for a rich progress bar: "compiling"
    until the first batch is back, then the rate in trajectories a second, and once the
    time left estimated where it is over a minute."""
    import time

    compiling = f"{label}: compiling the kernel (first batch; a minute or less)"
    task = bar.add_task(compiling, total=None, rate="")
    seen = {"t0": None, "first": None, "told": False}

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

    return progress
