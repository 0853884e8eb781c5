"""One global label map per taxonomic rank.

Label ids are codes over the whole table (sorted labels, -1 for missing), as
the official loader's category codes are, so that ids agree across splits.
Never build a map from one split.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from bioscan_kmer.data._arrow import label_codes
from bioscan_kmer.data.schema import RANKS

__all__ = ["label_maps", "encode_labels", "save_label_maps", "load_label_maps"]


def label_maps(df: pd.DataFrame, ranks: Sequence[str] = RANKS) -> dict[str, list[str]]:
    """Sorted distinct non-empty labels per rank of the whole table.

    Parameters
    ----------
    df : pandas.DataFrame
        The full metadata table (not one split).
    ranks : sequence of str, default the seven ranks
        Columns to map.

    Returns
    -------
    dict of str to list of str
        ``maps[rank][i]`` is the label whose id is ``i``.

    Raises
    ------
    ValueError
        A rank column is missing.
    """
    missing = [r for r in ranks if r not in df.columns]
    if missing:
        raise ValueError(f"label columns missing from the table: {', '.join(map(repr, missing))}")
    # label_codes' labels are the sorted distinct non-empty labels.
    return {rank: label_codes(df[rank])[1] for rank in ranks}


def encode_labels(
    df: pd.DataFrame,
    maps: Mapping[str, Sequence[str]],
    *,
    unknown: str = "error",
) -> pd.DataFrame:
    """Global label ids ``<rank>_id`` (int64, -1 = missing) for every rank in ``maps``.

    Parameters
    ----------
    df : pandas.DataFrame
    maps : mapping of str to sequence of str
        From :func:`label_maps` over the full table.
    unknown : {"error", "missing"}, default "error"
        What to do with a label absent from its map: raise, or code it -1.

    Returns
    -------
    pandas.DataFrame
        One ``<rank>_id`` column per rank, index aligned with ``df``.

    Raises
    ------
    ValueError
        A label is not in its map (the message names the row and the label), or
        ``unknown`` is not one of the two choices.
    """
    if unknown not in ("error", "missing"):
        raise ValueError(f"unknown must be 'error' or 'missing', got {unknown!r}")
    out = {}
    for rank, values in maps.items():
        if rank not in df.columns:
            raise ValueError(f"label column {rank!r} is missing from the table")
        # Code the column once, then map each distinct label (not each row) to its id.
        local, labels = label_codes(df[rank])
        per_label = pd.Index(list(values), dtype=object).get_indexer(pd.Index(labels, dtype=object))
        per_label = per_label.astype(np.int64)
        codes = np.full(len(local), -1, dtype=np.int64)
        has = local >= 0
        codes[has] = per_label[local[has]]
        bad = has & (codes < 0)
        if bad.any() and unknown == "error":
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"row {i}: {rank} label {labels[local[i]]!r} is not in the global label map "
                "(build the map over the full table)"
            )
        out[f"{rank}_id"] = codes
    return pd.DataFrame(out, index=df.index)


def save_label_maps(maps: Mapping[str, Sequence[str]], path) -> Path:
    """Write label maps as JSON (rank -> list of labels)."""
    path = Path(path)
    path.write_text(json.dumps({k: list(v) for k, v in maps.items()}, ensure_ascii=False), "utf-8")
    return path


def load_label_maps(path) -> dict[str, list[str]]:
    """Read label maps written by :func:`save_label_maps`."""
    data = json.loads(Path(path).read_text("utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ValueError(f"{str(path)!r} is not a label-map JSON file")
    return data
