"""Pretraining throughput of candidate CPU-sized encoders, to choose the `small` preset.

Each candidate (the `tiny` preset widened and deepened) pretrains 40 steps of batch 32 on
real barcodes (the first 6,000 distinct cleaned barcodes of a BOLD file) with 1 and 2
torch threads; the throughput is that of steps 21-40 (the log's second window), so that
start-up costs are left out. Run with OMP_WAIT_POLICY=PASSIVE on a machine left alone.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/cpu_preset_speed.py ../shared/data/bold_insect_coi5p_108k.tsv.gz
"""
import argparse
import shutil
import tempfile
from pathlib import Path

import torch

from bioscan_kmer import KmerTokenizer, clean, unique
from bioscan_kmer.data.reading import read_any
from bioscan_kmer.model.config import get_preset
from bioscan_kmer.train import pretrain

CANDIDATES = ((128, 4, 512), (192, 4, 768), (256, 4, 1024), (256, 6, 1024))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="BOLD TSV / FASTA / CSV of barcodes")
    ap.add_argument("--rows", type=int, default=6000, help="distinct barcodes to train on")
    args = ap.parse_args()
    seqs = [s for s in unique(clean(read_any(args.data)["dna_barcode"].dropna().astype(str).tolist()))[0] if s]
    seqs = seqs[:args.rows]
    tok = KmerTokenizer(k=4, max_len=660, preset="bert")
    print("| hidden | layers | FFN | parameters | threads | tokens/s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for hidden, layers, ffn in CANDIDATES:
        mcfg = get_preset("tiny").replace(hidden_size=hidden, num_layers=layers, num_heads=4, intermediate_size=ffn)
        for threads in (1, 2):
            out = Path(tempfile.mkdtemp(prefix="bk-speed-"))
            try:
                res = pretrain(seqs, out / "run", tokenizer=tok, model_config=mcfg, steps=40, batch_size=32,
                               lr=1e-3, log_every=20, val_split=None, ckpt_every=0, threads=threads)
                state = torch.load(res["checkpoint"], weights_only=True)
                n = sum(v.numel() for v in state["model"].values())
            finally:
                shutil.rmtree(out, ignore_errors=True)
            print(f"| {hidden} | {layers} | {ffn} | {n / 1e6:.2f}M | {threads} | {res['tokens_per_s']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
