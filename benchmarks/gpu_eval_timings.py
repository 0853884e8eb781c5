"""GPU timings of the evaluation's torch paths (no UMAP needed).

Embedding throughput of the BIOSCAN-5M 8-4-4 architecture (random weights), exact cosine
k-NN at 100k keys against a NumPy brute force, the linear probe at 50k x 768 with 1000
classes, and fine-tuning steps. Run: ``python benchmarks/gpu_eval_timings.py``.
"""

import argparse
import json
import time

import numpy as np
import torch


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--json")
    args = p.parse_args(argv)
    import bioscan_kmer
    from bioscan_kmer.eval.embeddings import embed_sequences
    from bioscan_kmer.eval.finetune import PooledClassifier, fine_tune
    from bioscan_kmer.eval.knn import cosine_knn
    from bioscan_kmer.eval.probes import linear_probe
    from bioscan_kmer.model import Encoder, get_preset

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    out = {"device": dev, "gpu": torch.cuda.get_device_name() if dev == "cuda" else None}

    def sync():
        if dev == "cuda":
            torch.cuda.synchronize()

    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 658)) for _ in range(20000)]
    for preset in ("bioscan5m-8-4-4", "barcodebert-4-12-12"):
        cfg = get_preset(preset)
        tok = bioscan_kmer.KmerTokenizer(k=cfg.k, max_len=660, preset=cfg.tokenizer_preset)
        enc = Encoder(cfg).to(dev).eval()
        embed_sequences(enc, tok, seqs[:512], batch_size=256, device=dev)
        sync(); t = time.perf_counter()
        x = embed_sequences(enc, tok, seqs, batch_size=256, device=dev)
        sync(); s = time.perf_counter() - t
        out[f"embed_{preset}_seq_per_s"] = len(seqs) / s
        print(f"embedding {preset}: {len(seqs) / s:,.0f} seq/s ({x.shape})", flush=True)

    keys = rng.normal(size=(100_000, 768)).astype(np.float32)
    q = rng.normal(size=(10_000, 768)).astype(np.float32)
    cosine_knn(q[:100], keys, 5, device=dev)
    sync(); t = time.perf_counter()
    idx, _ = cosine_knn(q, keys, 5, device=dev)
    sync(); s = time.perf_counter() - t
    t = time.perf_counter()
    ref, _ = cosine_knn(q[:1000], keys, 5, backend="numpy")
    s_np = (time.perf_counter() - t) * 10
    agree = float(np.mean(idx[:1000, 0] == ref[:, 0]))
    out.update(knn_100k_keys_10k_queries_s=s, knn_numpy_estimate_s=s_np, knn_top1_agreement=agree)
    print(f"cosine 5-NN 100k keys x 10k queries: {s:.2f} s ({10_000 / s:,.0f} q/s), numpy {s_np:.1f} s, "
          f"{s_np / s:.0f}x; top-1 agreement {agree:.4f}", flush=True)

    n, d, c = 50_000, 768, 1000
    y = rng.integers(0, c, n)
    centres = rng.normal(size=(c, d)).astype(np.float32)
    xtr = centres[y] + rng.normal(size=(n, d)).astype(np.float32) * 3
    yte = rng.integers(0, c, 5000)
    xte = centres[yte] + rng.normal(size=(5000, d)).astype(np.float32) * 3
    t = time.perf_counter()
    r = linear_probe(xtr, y, xte, yte, val_x=xte[:1000], val_y=yte[:1000], device=dev)
    s = time.perf_counter() - t
    out.update(linear_probe_50k_768_1000_s=s, linear_probe_acc=r["accuracy_micro"])
    print(f"linear probe 50k x 768, 1000 classes, 3 L2 values: {s:.1f} s, acc {r['accuracy_micro']:.3f}", flush=True)

    cfg = get_preset("bioscan5m-8-4-4")
    tok = bioscan_kmer.KmerTokenizer(k=cfg.k, max_len=660, preset=cfg.tokenizer_preset)
    e = tok(seqs[:4096], return_tensors="np")
    ids, mask = e["input_ids"].astype(np.int64), e["attention_mask"].astype(np.int64)
    yy = rng.integers(0, 50, 4096)
    enc = Encoder(cfg)
    t = time.perf_counter()
    r = fine_tune(lambda k: PooledClassifier(enc, cfg.hidden_size, k), (ids[:3072], mask[:3072]), yy[:3072],
                  (ids[3072:3584], mask[3072:3584]), yy[3072:3584], (ids[3584:], mask[3584:]), yy[3584:],
                  epochs=2, batch_size=32, device=dev)
    sync(); s = time.perf_counter() - t
    out["finetune_844_seq_per_s"] = 2 * 3072 / s
    print(f"fine-tuning 8-4-4, 2 epochs x 3072 seqs (+val/test): {s:.1f} s, {2 * 3072 / s:,.0f} train seq/s", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
