"""Integer options, checked once: for library calls and for the command line alike.

:func:`check_int` raises :class:`~bioscan_kmer.errors.UsageError` naming the option;
:func:`int_option` wraps it as an ``argparse`` type, so that a bad value on the command
line is refused while parsing, before any file is read ("argument --seed: must be a
non-negative integer, got -3").
"""

from __future__ import annotations

import argparse
from typing import Callable

import numpy as np

from bioscan_kmer.errors import UsageError

__all__ = ["check_int", "int_option"]


def _bounds(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"an integer from {low:,} to {high:,}"
    if low == 0:
        return "a non-negative integer"
    if low is not None:
        return f"an integer of at least {low:,}"
    return f"an integer of at most {high:,}" if high is not None else "an integer"


def check_int(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int, if it is an integer in ``[low, high]``; else a UsageError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UsageError(f"{name} must be {_bounds(low, high)}, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise UsageError(f"{name} must be {_bounds(low, high)}, got {value:,}")
    return value


def int_option(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An ``argparse`` type for an integer in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {_bounds(low, high)}, got {text!r}") from None
        try:
            return check_int("value", value, low, high)
        except UsageError:
            raise argparse.ArgumentTypeError(f"must be {_bounds(low, high)}, got {text}") from None

    parse.__name__ = "integer"  # argparse names the type in some messages
    return parse
