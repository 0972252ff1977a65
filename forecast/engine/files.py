"""Files the commands write: atomic writes, output checks, one writer per output.

- atomic(path): a temporary file beside the target, renamed over it when complete, so a
  reader never sees a half-written file and a killed writer leaves no partial output.
- check_output(path, ...): before any work, refuse an output that is one of the command's
  inputs, has the wrong suffix for what is written, already exists (without force), or
  sits in a folder that does not exist or cannot be written.
- exclusive(path): an advisory lock beside the output for the whole command, so that two
  commands never write one output (or share one checkpoint); a dead holder's lock is free.
- write_error(path, error, needed): the message for a failed write (disk full, read-only),
  naming the path, the bytes needed and the bytes free.
"""
from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


class OutputError(ValueError):
    """An output that must not or cannot be written: the message says which and why."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(path: Path) -> list[Path]:
    """Remove temporary files of `path` left by processes that no longer run (a run killed
    while writing): `.NAME.PID.tmp` with a dead PID."""
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.tmp$")
    removed = []
    if path.parent.is_dir():
        for other in path.parent.iterdir():
            m = pattern.match(other.name)
            if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
                other.unlink(missing_ok=True)
                removed.append(other)
    return removed


@contextmanager
def atomic(path):
    """Yields a temporary path to write; renames it to `path` if the block completes and
    removes it otherwise (any exception, KeyboardInterrupt included)."""
    path = Path(path)
    remove_stale(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def writable_folder(folder: Path) -> str | None:
    """Why files cannot be created in `folder` (None if they can): a real probe, since
    permission bits say nothing to root and nothing about a read-only file system."""
    if not folder.is_dir():
        return f"the folder {str(folder)!r} does not exist"
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".forecast-probe-"):
            pass
    except OSError as e:
        return f"the folder {str(folder)!r} is not writable ({e.strerror or e})"
    return None


def check_output(path, *, what: str, suffixes: tuple[str, ...] = (), inputs=(), force: bool = False,
                 folder: bool = False) -> Path:
    """Refuse an output before any work is done; returns the path.

    what: what is written there ("results (netCDF)", "the HTML report"); suffixes: the
    allowed endings (the first is suggested); inputs: paths the command reads (an output
    that is one of them would destroy it: refused, whatever `force` says); force: replace
    an existing output; folder: the output is a folder of files (plot), which must not look
    like a file name and, if it exists, must be empty unless `force`."""
    path = Path(path)
    for source in inputs:
        if source is not None and _same(path, Path(source)):
            raise OutputError(f"{path}: this is also an input of the command ({source}); writing {what} there would "
                              "destroy it. Choose another output path")
    if folder:
        if path.exists() and not path.is_dir():
            raise OutputError(f"{path}: exists and is not a folder; {what} go in a folder (-o FOLDER)")
        if path.suffix.lower() in (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".html", ".nc", ".csv"):
            raise OutputError(f"{path}: looks like a file name, but {what} go in a folder (e.g. -o figures/)")
        if path.is_dir() and any(path.iterdir()) and not force:
            raise OutputError(f"{path}: the folder already holds files; pass --force to write {what} into it "
                              "(files of the same name are replaced)")
        parent = path if path.is_dir() else path.resolve().parent
    else:
        if suffixes and path.suffix.lower() not in suffixes:
            raise OutputError(f"{path}: {what} is written here; give a path ending in {suffixes[0]}")
        if path.is_dir():
            raise OutputError(f"{path}: is a folder; give a file name ending in {suffixes[0] if suffixes else ''}")
        if path.exists() and not force:
            raise OutputError(f"{path}: exists; pass --force to replace it (or choose another path)")
        parent = path.resolve().parent
    problem = writable_folder(parent)
    if problem:
        raise OutputError(f"{path}: {problem}")
    return path


def lock_path(path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextmanager
def exclusive(path):
    """Hold the advisory lock of output `path` (a file `.NAME.lock` beside it, holding the
    owner's PID) for the block; refuse with OutputError if another live process holds it.
    The kernel releases the lock of a process that dies, so a stale lock is simply taken
    over. The lock file is removed on release."""
    lock = lock_path(path)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise OutputError(f"{path}: cannot create its lock file {lock} ({e.strerror or e})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise OutputError(f"{path}: another forecast process (PID {holder}) is writing this output; wait for it "
                              f"to finish or stop it (its lock: {lock})") from None
        # The file we locked may have been removed by its previous holder meanwhile: then
        # lock the new one instead.
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield lock
    finally:
        try:
            os.unlink(lock)
        except FileNotFoundError:
            pass
        os.close(fd)


def free_bytes(path) -> int | None:
    try:
        return shutil.disk_usage(Path(path).resolve().parent).free
    except OSError:
        return None


def write_error(path, error: OSError, needed: int | None = None) -> str:
    """A message for a failed write of `path`: the reason, the bytes it needs and the
    bytes free on its disk."""
    reason = {errno.ENOSPC: "no space left on its disk", errno.EDQUOT: "the disk quota is used up",
              errno.EFBIG: "the file is larger than this process may write",
              errno.EROFS: "its file system is read-only", errno.EACCES: "permission denied",
              errno.EPERM: "permission denied"}.get(error.errno, error.strerror or str(error))
    size = f"; it needs about {_size(needed)}" if needed else ""
    free = free_bytes(path)
    room = f", {_size(free)} free there" if free is not None and error.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return f"could not write {path}: {reason}{size}{room}"


def _size(n: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n} TB"


def atomic_text(path, text: str):
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
