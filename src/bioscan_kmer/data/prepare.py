"""``prepare``: cleaned, deduplicated, tokenized shards per split.

Shards written: ``pretrain`` (the BarcodeBERT pretraining set: pretrain +
other_heldout records, barcodes ``rstrip("N")``-ed and deduplicated keeping
the first occurrence, SPEC section 4) and, with labels, ``train``, ``val``,
``test``, ``key_unseen``, ``val_unseen``, ``test_unseen`` and ``other_heldout``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from bioscan_kmer.data.labels import encode_labels, label_maps
from bioscan_kmer.data.schema import RANKS, SPLITS
from bioscan_kmer.data.shards import shards_complete, write_shards
from bioscan_kmer.data.statistics import _as_arrow

__all__ = ["prepare_shards", "LABELLED_SHARDS"]

LABELLED_SHARDS = ("train", "val", "test", "key_unseen", "val_unseen", "test_unseen", "other_heldout")


def _token_dtype(vocab_size: int):
    return np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.int32


def prepare_shards(
    df: pd.DataFrame,
    out_dir,
    *,
    k: int = 4,
    max_len: int = 660,
    preset: str = "barcodebert",
    splits: Sequence[str] | None = None,
    seed: int = 0,
    fingerprint: dict | None = None,
    force: bool = False,
    threads: int | None = None,
    progress: bool = False,
) -> dict:
    """Clean, deduplicate and tokenize barcodes per split and write shards.

    Parameters
    ----------
    df : pandas.DataFrame
        Metadata with ``dna_barcode``, the ranks and ``split``. A table without
        ``split`` (or with it empty) is partitioned with ``seed`` first.
    out_dir : str or path-like
    k, max_len, preset : tokenizer settings (see :class:`bioscan_kmer.KmerTokenizer`).
    splits : sequence of str, optional
        Shards to write; default ``pretrain`` and all labelled splits.
    seed : int, default 0
        Seed of the partition, when one is computed.
    fingerprint : dict, optional
        Describes the input (e.g. path, size, mtime); with the options it forms
        the manifest's ``extra``. When a complete shard set with the same
        ``extra`` exists, nothing is redone (resume).
    force : bool, default False
        Rewrite even when an identical complete shard set exists.
    threads : int, optional
    progress : bool, default False
        Show a progress bar over the splits.

    Returns
    -------
    dict
        ``{"out_dir", "manifest", "rows": {split: n}, "skipped": bool, "seconds"}``.

    Raises
    ------
    ValueError
        Missing columns, unknown split names, or a barcode the cleaner rejects
        (the core's message names the row, position and character).
    """
    from bioscan_kmer import KmerTokenizer, clean, unique

    t0 = time.perf_counter()
    for col in ("dna_barcode", *RANKS):
        if col not in df.columns:
            raise ValueError(f"prepare needs column {col!r}")
    wanted = list(splits) if splits is not None else ["pretrain", *LABELLED_SHARDS]
    bad = [s for s in wanted if s not in SPLITS]
    if bad:
        raise ValueError(f"unknown split(s) {', '.join(map(repr, bad))}; choose from {', '.join(SPLITS)}")
    options = {"k": k, "max_len": max_len, "preset": preset, "splits": wanted, "seed": seed}
    extra = {"input": dict(fingerprint or {}), "options": options}
    out = Path(os.fspath(out_dir))
    if not force and fingerprint is not None and shards_complete(out, extra=extra, verify=False):
        from bioscan_kmer.data.shards import read_manifest

        manifest = read_manifest(out)
        return {"out_dir": out, "manifest": out / "manifest.json", "skipped": True,
                "rows": {s: r["rows"] for s, r in manifest["splits"].items()},
                "seconds": time.perf_counter() - t0}

    if "split" not in df.columns or df["split"].isna().all():
        from bioscan_kmer.data.splits import partition

        split = partition(df, seed=seed).to_numpy(dtype=object)
    else:
        split = df["split"].astype(object).to_numpy()
    tok = KmerTokenizer(k=k, max_len=max_len, preset=preset)
    dtype = _token_dtype(tok.vocab_size)
    maps = label_maps(df)
    ids_all = encode_labels(df, maps)

    from tqdm.auto import tqdm

    payload = {}
    rows = {}
    for name in tqdm(wanted, desc="prepare", disable=not progress, unit="split"):
        if name == "pretrain":
            sel = np.flatnonzero(np.isin(split, ["pretrain", "other_heldout"]))
            seqs = clean(_as_arrow(df["dna_barcode"].iloc[sel]), threads=threads)
            # SPEC 4: rstrip("N") then a global first-occurrence dedup (clean already
            # trims N at both ends, which includes the rstrip).
            uniq, _, _ = unique(seqs, threads=threads)
            seqs = list(uniq)
            labels = None
        else:
            sel = np.flatnonzero(split == name)
            seqs = clean(_as_arrow(df["dna_barcode"].iloc[sel]), threads=threads)
            part = df.iloc[sel]
            cols = {"processid": part["processid"].astype("str").to_numpy(dtype=object)
                    if "processid" in part.columns else np.full(len(sel), None, dtype=object)}
            for rank in RANKS:
                cols[rank] = part[rank].astype(object).where(part[rank].notna(), None).to_numpy()
            for rank in RANKS:
                cols[f"{rank}_id"] = ids_all[f"{rank}_id"].to_numpy()[sel]
            cols["dna_bin"] = (part["dna_bin"].astype(object).where(part["dna_bin"].notna(), None).to_numpy()
                               if "dna_bin" in part.columns else np.full(len(sel), None, dtype=object))
            cols["dna_barcode"] = np.asarray(seqs, dtype=object)
            labels = pd.DataFrame(cols)
            for rank in (*RANKS, "processid", "dna_bin", "dna_barcode"):
                labels[rank] = labels[rank].astype(pd.StringDtype("pyarrow", na_value=np.nan))
        if len(seqs):
            ids, mask = _encode(tok, seqs, dtype, threads)
        else:
            ids = np.zeros((0, tok.seq_len), dtype=dtype)
            mask = np.zeros((0, tok.seq_len), dtype=np.uint8)
        payload[name] = (ids, mask, labels)
        rows[name] = len(ids)
    extra["label_maps"] = maps
    manifest = write_shards(out, payload, tok, extra=extra)
    return {"out_dir": out, "manifest": manifest, "skipped": False, "rows": rows,
            "seconds": time.perf_counter() - t0}


def _encode(tok, seqs, dtype, threads):
    from bioscan_kmer import tokenize

    cfg = tok.config
    return tokenize(seqs, k=cfg["k"], stride=cfg["stride"], max_len=cfg["max_len"], preset=cfg["preset"],
                    n_nucleotide=cfg["n_nucleotide"], dtype=dtype, mask_dtype=np.uint8,
                    padding=cfg["padding"], add_special_tokens=cfg["add_special_tokens"], threads=threads)
