"""Writes that are all-or-nothing: a temporary file beside the target, then a rename.

A process killed outright (SIGKILL, the out-of-memory killer, a power cut) cannot remove
its temporary file. The first write of a process into a directory therefore removes the
temporaries that such processes left there (see :func:`remove_stale_temporaries`).
"""
from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["replacing", "fsync_dir", "remove_stale_temporaries", "check_output_path", "STALE_AFTER_S"]

# ".<name>.tmp-<pid>[<suffix>]": the names replacing() (and model/checkpoint.py) use.
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.tmp-(?P<pid>\d+)(?P<suffix>\.[^.]*)?")
# A temporary left untouched this long by a process that no longer exists is stale. The
# wait protects a writer on another host sharing the directory (its pid means nothing
# here) for as long as it keeps writing; a killed run's leftovers go on the next write.
STALE_AFTER_S = 60.0
_swept: set[str] = set()


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        # Another user's process (alive), or a number no process can have (not ours).
        return True
    return True


def remove_stale_temporaries(directory: str | os.PathLike, *, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove temporaries of atomic writes whose writing process is gone.

    A file counts as such a temporary when its name is ``.<name>.tmp-<pid>`` or
    ``.<name>.tmp-<pid><suffix>`` with ``<name>`` ending in ``<suffix>`` (the names
    :func:`replacing` makes), it is a regular file, no process with that pid exists on
    this host, and it was last modified more than ``older_than_s`` seconds ago.

    Returns
    -------
    list of Path
        The files removed. Errors (a directory that cannot be listed, a file removed by
        someone else meanwhile) are ignored: cleaning up must never fail a write.
    """
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP_NAME.fullmatch(entry.name)
        if m is None or (m["suffix"] and not m["name"].endswith(m["suffix"])):
            continue
        try:
            if not entry.is_file(follow_symlinks=False) or now - entry.stat().st_mtime < older_than_s:
                continue
            if _pid_alive(int(m["pid"])):
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def _sweep_once(directory: Path) -> None:
    key = os.path.abspath(directory)
    if key not in _swept:
        _swept.add(key)
        remove_stale_temporaries(directory)


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block ends.

    If the block raises (or is interrupted), the temporary file is removed and ``path``
    keeps its previous content: a reader never sees a half-written file under the final
    name. The temporary name keeps the suffix, so writers that pick a format from it
    (matplotlib, pandas) still do. Callers that need durability fsync their file inside
    the block and call :func:`fsync_dir` afterwards. The first call of a process for a
    directory removes stale temporaries of killed processes there.
    """
    path = Path(os.fspath(path))
    _sweep_once(path.parent)
    tmp = _temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # the directory itself was unusable: the original error says why
        raise


def check_output_path(path: str | os.PathLike, *, directory: bool = False, what: str | None = None) -> Path:
    """Check, before any work, that ``path`` can be created as a file (or a directory).

    Parameters
    ----------
    path : str or path-like
    directory : bool, default False
        ``path`` is to be a directory (it may exist as one).
    what : str, optional
        How the message names the path (e.g. the option ``-o``); default the path itself.

    Returns
    -------
    Path

    Raises
    ------
    bioscan_kmer.errors.UsageError
        ``path`` is an existing directory (for a file) or an existing non-directory (for
        a directory), or one of its parents exists and is not a directory.
    """
    from bioscan_kmer.errors import UsageError

    path = Path(os.fspath(path))
    label = f"{what} {str(path)!r}" if what else repr(str(path))
    if path.exists() or path.is_symlink():
        if directory and not path.is_dir():
            raise UsageError(f"{label} exists and is not a directory")
        if not directory and path.is_dir():
            raise UsageError(f"{label} is a directory; give a file name")
        return path
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{label}: {str(parent)!r} is a file, not a directory")
            break
    return path


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make a rename inside ``directory`` durable (POSIX); a no-op where unsupported."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
