"""Other ways to compute the same k-mer ids, for the comparison table.

Each returns exactly what ``bioscan_kmer.tokenize(seqs)`` returns for the default
BarcodeBERT configuration (k=4, stride=4, max_len=660); compare_core.py checks that.
"""
from __future__ import annotations

import itertools

import numpy as np

K, MAX_LEN = 4, 660
L = MAX_LEN // K


def barcodebert_vocab() -> dict[str, int]:
    kmers = ["".join(p) for p in itertools.product("ACGT", repeat=K)]
    return {"[MASK]": 0, "[UNK]": 1, **{km: i + 2 for i, km in enumerate(kmers)}}


def python_loop(seqs: list[str]) -> np.ndarray:
    """BarcodeBERT's per-sequence loop (padding with N, dict lookups), minus torch."""
    vocab = barcodebert_vocab()
    unk = vocab["[UNK]"]
    out = np.empty((len(seqs), L), dtype=np.int64)
    for r, seq in enumerate(seqs):
        x = seq[:MAX_LEN]
        x = x + "N" * (MAX_LEN - len(x))
        out[r] = [vocab.get(x[i:i + K], unk) for i in range(0, MAX_LEN - K + 1, K)]
    return out


def hf_tokenizers(seqs: list[str], batch: int = 10_000) -> np.ndarray:
    """A Hugging Face `tokenizers` WordLevel pipeline with the same ids.

    A regex splits the sequence into 4-letter chunks (a shorter tail chunk maps to
    [UNK], as BarcodeBERT's N-padded tail k-mer does), WordLevel looks them up with
    [UNK] as default, and truncation/padding give 165 ids, padding with [UNK].
    """
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

    tok = Tokenizer(models.WordLevel(vocab=barcodebert_vocab(), unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([])
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(".{1,4}"), behavior="isolated")
    tok.enable_truncation(max_length=L)
    tok.enable_padding(length=L, pad_id=1, pad_token="[UNK]")
    out = np.empty((len(seqs), L), dtype=np.int64)
    for lo in range(0, len(seqs), batch):
        encs = tok.encode_batch(seqs[lo:lo + batch], add_special_tokens=False)
        out[lo:lo + len(encs)] = [e.ids for e in encs]
    return out


def numba_kernel():
    """A Numba-compiled loop over a flat byte buffer (compiled on first call)."""
    import numba

    lut = np.full(256, 255, dtype=np.uint8)
    for i, c in enumerate(b"ACGT"):
        lut[c] = i

    @numba.njit(nogil=True, cache=False)
    def kernel(buf, starts, lengths, out):
        for r in range(starts.shape[0]):
            s, n = starts[r], min(lengths[r], MAX_LEN)
            for j in range(L):
                b = j * K
                if b + K > n:
                    out[r, j] = 1
                    continue
                code = 0
                bad = False
                for q in range(K):
                    d = lut[buf[s + b + q]]
                    if d == 255:
                        bad = True
                    code = code * 4 + (d & 3)
                out[r, j] = 1 if bad else code + 2

    def run(seqs: list[str]) -> np.ndarray:
        # Getting the bytes out of Python strings is part of the cost of this route.
        joined = "".join(seqs).encode("ascii")
        buf = np.frombuffer(joined, dtype=np.uint8)
        lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
        starts = np.zeros(len(seqs), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        out = np.empty((len(seqs), L), dtype=np.int64)
        kernel(buf, starts, lengths, out)
        return out

    return run
