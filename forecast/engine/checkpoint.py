"""Checkpoints of a run's accumulators, so that a killed run resumes where it stopped.

A run advances its population in blocks of months (forecast.engine.lockstep). Between blocks a
checkpoint holds the next month, the bands, counts and moments of the months done, the
sample so far, and every batch's Carry (its trajectories' parameters and state). Batch
results are pure functions of (seed, trajectory index, Carry) and merges are exact or done
in batch order, so a resumed run gives the same bits as an uninterrupted one.

The file is one deflated .npz (counts compress about 12-fold), written to a temporary file and
renamed (atomic), with a header that says which run it belongs to; a checkpoint from another
run is refused by name. A save that fails (disk full, folder made read-only) leaves the
previous checkpoint as it was, warns once with the path and the bytes needed, and the run
goes on without saving more.

A run over several processes keeps one file a process (`for_process`: OUTPUT.ckpt.p<i>of<P>.npz),
each with the common accumulators and that process's carries. Every process writes its
temporary file, then they agree (all written?) before any renames, so the files on disk are
of one month except across the instant of the renames (forecast.engine.run refuses to resume from
files of different months and says so); a failed write on one process stops saving on all.
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np

from forecast.engine.files import atomic, write_error

HEADER_FIELDS = (  # checked in this order; the first difference is named
    ("engine_version", "engine version"),
    ("scenario", "scenario"),
    ("priors", "posterior"),
    ("seed", "seed"),
    ("n_trajectories", "number of trajectories"),
    ("quantiles", "quantiles"),
    ("batch", "batch size"),
    ("sample", "sample size"),
    ("scenario_hash", "scenario contents (parameters, dimensions)"),
    ("processes", "process (index, count)"),
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used for this run: says which file and why."""


class CheckpointWarning(UserWarning):
    """A checkpoint could not be saved; the run goes on, the last saved one is kept."""


class Checkpoint:
    """path: the .npz file (None: no checkpointing); header: what identifies the run (its
    "processes" defaults to [0, 1]); every: seconds between saves within a sweep (0: after
    every chunk); resume: start from the file's contents (refused if it belongs to another
    run); agree: for a run over several processes, a function of this process's bool that
    returns True only where every process's is True (a collective every process calls at
    each save; None for one process)."""

    def __init__(self, path, header: dict, every: float = 60.0, resume: bool = False, agree=None):
        self.path = None if path is None else Path(path)
        header = {"processes": [0, 1], **header}
        self.header = {k: json.dumps(header[k], sort_keys=True) for k, _ in HEADER_FIELDS}
        self.agree = agree or (lambda ok: ok)
        self.every = float(every)
        self.data: dict[str, np.ndarray] = {}
        self.failed = False
        self.cost = 0.0  # seconds the last save took
        self.last = time.monotonic()
        if resume:
            if self.path is None or not self.path.exists():
                raise CheckpointError(f"nothing to resume: no checkpoint at {self.path}")
            self._load()

    def _load(self):
        try:
            with np.load(self.path, allow_pickle=False) as f:
                data = {k: f[k] for k in f.files}
        except Exception as e:  # truncated or not an npz: say so, never resume from it
            raise CheckpointError(f"{self.path}: not a readable checkpoint ({e})") from None
        theirs = {k[len("header/"):]: str(v) for k, v in data.items() if k.startswith("header/")}
        for key, label in HEADER_FIELDS:
            if theirs.get(key) != self.header[key]:
                raise CheckpointError(
                    f"{self.path} is from another run: its {label} is {_show(theirs.get(key))}, this run's is "
                    f"{_show(self.header[key])}; resume with the same settings, or remove the file to start afresh")
        self.data = {k: v for k, v in data.items() if not k.startswith("header/")}

    # ------------------------------------------------------------------ sweeps
    def done(self, phase: str) -> dict | None:
        """A finished sweep's merged accumulators, or None."""
        if f"{phase}#done" not in self.data:
            return None
        return self._prefixed(f"{phase}/acc/")

    def partial(self, phase: str):
        """(next batch start, accumulators so far, running state) of a sweep under way."""
        if f"{phase}#next" not in self.data:
            return None
        return int(self.data[f"{phase}#next"]), self._prefixed(f"{phase}/acc/"), self._prefixed(f"{phase}/state/")

    def due(self) -> bool:
        """Whether `progress` would write now: a caller whose state is costly to gather
        (every trajectory's carry) asks first."""
        return self.path is not None and not self.failed and self._due()

    def progress(self, phase: str, next_start: int, acc: dict, state: dict | None = None):
        """Record a sweep under way (written if `every` seconds have passed)."""
        if not self.due():
            return
        self._drop(phase)
        self.data[f"{phase}#next"] = np.asarray(next_start)
        self._put(f"{phase}/acc/", acc)
        self._put(f"{phase}/state/", state or {})
        self._write()

    def finish(self, phase: str, acc: dict):
        """Record a finished sweep (written if `every` seconds have passed since the last
        save, so that a run shorter than the interval writes no checkpoint at all; a later
        save includes it)."""
        if self.path is None or self.failed:
            return
        self._drop(phase)
        self.data[f"{phase}#done"] = np.asarray(1)
        self._put(f"{phase}/acc/", acc)
        if self._due():
            self._write()

    def remove(self):
        """The run finished: its checkpoint is no longer needed."""
        if self.path is not None and self.path.exists():
            self.path.unlink()

    # ------------------------------------------------------------------ storage
    def _prefixed(self, prefix):
        return {k[len(prefix):]: v.astype(np.int64) if v.dtype == np.int32 else v
                for k, v in self.data.items() if k.startswith(prefix)}

    def _put(self, prefix, arrays):
        for k, v in arrays.items():
            v = np.asarray(v)
            if v.dtype == np.int64 and (v.size == 0 or (v.min() >= -(2**31) and v.max() < 2**31)):
                v = v.astype(np.int32)  # counts: half the file, restored to int64 on load
            self.data[prefix + k] = v

    def _drop(self, phase):
        for k in [k for k in self.data if k.startswith(f"{phase}/") or k.startswith(f"{phase}#")]:
            del self.data[k]

    def _due(self) -> bool:
        """`every` seconds since the last save, and (unless every is 0: save always) ten
        times as long as the last save took, so that saving costs at most a tenth of the run
        (a 4-scenario comparison's checkpoint deflates ~3 GB of counts: ~10 s on 2 cores)."""
        gap = time.monotonic() - self.last
        return gap >= self.every and (self.every == 0 or gap >= 10.0 * self.cost)

    def _write(self):
        t0 = time.monotonic()
        arrays = {**{f"header/{k}": np.asarray(v) for k, v in self.header.items()}, **self.data}
        error = None
        try:
            with atomic(self.path) as tmp:
                try:
                    _savez_fast(tmp, arrays)
                except OSError as e:
                    error = e
                if not self.agree(error is None):  # every process wrote its file: all rename, or none
                    raise _NotSaved
        except (OSError, _NotSaved) as e:
            error = error or (e if isinstance(e, OSError) else None)
            if error is not None:
                needed = sum(np.asarray(v).nbytes for v in arrays.values())
                why = f"{write_error(self.path, error, needed)} (uncompressed)"
            else:
                why = f"another process could not save its checkpoint beside {self.path}"
            warnings.warn(f"{why}; the run goes on without saving checkpoints"
                          + (" (the last one saved is kept)" if self.path.exists() else ""),
                          CheckpointWarning, stacklevel=2)
            self.failed = True  # no more saves this run
        self.last = time.monotonic()
        self.cost = self.last - t0


class _NotSaved(Exception):
    """Another process's save failed: this one's temporary file is dropped too."""


def _savez_fast(path, arrays: dict):
    """An .npz (np.load reads it) deflated at level 1: counts compress about 12-fold
    (a 20,000-trajectory baseline's 413 MB of pass-B state to 33 MB) in a quarter of the
    time of np.savez_compressed's level (1.7 s against 6.1 s on a 2-core CPU)."""
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, value in arrays.items():
            with z.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)


def _show(value) -> str:
    if value is None:
        return "missing"
    try:
        v = json.loads(value)
    except (TypeError, ValueError):
        return repr(value)
    return repr(v[:16] + "...") if isinstance(v, str) and len(v) > 24 else repr(v)


def default_path(output: Path) -> Path:
    """Where `forecast run -o OUTPUT` keeps its checkpoint: beside the output."""
    output = Path(output)
    return output.with_name(f"{output.name}.ckpt.npz")


def for_process(path, index: int, count: int) -> Path:
    """Process `index` of `count`'s file for a run checkpointed at `path`: the path itself
    for one process, else NAME.p<index>of<count>.npz (beside it)."""
    path = Path(path)
    if count == 1:
        return path
    stem = path.name[:-len(".npz")] if path.name.endswith(".npz") else path.name
    return path.with_name(f"{stem}.p{index}of{count}.npz")


def for_run(path, header: dict, every: float, resume: bool, phase: str, index: int = 0, count: int = 1,
            gather=None) -> Checkpoint:
    """Process `index` of `count`'s Checkpoint for a run checkpointed at `path` (its own
    file, for_process). gather: with several processes, a collective that sums an int64
    array over them. The processes agree before any work: every one resumes `phase` from
    the same month, or all of them raise CheckpointError with the reason (a process whose
    file is missing or from another run, or files of different months: a run stopped
    while they were being renamed)."""
    problem, ck = None, None
    try:
        agree = None if count == 1 else (lambda ok: int(gather(np.asarray([int(bool(ok))]))[0]) == count)
        ck = Checkpoint(None if path is None else for_process(path, index, count),
                        dict(header, processes=[index, count]), every, resume, agree=agree)
    except CheckpointError as e:
        problem = str(e)
    if count == 1:
        if problem:
            raise CheckpointError(problem)
        return ck
    part = None if ck is None else ck.partial(phase)
    seen = np.zeros((2, count), np.int64)
    seen[:, index] = (problem is not None, 0 if part is None else part[0])
    seen = gather(seen)
    if seen[0].any():
        bad = ", ".join(str(i) for i in np.flatnonzero(seen[0]))
        raise CheckpointError(problem or f"the checkpoint of process {bad} cannot be used (its own message says why)")
    if len(set(seen[1].tolist())) > 1:
        at = ", ".join(f"process {i}: " + (f"month {m}" if m else "none") for i, m in enumerate(seen[1].tolist()))
        raise CheckpointError(f"the processes' checkpoints ({for_process(path, 0, count).name} and the others beside "
                              f"it) stop at different months ({at}): the run was stopped while they were being "
                              "written. Remove them to start afresh")
    return ck
