"""Why masked-LM pretraining lowers 1-NN genus on unseen species: the geometry of the features.

Works on the output directory of ``bioscan-kmer benchmark`` (its ``table.parquet``, and the
same keys as its learning curve: a seeded subsample of at most 10,000 train records, queries
= test_unseen) and on any encoder checkpoints (the run's ``run/snapshots/step_*.pt``, or
those of an ablation run). Subcommands:

``probe CKPT...``
    For every hidden state: the share of the keys' variance in 1 and 10 principal
    directions, the mean cosine similarity of random key pairs, and 1-NN genus on
    ``test_unseen`` by cosine on the features raw (the paper's protocol), centred,
    z-scored, with the 1, 3 or 10 largest principal directions removed, and PCA-whitened
    (``bioscan_kmer.eval.whiten``; every transform fitted on the keys, no labels).
``directions CKPT...``
    What the six largest principal directions of the embedding and last layers encode:
    the share of each direction's variance explained (R^2) by the barcode's GC content,
    its length, the reading frame of its first base, and its genus.
``frames CKPT...``
    1-NN genus when every barcode is first trimmed to start on a codon (its reading frame
    found as the frame without TAA/TAG stops, the invertebrate mitochondrial code), and
    when the features are pooled under the training corruption (15% or 50% [MASK]).
``shards --k K -o DIR``
    Pretraining shards of another k with the benchmark's rule (for a k ablation).

    python benchmarks/real_embedding_geometry.py --bench real_small probe real_small/run/snapshots/step_*.pt
    python benchmarks/real_embedding_geometry.py --bench real_small shards --k 6 -o shards6
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bioscan_kmer.benchmark import BenchmarkConfig, _curve_data, _pretrain_splits, _read_table
from bioscan_kmer.eval.embeddings import batched_apply, embed_sequences, load_encoder, masked_mean
from bioscan_kmer.eval.probes import knn_probe
from bioscan_kmer.eval.whiten import Whitening

STOPS = ("TAA", "TAG")  # stop codons of the invertebrate mitochondrial code (TGA codes Trp)


def reading_frame(seq: str) -> int:
    """The frame (0, 1, 2) of ``seq`` with the fewest TAA/TAG codons: where its first codon starts."""
    counts = [sum(seq[i:i + 3] in STOPS for i in range(f, len(seq) - 2, 3)) for f in range(3)]
    return int(np.argmin(counts))


def transforms(keys: np.ndarray, x: np.ndarray):
    """(name, features) for every variant of ``x``; each statistic comes from ``keys`` alone."""
    mu = keys.mean(axis=0)
    sd = keys.std(axis=0) + 1e-6
    yield "raw", x
    yield "centred", x - mu
    yield "z-scored", (x - mu) / sd
    _, _, vt = np.linalg.svd(keys - mu, full_matrices=False)
    for d in (1, 3, 10):
        y = x - mu
        yield f"top {d} removed", y - (y @ vt[:d].T) @ vt[:d]
    yield "whitened", Whitening.fit(keys)(x)


class Probe:
    """The learning curve's keys and queries, and a 1-NN genus accuracy on them."""

    def __init__(self, bench: Path):
        self.uniq, self.offsets, self.parts = _curve_data(bench, BenchmarkConfig(preset="small"))
        self.keys = [self.uniq[i] for i in self.offsets["train_lp"]]
        self.queries = [self.uniq[i] for i in self.offsets["test_unseen"]]
        self.key_genus = self.parts["train_lp"]["genus"]
        self.query_genus = self.parts["test_unseen"]["genus"]

    def knn(self, keys_x, queries_x) -> float:
        return 100.0 * knn_probe(keys_x, self.key_genus, queries_x, self.query_genus)["accuracy_micro"]

    def embed(self, path, keys, queries, layers=None):
        encoder, tok = load_encoder(path)
        layers = layers if layers is not None else list(range(encoder.config.num_layers + 1))
        return (embed_sequences(encoder, tok, keys, layer=layers),
                embed_sequences(encoder, tok, queries, layer=layers), encoder, tok)


def cmd_probe(probe: Probe, paths) -> None:
    names = None
    for path in paths:
        fk, fq, _, _ = probe.embed(path, probe.keys, probe.queries)
        for layer in fk:
            k, q = fk[layer], fq[layer]
            white = Whitening.fit(k)
            unit = k / np.linalg.norm(k, axis=1, keepdims=True)
            pairs = np.random.default_rng(0).integers(0, len(k), (2, 2000))
            row = {"top 1 share": 100 * white.top_share(1), "top 10 share": 100 * white.top_share(10),
                   "mean cosine": float((unit[pairs[0]] * unit[pairs[1]]).sum(axis=1).mean())}
            for name, y in transforms(k, np.concatenate([k, q])):
                row[name] = probe.knn(y[:len(k)], y[len(k):])
            if names is None:
                names = list(row)
                print("| checkpoint | layer | " + " | ".join(names) + " |")
                print("|---|---:|" + "---:|" * len(names))
            cells = " | ".join(f"{row[n]:.3f}" if n == "mean cosine" else f"{row[n]:.2f}" for n in names)
            print(f"| {Path(path).name} | {layer} | {cells} |", flush=True)


def _r2_categorical(z, labels):
    z = z - z.mean()
    fitted = np.zeros_like(z)
    for v in np.unique(labels):
        sel = labels == v
        fitted[sel] = z[sel].mean()
    return float((fitted**2).sum() / (z**2).sum())


def _r2_linear(z, design):
    x = np.c_[np.ones(len(z)), design]
    resid = z - x @ np.linalg.lstsq(x, z, rcond=None)[0]
    return float(1 - (resid**2).sum() / ((z - z.mean())**2).sum())


def cmd_directions(probe: Probe, paths) -> None:
    seqs = probe.keys
    gc = np.array([(s.count("G") + s.count("C")) / max(1, len(s)) for s in seqs])
    length = np.array([len(s) for s in seqs], dtype=float)
    frame = np.array([reading_frame(s) for s in seqs])
    print(f"reading frame of the first base among the keys: {np.bincount(frame, minlength=3).tolist()}")
    print("| checkpoint | layer | direction | share of variance | R^2 GC | R^2 length | R^2 frame | R^2 genus |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for path in paths:
        encoder, tok = load_encoder(path)
        last = encoder.config.num_layers
        feats = embed_sequences(encoder, tok, seqs, layer=[0, last])
        for layer, x in feats.items():
            c = x - x.mean(axis=0)
            _, s, vt = np.linalg.svd(c, full_matrices=False)
            share = s**2 / (s**2).sum()
            for i in range(6):
                z = c @ vt[i]
                print(f"| {Path(path).name} | {layer} | {i + 1} | {100 * share[i]:.1f}% | {_r2_linear(z, gc):.2f} | "
                      f"{_r2_linear(z, np.c_[length, length**2]):.2f} | {_r2_categorical(z, frame):.2f} | "
                      f"{_r2_categorical(z, probe.key_genus):.2f} |", flush=True)


def cmd_frames(probe: Probe, paths) -> None:
    import torch

    from bioscan_kmer.model.masking import apply_masking

    trim = [(s[reading_frame(s):]) for s in probe.keys], [(s[reading_frame(s):]) for s in probe.queries]
    print("| checkpoint | layer | as is | trimmed to the first codon | pooled under 15% [MASK] | under 50% [MASK] |")
    print("|---|---:|---:|---:|---:|---:|")
    for path in paths:
        fk, fq, encoder, tok = probe.embed(path, probe.keys, probe.queries)
        tk, tq, _, _ = probe.embed(path, *trim)
        last = encoder.config.num_layers

        def corrupted(seqs, ratio):
            enc = tok(seqs, return_tensors="np")
            gen = torch.Generator().manual_seed(0)

            def pooled(ids, mask):
                masked, _ = apply_masking("barcodebert", ids, mask, encoder.config, generator=gen, ratio=ratio)
                states = encoder(masked, mask, output_hidden_states=True)
                return torch.cat([masked_mean(states[0], mask), masked_mean(states[last], mask)], dim=1)

            out = batched_apply(pooled, [enc["input_ids"], enc["attention_mask"].astype(np.int64)], batch_size=256)
            width = out.shape[1] // 2
            return {0: out[:, :width], last: out[:, width:]}

        masked = {r: (corrupted(probe.keys, r), corrupted(probe.queries, r)) for r in (0.15, 0.5)}
        for layer in (0, last):
            cells = [probe.knn(fk[layer], fq[layer]), probe.knn(tk[layer], tq[layer])]
            cells += [probe.knn(masked[r][0][layer], masked[r][1][layer]) for r in (0.15, 0.5)]
            print(f"| {Path(path).name} | {layer} | " + " | ".join(f"{c:.2f}" for c in cells) + " |", flush=True)


def cmd_shards(bench: Path, k: int, out: Path) -> None:
    from bioscan_kmer.data.prepare import prepare_shards

    table = _read_table(bench)
    splits = _pretrain_splits(table, BenchmarkConfig(preset="small"))
    res = prepare_shards(table, out, k=k, preset="bert", splits=["pretrain", "val"], pretrain_splits=splits,
                         force=True)
    print(f"{out}: {res['rows']} (k={k}, splits {', '.join(splits)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, required=True, help="output directory of bioscan-kmer benchmark")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("probe", "directions", "frames"):
        sub.add_parser(name).add_argument("checkpoints", nargs="+")
    sh = sub.add_parser("shards")
    sh.add_argument("--k", type=int, required=True)
    sh.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args()
    if args.cmd == "shards":
        cmd_shards(args.bench, args.k, args.out)
        return
    probe = Probe(args.bench)
    {"probe": cmd_probe, "directions": cmd_directions, "frames": cmd_frames}[args.cmd](probe, args.checkpoints)


if __name__ == "__main__":
    main()
