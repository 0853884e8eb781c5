"""Atomic checkpoints.

A checkpoint is written to a temporary file beside its destination, flushed to disk, and
then renamed over the destination (``os.replace`` is atomic on POSIX and Windows). A process
killed mid-write therefore leaves the previous checkpoint intact; at worst a stray
``.<name>.tmp-<pid>`` file remains, which loading never looks at.

Checkpoints are ``torch.save`` dicts of tensors and plain Python values only, so they load
with ``torch.load(weights_only=True)`` and never execute pickled code.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from bioscan_kmer._atomic import fsync_dir

from .config import EncoderConfig
from .encoder import Encoder, MaskedLM

__all__ = ["save_checkpoint", "load_checkpoint", "load_model", "DiskFullError", "FORMAT"]

#: Identifies our checkpoints and their layout version.
FORMAT = "bioscan-kmer-checkpoint/1"


class DiskFullError(OSError):
    """No space left on the device while writing a checkpoint."""


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically.

    Parameters
    ----------
    path : path-like
        Destination file; its directory is created if needed.
    state : mapping
        Must hold ``"model"`` (a state dict) and ``"config"`` (``EncoderConfig.to_dict()``);
        anything else (optimizer, scheduler, RNG states, step, ...) is stored as given.

    Returns
    -------
    Path
        The destination.

    Raises
    ------
    DiskFullError
        The file system ran out of space; the previous checkpoint is untouched.
    """
    if "model" not in state or "config" not in state:
        raise ValueError("a checkpoint needs 'model' and 'config' entries")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    payload = {"format": FORMAT, **state}
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            # Without fsync the rename can reach the disk before the data does, and a power
            # cut would leave an empty file under the final name.
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(exc.errno, f"no space left on the device writing checkpoint {path}") from exc
        if isinstance(exc, RuntimeError) and "No space left" in str(exc):
            # torch.save's C++ writer reports ENOSPC as a RuntimeError.
            raise DiskFullError(errno.ENOSPC, f"no space left on the device writing checkpoint {path}") from exc
        raise
    return path




def load_checkpoint(path: str | os.PathLike, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : path-like
        A checkpoint file, or a run directory holding ``checkpoint.pt``.
    map_location : optional
        As for ``torch.load``.

    Returns
    -------
    dict
        At least ``"model"`` (state dict of :class:`MaskedLM`) and ``"config"`` (dict);
        training checkpoints also hold ``"optimizer"``, ``"scheduler"``, ``"rng"``, ``"step"``,
        ``"data_position"``, ``"train_config"``, ``"tokenizer"``.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file is not one of our checkpoints or is damaged.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a truncated or foreign file raises many different errors
        raise ValueError(f"{path} is not a readable checkpoint: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a bioscan-kmer checkpoint")
    return state


def load_model(checkpoint: str | os.PathLike | Mapping[str, Any], *, map_location: Any = "cpu",
               encoder_only: bool = False) -> MaskedLM | Encoder:
    """Rebuild the trained model from a checkpoint (path, run directory, or loaded dict).

    Parameters
    ----------
    checkpoint : path-like or dict
    map_location : optional
        Device for the weights.
    encoder_only : bool
        Return the :class:`Encoder` without the MLM head.

    Returns
    -------
    MaskedLM or Encoder
        In eval mode.
    """
    state = checkpoint if isinstance(checkpoint, Mapping) else load_checkpoint(checkpoint, map_location=map_location)
    config = EncoderConfig.from_dict(state["config"])
    model = MaskedLM(config)
    model.load_state_dict(state["model"])
    model = model.to(map_location) if map_location is not None else model
    return (model.encoder if encoder_only else model).eval()
