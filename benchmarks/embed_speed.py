"""Throughput of ``bioscan-kmer embed`` on real barcodes (docs/eval.md, "Embedding your own barcodes").

Usage::

    PYTHONPATH=src nice -n 10 python3 benchmarks/embed_speed.py --rows 20000 [--preset tiny] [--device cpu]

Takes the first ``--rows`` records of the real BOLD corpus, saves a seeded, untrained
encoder of ``--preset`` (throughput does not depend on the weights) with the default
tokenizer (k=4, 660 nt, 165 tokens), and times, in one process:

- ``embed``: the command end to end (read, clean, deduplicate, embed, write ``.npy``);
- ``baseline``: :func:`bioscan_kmer.eval.embeddings.embed_sequences` on every cleaned
  record, duplicates included (the evaluation's path), same batch size and device.

Prints records/s of both and their ratio; timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--device", default=None)
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/bold_insect_coi5p_108k.tsv.gz"))
    args = ap.parse_args()

    import numpy as np
    import torch

    import bioscan_kmer
    from bioscan_kmer.cli import main as cli
    from bioscan_kmer.data.reading import read_any
    from bioscan_kmer.eval.embeddings import embed_sequences
    from bioscan_kmer.eval.knn import default_device
    from bioscan_kmer.model import MaskedLM, get_preset, save_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with gzip.open(args.data, "rt") as src, open(tmp / "first.tsv", "w") as dst:
            for i, line in enumerate(src):
                if i > args.rows:
                    break
                dst.write(line)
        tok = bioscan_kmer.KmerTokenizer()  # k=4, 660 nt: BarcodeBERT's
        torch.manual_seed(0)
        mlm = MaskedLM(get_preset(args.preset).with_tokenizer(tok)).eval()
        ckpt = save_checkpoint(tmp / "ckpt.pt", {"model": mlm.state_dict(), "config": mlm.config.to_dict(),
                                                 "tokenizer": tok.config})
        device = str(default_device(args.device))
        argv = ["embed", str(tmp / "first.tsv"), "--checkpoint", str(ckpt), "-o", str(tmp / "e.npy"),
                "--batch-size", str(args.batch_size), "--device", device, "-q"]
        t0 = time.perf_counter()
        assert cli(argv) == 0
        t_embed = time.perf_counter() - t0
        n = np.load(tmp / "e.npy").shape[0]

        seqs = bioscan_kmer.clean(read_any(tmp / "first.tsv", columns=["dna_barcode"])["dna_barcode"])
        distinct = len(bioscan_kmer.unique(seqs)[0])
        t0 = time.perf_counter()
        embed_sequences(mlm.encoder, tok, seqs, batch_size=args.batch_size, device=device)
        t_base = time.perf_counter() - t0

    print(f"\n{n:,} records ({distinct:,} distinct barcodes), preset {args.preset}, batch {args.batch_size}, "
          f"{device}, {torch.get_num_threads()} torch threads")
    print("| path | seconds | records/s |\n|---|---|---|")
    print(f"| bioscan-kmer embed (end to end, distinct barcodes once) | {t_embed:.1f} | {n / t_embed:,.0f} |")
    print(f"| baseline: embed_sequences on every record | {t_base:.1f} | {len(seqs) / t_base:,.0f} |")
    print(f"ratio embed / baseline: {t_base / t_embed:.2f}x")


if __name__ == "__main__":
    main()
