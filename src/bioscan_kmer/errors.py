"""The user's mistakes, told apart from the package's bugs.

A command line reports a user error in one line and exits with code 2; anything else is
a bug and keeps its traceback. The line between the two is drawn here, once:

- every exception the package raises for a user's mistake (a bad option, a malformed or
  incomplete file, a table it cannot use, a corrupt shard directory) is a
  :class:`UserError`, directly or through a subclass (:class:`UsageError`,
  :class:`DataError`, ``bioscan_kmer.data.reading.DataFileError``,
  ``bioscan_kmer.data.shards.ShardError``, ...);
- operating-system errors about the user's paths (no such file, permission denied,
  not a directory, disk full) are the user's too;
- a plain ``ValueError``/``TypeError`` is not: it is either a bug or a library call with
  wrong arguments, and a command that passes user input to such a call converts the
  error where it knows what the input was (e.g. "column 'dna_barcode': row 3: ...").

``UserError`` subclasses ``ValueError``, so code that catches ``ValueError`` still works.
"""

from __future__ import annotations

import errno
import sys
from typing import Callable

__all__ = ["UserError", "UsageError", "DataError", "is_user_error", "one_line", "run_command"]


class UserError(ValueError):
    """Base of every error that is the user's mistake, not the package's."""


class UsageError(UserError):
    """A bad option or argument: out of range, contradictory, or naming an unusable path."""


class DataError(UserError):
    """A table the user gave cannot be used: a column is missing or duplicated, a value is
    missing or invalid. The message names the column and the row."""


# Operating-system errors that describe the user's paths or disk, not our code.
_USER_OS_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
                   PermissionError)
_USER_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENAMETOOLONG, errno.ELOOP}


def is_user_error(exc: BaseException) -> bool:
    """Whether a command should report ``exc`` in one line (exit 2) rather than as a bug."""
    if isinstance(exc, UserError):
        return True
    return isinstance(exc, OSError) and (isinstance(exc, _USER_OS_ERRORS) or exc.errno in _USER_ERRNOS)


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (an OSError as "reason: 'path'")."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror + (f": {exc.filename!r}" if exc.filename is not None else "")
    else:
        text = str(exc)
    return " ".join(text.split()) or type(exc).__name__


def run_command(prog: str, func: Callable[..., int | None], *args) -> int:
    """Run ``func(*args)`` as the body of command ``prog``; return its exit code.

    A user error prints ``"<prog>: error: <message>"`` on stderr and returns 2; Ctrl-C
    prints ``"<prog>: interrupted"`` and returns 130; any other exception propagates
    with its traceback.
    """
    try:
        return int(func(*args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not is_user_error(exc):
            raise
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return 2
