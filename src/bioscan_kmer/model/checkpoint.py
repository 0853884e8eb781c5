"""Atomic checkpoints.

A checkpoint is written to a temporary file beside its destination, flushed to disk, and
then renamed over the destination (``os.replace`` is atomic on POSIX and Windows). A process
killed mid-write therefore leaves the previous checkpoint intact; at worst a stray
``.<name>.tmp-<pid>`` file remains, which loading never looks at.

Checkpoints are ``torch.save`` dicts of tensors and plain Python values only, so they load
with ``torch.load(weights_only=True)`` and never execute pickled code. Every reader here
says in one line what is wrong with a file it refuses (:class:`CheckpointError`) and checks
a checkpoint's weights against its configuration before allocating the model, so an edited
configuration can neither crash the load nor ask for gigabytes first.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
from pathlib import Path
from typing import Any, Mapping

import torch

from bioscan_kmer._atomic import fsync_dir
from bioscan_kmer.errors import UserError

from .config import ConfigError, EncoderConfig
from .encoder import Encoder, MaskedLM

__all__ = ["save_checkpoint", "load_checkpoint", "load_model", "read_torch_file", "check_state_dict",
           "CheckpointError", "DiskFullError", "FORMAT"]

#: Identifies our checkpoints and their layout version.
FORMAT = "bioscan-kmer-checkpoint/1"


class DiskFullError(OSError):
    """No space left on the device while writing a checkpoint."""


class CheckpointError(UserError):
    """A file that cannot be used as a checkpoint: not one at all, damaged, holding pickled
    objects other than tensors, or weights that do not fit their configuration."""


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


def read_torch_file(path: str | os.PathLike, *, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with a one-line error for every failure.

    Besides tensors and plain values, ``argparse.Namespace`` is accepted: BarcodeBERT's own
    checkpoints store their command line as one, and it is a plain attribute container.
    Anything else pickled is refused rather than unpickled, since unpickling can run code.

    Raises
    ------
    CheckpointError
        Not a PyTorch file, damaged or truncated, or holding other pickled objects.
    """
    path = Path(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    # torch.save writes a zip archive; files from torch < 1.6 are a bare pickle stream.
    if not (magic.startswith(b"PK\x03\x04") or magic[:1] == b"\x80"):
        raise CheckpointError(f"{path} is not a checkpoint (not a file written by torch.save)")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a truncated or foreign file raises many different errors
        text = str(exc)
        if "Weights only load failed" in text:
            found = re.search(r"GLOBAL ([\w.]+)", text)
            what = f" ({found.group(1)})" if found else ""
            raise CheckpointError(
                f"{path} holds pickled Python objects{what} besides tensors; refusing to unpickle "
                "them, since that could run code: save its state dict alone (torch.save(model.state_dict()))"
            ) from None
        raise CheckpointError(f"{path} is damaged or truncated: not a readable checkpoint "
                              f"({type(exc).__name__})") from None


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
    CheckpointError (a ValueError)
        The file is not one of our checkpoints or is damaged.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = read_torch_file(path, map_location=map_location)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a bioscan-kmer checkpoint")
    if not isinstance(state.get("model"), Mapping) or not isinstance(state.get("config"), Mapping):
        raise CheckpointError(f"{path} is a damaged bioscan-kmer checkpoint: no model weights or config")
    return state


def check_state_dict(model: torch.nn.Module, state_dict: Mapping[str, Any], *, what: str = "the weights") -> None:
    """Raise :class:`CheckpointError` unless ``state_dict`` has exactly ``model``'s keys and shapes.

    ``model`` may live on the meta device (no memory), which is how the loaders check a
    configuration against its weights before allocating anything.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing[:4]) + (" ..." if len(missing) > 4 else ""))
    if unexpected:
        problems.append("unexpected " + ", ".join(unexpected[:4]) + (" ..." if len(unexpected) > 4 else ""))
    for key, want in expected.items():
        got = state_dict.get(key)
        if got is None:
            continue
        if not isinstance(got, torch.Tensor):
            problems.append(f"{key} is a {type(got).__name__}, not a tensor")
        elif got.shape != want.shape:
            problems.append(f"{key} has shape {tuple(got.shape)}, the configuration needs {tuple(want.shape)}")
        if len(problems) >= 4:
            break
    if problems:
        raise CheckpointError(f"{what} do not fit the model configuration: " + "; ".join(problems))


def load_model(checkpoint: str | os.PathLike | Mapping[str, Any], *, map_location: Any = "cpu",
               encoder_only: bool = False, name: str | None = None) -> MaskedLM | Encoder:
    """Rebuild the trained model from a checkpoint (path, run directory, or loaded dict).

    Parameters
    ----------
    checkpoint : path-like or dict
    map_location : optional
        Device for the weights.
    encoder_only : bool
        Return the :class:`Encoder` without the MLM head.
    name : str, optional
        How to name a loaded dict in messages (default: "the checkpoint").

    Returns
    -------
    MaskedLM or Encoder
        In eval mode.

    Raises
    ------
    CheckpointError (a ValueError)
        Not a checkpoint, a configuration that cannot be read, or weights whose names or
        shapes differ from what the configuration describes (checked before the model is
        allocated).
    """
    if isinstance(checkpoint, Mapping):
        state, name = checkpoint, name or "the checkpoint"
    else:
        state, name = load_checkpoint(checkpoint, map_location=map_location), name or str(checkpoint)
    if not isinstance(state.get("model"), Mapping):
        raise CheckpointError(f"{name} holds no model weights")
    try:
        config = EncoderConfig.from_dict(state["config"])
    except (ConfigError, TypeError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"{name}: unreadable model configuration ({' '.join(str(exc).split())})") from None
    with torch.device("meta"):
        skeleton = MaskedLM(config)
    check_state_dict(skeleton, state["model"], what=f"{name}: the weights")
    model = MaskedLM(config)
    model.load_state_dict(state["model"])
    model = model.to(map_location) if map_location is not None else model
    return (model.encoder if encoder_only else model).eval()
