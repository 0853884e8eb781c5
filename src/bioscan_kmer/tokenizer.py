"""k-mer tokenization (SPEC section 3): BarcodeBERT-compatible ids, and a BERT preset."""
from __future__ import annotations

from bioscan_kmer._atomic import replacing

import itertools
import json
import os
from typing import Any

import numpy as np

from . import _core
from ._sequences import as_sequences
from ._threads import resolve_threads

__all__ = ["tokenize", "KmerTokenizer", "PRESETS"]

#: Special tokens of each preset, in id order. K-mers follow them.
PRESETS: dict[str, tuple[str, ...]] = {
    "barcodebert": ("[MASK]", "[UNK]"),
    "bert": ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"),
}
_PRESET_CODE = {"barcodebert": 0, "bert": 1}
_INT_KINDS = "iu"


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


class _Spec:
    """A validated tokenizer configuration (shared by tokenize and KmerTokenizer)."""

    def __init__(self, k, stride, max_len, preset, n_nucleotide, padding, add_special_tokens):
        self.k = _check_int("k", k, 1, 12)
        self.stride = self.k if stride is None else _check_int("stride", stride, 1)
        self.max_len = _check_int("max_len", max_len, 1)
        if preset not in _PRESET_CODE:
            raise ValueError(f"preset must be one of {sorted(_PRESET_CODE)}, got {preset!r}")
        self.preset = preset
        self.n_nucleotide = bool(n_nucleotide)
        self.padding = bool(padding)
        self.add_special_tokens = bool(add_special_tokens)
        self.vocab_size = _core.vocab_size(self.k, _PRESET_CODE[preset], self.n_nucleotide)

    def id_dtype(self, dtype: Any) -> np.dtype:
        dt = np.dtype(dtype)
        if dt.kind not in _INT_KINDS or dt.itemsize not in (1, 2, 4, 8) or dt == np.int8:
            raise TypeError(f"dtype must be one of uint8, (u)int16, (u)int32, (u)int64; got {dt}")
        if self.vocab_size - 1 > np.iinfo(dt).max:
            raise ValueError(
                f"dtype {dt} cannot hold the vocabulary (ids up to {self.vocab_size - 1} for "
                f"k={self.k}{', n_nucleotide' if self.n_nucleotide else ''}); use a wider dtype"
            )
        return dt

    def run(self, seqs, offset, dtype, mask_dtype, threads):
        dt = self.id_dtype(dtype)
        # The core writes native integers; another byte order (">i8" on x86) is honoured
        # by one byte-swapping copy at the end, never by relabelling native bytes.
        native = dt.newbyteorder("=")
        if isinstance(offset, (list, tuple)):
            offset = np.asarray(offset)
        if isinstance(offset, np.ndarray):
            if offset.dtype.kind not in _INT_KINDS:
                raise TypeError(f"offset array must hold integers, got dtype {offset.dtype}")
        elif isinstance(offset, bool) or not isinstance(offset, (int, np.integer)):
            raise TypeError(f"offset must be an int or an array of ints, got {type(offset).__name__}")
        ids, mask = _core.tokenize(
            as_sequences(seqs),
            k=self.k,
            stride=self.stride,
            max_len=self.max_len,
            offset=offset if isinstance(offset, np.ndarray) else int(offset),
            preset=_PRESET_CODE[self.preset],
            n_nucleotide=self.n_nucleotide,
            dtype=native,
            pad_to_max_len=self.padding,
            add_special=self.add_special_tokens,
            threads=resolve_threads(threads),
        )
        if dt != native:
            ids = ids.astype(dt)
        mdt = np.dtype(mask_dtype)
        if mdt == np.bool_:
            mask = mask.view(np.bool_)  # same bytes (0/1), no copy
        elif mdt != np.uint8:
            mask = mask.astype(mdt)
        return ids, mask


def tokenize(
    seqs: Any,
    *,
    k: int = 4,
    stride: int | None = None,
    max_len: int = 660,
    offset: int | Any = 0,
    preset: str = "barcodebert",
    n_nucleotide: bool = False,
    dtype: Any = np.int64,
    mask_dtype: Any = np.bool_,
    padding: bool = True,
    add_special_tokens: bool = True,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Tokenize barcodes into k-mer ids, exactly as BarcodeBERT's ``KmerTokenizer``.

    Per row: ``x = seq[offset:]``; if longer than ``max_len`` it is truncated (all
    tokens real), else right-padded with ``N`` to ``max_len`` and the tokens past the
    sequence are masked out. Tokens are ``x[i:i+k]`` for ``i`` in
    ``range(0, len(x) - k + 1, stride)``; a k-mer holding any letter outside the
    vocabulary (``N`` unless ``n_nucleotide``, IUPAC codes, lowercase, ``-``) is
    ``[UNK]``. Token ``j`` is real (mask 1) when ``j*stride + k <= len(x)``.

    Parameters
    ----------
    seqs : list of str, NumPy array, pandas Series or pyarrow array
        Sequences, normally cleaned (:func:`bioscan_kmer.clean`) first.
    k : int
        k-mer length, 1 to 12.
    stride : int, optional
        Step between k-mers; defaults to ``k`` (non-overlapping).
    max_len : int
        Bases kept per row; 660 gives 165 tokens for k=4 and 82 for k=8.
    offset : int or array of int
        Bases skipped at the start of each row (a per-row array implements the random
        offset augmentation of pretraining). Must be >= 0.
    preset : {"barcodebert", "bert"}
        ``barcodebert``: ``[MASK]=0, [UNK]=1``, k-mers from 2, padding is ``N`` (so
        ``[UNK]``). ``bert``: ``[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4``, k-mers from 5,
        ``[CLS] ... [SEP]`` (with ``add_special_tokens``), padding with ``[PAD]``.
    n_nucleotide : bool
        Also give ids to k-mers holding ``N`` (after the 4**k pure ones).
    dtype : numpy dtype
        Id dtype; refused if too small for the vocabulary (uint16 holds k <= 7). A
        non-native byte order (``">i8"`` on a little-endian machine) is honoured: the
        ids hold the same values, stored in that order (one extra copy).
    mask_dtype : numpy dtype
        Mask dtype (bool by default; BarcodeBERT's own mask is int32).
    padding : bool
        True pads every row to ``max_len`` (fixed shape). False pads only to the
        longest row of this batch (after offset and truncation) with the same rule,
        which saves work in data loaders with short sequences.
    add_special_tokens : bool
        ``[CLS]``/``[SEP]`` in the bert preset; ignored by barcodebert, which has none.
    threads : int, optional
        Worker threads; see :func:`bioscan_kmer.resolve_threads`.

    Returns
    -------
    ids : ndarray, shape (n, L)
    mask : ndarray, shape (n, L)
    """
    spec = _Spec(k, stride, max_len, preset, n_nucleotide, padding, add_special_tokens)
    return spec.run(seqs, offset, dtype, mask_dtype, threads)


def _one_row(value: Any, name: str, kinds: str, what: str) -> np.ndarray:
    """``value`` as a 1-D array of dtype kind ``kinds``, else a TypeError saying why."""
    if isinstance(value, dict):
        raise TypeError(f"{name} must be one row of {what}, got a dict (a batch? decode "
                        "batch['input_ids'][i] with batch['attention_mask'][i])")
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(np.ndim(v) >= 1 for v in value)):
        raise TypeError(f"{name} must be one row of {what}, got a pair of arrays: pass the "
                        "(ids, mask) of encode as two arguments, tok.decode(*tok.encode(seq))")
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise TypeError(f"{name} must be one row (1-D) of {what}, got shape {arr.shape}; "
                        "decode each row of a batch on its own")
    # An empty list becomes float64: nothing to decode, no reason to refuse it.
    if arr.size == 0 and arr.dtype == np.float64 and not isinstance(value, np.ndarray):
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in kinds:
        raise TypeError(f"{name} must hold {what}, got dtype {arr.dtype}")
    return arr


class KmerTokenizer:
    """One tokenizer configuration with its vocabulary.

    The batch call returns ``{"input_ids", "attention_mask"}`` like Hugging Face
    tokenizers; torch is imported only when ``return_tensors="pt"`` is asked for.

    Examples
    --------
    >>> tok = KmerTokenizer(k=4)
    >>> tok.vocab_size
    258
    >>> batch = tok(["ACGTACGTAA"], return_tensors="np")
    >>> batch["input_ids"].shape
    (1, 165)
    """

    def __init__(
        self,
        k: int = 4,
        stride: int | None = None,
        max_len: int = 660,
        preset: str = "barcodebert",
        n_nucleotide: bool = False,
        padding: bool = True,
        add_special_tokens: bool = True,
        dtype: Any = np.int64,
    ) -> None:
        self._spec = _Spec(k, stride, max_len, preset, n_nucleotide, padding, add_special_tokens)
        self.dtype = self._spec.id_dtype(dtype)
        self._vocab: dict[str, int] | None = None

    # -- configuration ----------------------------------------------------------------
    k = property(lambda self: self._spec.k)
    stride = property(lambda self: self._spec.stride)
    max_len = property(lambda self: self._spec.max_len)
    preset = property(lambda self: self._spec.preset)
    n_nucleotide = property(lambda self: self._spec.n_nucleotide)
    padding = property(lambda self: self._spec.padding)
    add_special_tokens = property(lambda self: self._spec.add_special_tokens)
    vocab_size = property(lambda self: self._spec.vocab_size)

    @property
    def special_tokens(self) -> tuple[str, ...]:
        return PRESETS[self.preset]

    @property
    def first_kmer_id(self) -> int:
        """Id of ``A*k``; the masked-LM class of a k-mer id is ``id - first_kmer_id``."""
        return len(self.special_tokens)

    @property
    def num_kmers(self) -> int:
        """Number of pure ``ACGT`` k-mers, the classes of a masked-LM head."""
        return 4**self.k

    def _special_id(self, name: str) -> int | None:
        try:
            return self.special_tokens.index(name)
        except ValueError:
            return None

    pad_id = property(lambda self: self._special_id("[PAD]") if self.preset == "bert" else self.unk_id)
    unk_id = property(lambda self: self._special_id("[UNK]"))
    mask_id = property(lambda self: self._special_id("[MASK]"))
    cls_id = property(lambda self: self._special_id("[CLS]"))
    sep_id = property(lambda self: self._special_id("[SEP]"))

    @property
    def seq_len(self) -> int:
        """Tokens per row when padding to ``max_len``."""
        return _core.row_length(self.k, self.stride, self.max_len, _PRESET_CODE[self.preset],
                                self.add_special_tokens)

    @property
    def config(self) -> dict:
        """JSON-able configuration; ``KmerTokenizer(**config)`` rebuilds the tokenizer."""
        return {
            "k": self.k,
            "stride": self.stride,
            "max_len": self.max_len,
            "preset": self.preset,
            "n_nucleotide": self.n_nucleotide,
            "padding": self.padding,
            "add_special_tokens": self.add_special_tokens,
            # The name drops the byte order (">i8" is "int64"): keep it when it matters.
            "dtype": self.dtype.name if self.dtype.isnative else self.dtype.str,
        }

    @property
    def vocab(self) -> dict[str, int]:
        """Token -> id, specials first, then k-mers in product order."""
        if self._vocab is None:
            alphabet = "ACGTN" if self.n_nucleotide else "ACGT"
            tokens = list(self.special_tokens)
            kmers = ["".join(p) for p in itertools.product(alphabet, repeat=self.k)]
            tokens += [km for km in kmers if "N" not in km] + [km for km in kmers if "N" in km]
            self._vocab = {tok: i for i, tok in enumerate(tokens)}
        return self._vocab

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"KmerTokenizer({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KmerTokenizer) and self.config == other.config

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.config.items())))

    # -- encoding ---------------------------------------------------------------------
    def encode(self, seq: str, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Ids and mask of one sequence, as 1-D arrays."""
        if not isinstance(seq, (str, bytes)):
            raise TypeError(f"encode takes one str, got {type(seq).__name__}")
        ids, mask = self._spec.run([seq], offset, self.dtype, np.bool_, 1)
        return ids[0], mask[0]

    def __call__(
        self,
        seqs: Any,
        offset: int | Any = 0,
        return_tensors: str | None = None,
        dtype: Any = None,
        threads: int | None = None,
    ) -> dict[str, Any]:
        """Tokenize a batch.

        Parameters
        ----------
        seqs : sequences (see :func:`tokenize`)
        offset : int or array of int
        return_tensors : {None, "np", "pt"}
            ``"pt"`` wraps the NumPy results (ids and the bool mask) as torch tensors
            without copying. Tensors have no byte order: a non-native id dtype gives
            native tensors of the same values.
        dtype : numpy dtype, optional
            Overrides the tokenizer's id dtype for this call.
        """
        if return_tensors not in (None, "np", "pt"):
            raise ValueError(f'return_tensors must be None, "np" or "pt", got {return_tensors!r}')
        dtype = self.dtype if dtype is None else dtype
        if return_tensors == "pt":
            dtype = np.dtype(dtype).newbyteorder("=")
        ids, mask = self._spec.run(seqs, offset, dtype, np.bool_, threads)
        if return_tensors == "pt":
            import torch

            return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
        return {"input_ids": ids, "attention_mask": mask}

    def decode(self, ids: Any, mask: Any = None, *, skip_special_tokens: bool = False) -> str:
        """Turn one row of ids back into text.

        Non-overlapping k-mers (stride == k) concatenate into the sequence; otherwise the
        k-mers are joined with spaces. Special tokens appear as their names unless skipped.

        Parameters
        ----------
        ids : 1-D array-like of int
            One row: a NumPy array, a torch tensor or a list of ints.
        mask : 1-D array-like of bool, optional
            The row's mask; only the positions where it is true are decoded, which drops
            the padding. ``tok.decode(*tok.encode(seq))`` passes both.
        skip_special_tokens : bool

        Raises
        ------
        TypeError
            ``ids`` is not one row of integers (the ``(ids, mask)`` pair of
            :meth:`encode` as one argument, a batch dict, a 2-D batch, text, floats), or
            ``mask`` is not one row of booleans.
        ValueError
            An id outside the vocabulary, or a mask of another length.
        """
        arr = _one_row(ids, "ids", _INT_KINDS, "integers")
        if mask is not None:
            keep = _one_row(mask, "mask", "b" + _INT_KINDS, "booleans (or 0/1)")
            if len(keep) != len(arr):
                raise ValueError(f"mask has {len(keep)} entries for {len(arr)} ids")
            if keep.dtype.kind != "b" and keep.size and (keep.min() < 0 or keep.max() > 1):
                raise ValueError("mask must hold booleans (or 0/1)")
            arr = arr[keep.astype(bool)]
        preset = _PRESET_CODE[self.preset]
        parts: list[str] = []
        for i in arr.tolist():
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"id {i} is outside the vocabulary (size {self.vocab_size})")
            km = _core.id_to_kmer(i, self.k, preset, self.n_nucleotide)
            if km is None:
                if not skip_special_tokens:
                    parts.append(self.special_tokens[i])
            else:
                parts.append(km)
        sep = "" if self.stride == self.k and not any(p.startswith("[") for p in parts) else " "
        return sep.join(parts)

    def token_to_id(self, token: str) -> int:
        """Id of a k-mer or special token; unknown tokens give ``[UNK]``."""
        if token in self.special_tokens:
            return self.special_tokens.index(token)
        if len(token) != self.k:
            return self.unk_id
        return _core.kmer_to_id(token, _PRESET_CODE[self.preset], self.n_nucleotide)

    # -- persistence ------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({"format": "bioscan-kmer-tokenizer", "version": 1, "config": self.config,
                           "vocab": self.vocab}, indent=1)

    def save(self, path: str | os.PathLike) -> None:
        """Write the configuration and vocabulary as JSON (atomically)."""
        with replacing(path) as tmp:
            tmp.write_text(self.to_json())

    @classmethod
    def from_config(cls, config: dict) -> "KmerTokenizer":
        return cls(**config)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "KmerTokenizer":
        """Read a tokenizer written by :meth:`save`, checking the stored vocabulary."""
        with open(path) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: not a tokenizer JSON file ({e})") from None
        if not isinstance(data, dict) or data.get("format") != "bioscan-kmer-tokenizer":
            raise ValueError(f"{path}: not a bioscan-kmer tokenizer file")
        tok = cls.from_config(data["config"])
        if "vocab" in data and data["vocab"] != tok.vocab:
            raise ValueError(f"{path}: stored vocabulary does not match its configuration")
        return tok
