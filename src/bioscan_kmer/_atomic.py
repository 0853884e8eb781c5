"""Writes that are all-or-nothing: a temporary file beside the target, then a rename."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block ends.

    If the block raises (or is interrupted), the temporary file is removed and ``path``
    keeps its previous content: a reader never sees a half-written file under the final
    name. The temporary name keeps the suffix, so writers that pick a format from it
    (matplotlib, pandas) still do. Callers that need durability fsync their file inside
    the block and call :func:`fsync_dir` afterwards.
    """
    path = Path(os.fspath(path))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
