"""The dataset statistics table of the BIOSCAN-5M paper (SPEC section 5)."""

from __future__ import annotations

from bioscan_kmer._atomic import replacing

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from bioscan_kmer.data._arrow import arrow_strings, is_arrow_strings, label_codes, release_unused
from bioscan_kmer.data.schema import RANKS
from bioscan_kmer.errors import DataError

__all__ = [
    "dataset_statistics",
    "category_sizes",
    "format_statistics",
    "save_statistics",
    "plot_category_sizes",
    "STAT_COLUMNS",
]

STAT_COLUMNS = (
    "rank", "labelled", "labelled_fraction", "categories", "most_populated",
    "least_populated", "imbalance_ratio", "unique_dna", "avg_sdi",
)


def _codes(col: pd.Series) -> np.ndarray:
    """Dense integer label codes in sorted-label order, -1 for missing or empty labels."""
    return label_codes(col)[0]


def category_sizes(df: pd.DataFrame, ranks: Sequence[str] = RANKS) -> dict[str, np.ndarray]:
    """Records per category, per rank (descending), over labelled rows."""
    out = {}
    for rank in ranks:
        codes = _codes(df[rank])
        counts = np.bincount(codes[codes >= 0]) if (codes >= 0).any() else np.zeros(0, np.int64)
        out[rank] = np.sort(counts[counts > 0])[::-1]
    return out


def dataset_statistics(
    df: pd.DataFrame,
    ranks: Sequence[str] = RANKS,
    *,
    barcode_column: str = "dna_barcode",
    threads: int | None = None,
) -> pd.DataFrame:
    """Per-rank statistics as in the BIOSCAN-5M paper's table.

    For each rank, over rows with a non-empty label: number and fraction of
    labelled rows; number of categories; records of the most and least
    populated category and their ratio; distinct raw ``dna_barcode`` strings;
    and the unweighted mean over labels of each label's Shannon diversity of
    barcodes in bits, ``-sum p log2(p + 1e-12)`` (the paper's variant).

    Parameters
    ----------
    df : pandas.DataFrame
        Needs the rank columns and ``barcode_column``.
    ranks : sequence of str, default the seven ranks
    barcode_column : str, default "dna_barcode"
    threads : int, optional
        Threads for the core's ``unique`` and ``paper_sdi``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`STAT_COLUMNS`, one row per rank. A rank with no labels
        has zeros and NaN ratio/SDI.

    Raises
    ------
    bioscan_kmer.errors.DataError
        A needed column is missing, or a barcode is missing or not ASCII (names the row).
    """
    from bioscan_kmer import paper_sdi, unique

    missing = [c for c in (*ranks, barcode_column) if c not in df.columns]
    if missing:
        raise DataError(f"statistics need column(s) {', '.join(map(repr, missing))}")
    barcodes = df[barcode_column]
    if barcodes.isna().any():
        i = int(np.flatnonzero(barcodes.isna().to_numpy())[0])
        raise DataError(f"row {i}: {barcode_column} is missing")
    # One pass of the core's hash dedup; per-rank counts then work on integer codes.
    # Arrow-backed strings go to the core as Arrow buffers (no Python str per row).
    # Only the row -> barcode id map is needed: skip copying the distinct strings.
    try:
        _, barcode_id, _ = unique(arrow_strings(barcodes) if is_arrow_strings(barcodes) else barcodes,
                                  return_values=False, threads=threads)
    except ValueError as exc:
        # The core names the row and the character; the column is ours to name.
        raise DataError(f"{barcode_column}: {exc}") from exc
    barcode_id = np.asarray(barcode_id, dtype=np.int64)
    n_barcodes = int(barcode_id.max()) + 1 if len(barcode_id) else 0
    n = len(df)
    rows = []
    for rank in ranks:
        codes = _codes(df[rank])
        labelled = codes >= 0
        n_lab = int(labelled.sum())
        if n_lab == 0:
            rows.append((rank, 0, 0.0, 0, 0, 0, np.nan, 0, np.nan))
            continue
        counts = np.bincount(codes[labelled])
        counts = counts[counts > 0]
        seen = np.zeros(n_barcodes, dtype=bool)
        seen[barcode_id[labelled]] = True
        _, sdi = paper_sdi(codes, barcode_id, threads=threads)
        rows.append((
            rank, n_lab, n_lab / n, len(counts), int(counts.max()), int(counts.min()),
            float(counts.max() / counts.min()), int(seen.sum()), float(np.mean(sdi)),
        ))
    release_unused()
    table = pd.DataFrame(rows, columns=list(STAT_COLUMNS))
    return table.astype({"labelled": "int64", "categories": "int64", "most_populated": "int64",
                         "least_populated": "int64", "unique_dna": "int64"})


def _human(x) -> str:
    return f"{int(x):,}"


def format_statistics(table: pd.DataFrame, style: str = "text") -> str:
    """Render the statistics table.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`dataset_statistics`.
    style : {"text", "markdown", "csv"}
        Aligned plain text (for a terminal), a Markdown table, or CSV.
    """
    if style == "csv":
        return table.to_csv(index=False)
    headers = ["Rank", "Labelled", "%", "Categories", "Most", "Least", "Imbalance", "Unique DNA", "Avg SDI"]
    body = []
    for r in table.itertuples(index=False):
        body.append([
            str(r.rank).capitalize(), _human(r.labelled), f"{100 * r.labelled_fraction:.1f}%",
            _human(r.categories), _human(r.most_populated), _human(r.least_populated),
            "-" if np.isnan(r.imbalance_ratio) else f"{r.imbalance_ratio:,.0f}",
            _human(r.unique_dna), "-" if np.isnan(r.avg_sdi) else f"{r.avg_sdi:.2f}",
        ])
    if style == "markdown":
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines) + "\n"
    if style != "text":
        raise ValueError(f"style must be 'text', 'markdown' or 'csv', got {style!r}")
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(headers)]
    fmt = lambda row: "  ".join(  # noqa: E731
        cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))
    )
    return "\n".join([fmt(headers), "  ".join("-" * w for w in widths), *(fmt(r) for r in body)]) + "\n"


def plot_category_sizes(sizes: dict[str, np.ndarray], path) -> Path:
    """Draw records per category (rank-ordered, log-log) for every rank; save to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for rank, counts in sizes.items():
        if len(counts) == 0:
            continue
        ax.plot(np.arange(1, len(counts) + 1), counts, marker="." if len(counts) < 3 else None,
                label=f"{rank} ({len(counts):,})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("category rank (largest first)")
    ax.set_ylabel("records per category")
    ax.set_title("Category sizes per taxonomic rank")
    ax.legend(fontsize="small")
    ax.grid(True, which="major", alpha=0.3)
    path = Path(os.fspath(path))
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=120)
    return path


def save_statistics(df: pd.DataFrame, out_dir, *, table: pd.DataFrame | None = None,
                    threads: int | None = None) -> dict[str, Path]:
    """Compute (unless given) and save the table as CSV and Markdown plus the figure.

    Returns
    -------
    dict
        Paths under keys ``"csv"``, ``"markdown"`` and ``"figure"``.
    """
    out = Path(os.fspath(out_dir))
    out.mkdir(parents=True, exist_ok=True)
    if table is None:
        table = dataset_statistics(df, threads=threads)
    paths = {"csv": out / "statistics.csv", "markdown": out / "statistics.md",
             "figure": out / "category_sizes.png"}
    paths["csv"].write_text(format_statistics(table, "csv"), "utf-8")
    paths["markdown"].write_text(format_statistics(table, "markdown"), "utf-8")
    plot_category_sizes(category_sizes(df, list(table["rank"])), paths["figure"])
    return paths
