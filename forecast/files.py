"""Atomic writes: a temporary file beside the target, renamed over it when complete."""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path


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
