"""The JSONL training log and the loss-curve figure."""

from __future__ import annotations

from bioscan_kmer._atomic import replacing

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

__all__ = ["JsonlLog", "read_log", "plot_loss_curve"]


class JsonlLog:
    """Append-only JSON-lines log; one record per line, flushed as written.

    Parameters
    ----------
    path : path-like
    truncate_after : int, optional
        On resume: drop records whose ``step`` is beyond the checkpoint's, since those steps
        are about to be recomputed (otherwise they would appear twice).
    """

    def __init__(self, path: str | os.PathLike, *, truncate_after: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if truncate_after is not None and self.path.exists():
            kept = [r for r in read_log(self.path) if r.get("step", 0) <= truncate_after]
            with replacing(self.path) as tmp, open(tmp, "w", encoding="utf-8") as f:
                for record in kept:
                    f.write(json.dumps(record) + "\n")
        elif truncate_after is None:
            self.path.write_text("", encoding="utf-8")
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, allow_nan=True) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a JSONL log; a torn last line (killed mid-write) is skipped."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def plot_loss_curve(records: Iterable[dict[str, Any]], path: str | os.PathLike, *, title: str = "") -> Path:
    """Draw training (and validation) loss against step into a PNG.

    Uses matplotlib's Agg canvas directly, never pyplot, so it neither needs a display nor
    touches the caller's global figure state.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = list(records)
    train = [(r["step"], r["loss"]) for r in records if "loss" in r and _finite(r["loss"])]
    val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r and _finite(r["val_loss"])]
    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if train:
        ax.plot(*zip(*train), label="train", linewidth=1.2)
    if val:
        ax.plot(*zip(*val), "o-", label="validation", linewidth=1.2, markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("masked-LM loss (nats)")
    ax.set_title(title or "pretraining loss")
    ax.grid(True, alpha=0.3)
    if train or val:
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    with replacing(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
