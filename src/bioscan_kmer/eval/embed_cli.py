"""``bioscan-kmer embed``: one embedding per record of a FASTA / BOLD / BIOSCAN file.

Registered by :mod:`bioscan_kmer.cli` through :func:`register`; the work is
:func:`bioscan_kmer.eval.embed.embed_file`, which checks every option, the output path
and the input's columns before it reads the data. torch is imported only when the
command runs.
"""

from __future__ import annotations

import argparse

from .._options import int_option

__all__ = ["register", "cmd_embed"]

_SHOW_SKIPPED = 10


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``embed`` sub-command to the ``bioscan-kmer`` parser."""
    p = subparsers.add_parser(
        "embed", help="embeddings of your barcodes from a trained encoder (.npy + ids, or Parquet)",
        description="Clean the barcodes of a FASTA, BOLD TSV or BIOSCAN metadata file (.gz too), embed "
                    "each distinct one with an encoder checkpoint (mean of one layer's hidden states over "
                    "the real tokens) and write one vector per record: OUT.npy with OUT.ids.tsv beside "
                    "it (row, id), or OUT.parquet (row, id, the input's columns, embedding).")
    p.add_argument("input", help="FASTA, BOLD TSV, BIOSCAN metadata CSV/TSV or Parquet; .gz of the text "
                   "ones is read directly (the kind is told from the content)")
    p.add_argument("--checkpoint", required=True, help="our checkpoint (file or run directory) or Hugging "
                   "Face BERT weights (.bin/.pt/.safetensors or a model directory)")
    p.add_argument("-o", "--output", required=True, help="OUT.npy (float32 matrix + OUT.ids.tsv) or "
                   "OUT.parquet (row, id and metadata columns + a fixed-size list column 'embedding')")
    p.add_argument("--layer", type=int_option(), default=-1,
                   help="hidden state to average: -1 the last layer (default), 0 the token embeddings, "
                        "1..L the blocks; negative values count from the end")
    p.add_argument("--batch-size", type=int_option(1), default=256, help="sequences per forward pass (default 256)")
    p.add_argument("--device", help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--hf-preset", help="architecture of a Hugging Face state dict (e.g. bioscan5m-8-4-4); "
                   "default: read off the weights and config.json")
    p.add_argument("--tokenizer", help="tokenizer JSON (KmerTokenizer.save) for Hugging Face weights with a "
                   "non-default tokenizer; our checkpoints carry theirs")
    p.add_argument("--column", default="dna_barcode",
                   help="barcode column (default dna_barcode; a BOLD export's nuc column is read as dna_barcode)")
    p.add_argument("--id-column", default="processid",
                   help="column identifying each record in the output (default processid; a FASTA "
                        "record's processid is its header up to the first '|' or space)")
    p.add_argument("--skip-empty", action="store_true",
                   help="leave out records whose barcode is missing or empty after cleaning (listed on "
                        "stdout; the output's row column shows the gaps) instead of stopping with an error")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_embed)
    return p


def cmd_embed(args) -> int:
    """Run ``bioscan-kmer embed``; returns 0, raises a UserError on bad input."""
    from .._atomic import check_output_path
    from .embed import embed_file, output_paths

    _, out, ids = output_paths(args.output)  # an unknown extension, before anything else
    check_output_path(out, what="-o")
    result = embed_file(args.input, args.checkpoint, out, column=args.column, id_column=args.id_column,
                        layer=args.layer, batch_size=args.batch_size, device=args.device,
                        hf_preset=args.hf_preset, tokenizer=args.tokenizer, skip_empty=args.skip_empty,
                        progress=not args.quiet)
    skipped = result["skipped"]
    if skipped:
        shown = ", ".join(f"row {s['row']} ({s['id']}: {s['reason']})" for s in skipped[:_SHOW_SKIPPED])
        more = f", and {len(skipped) - _SHOW_SKIPPED:,} more" if len(skipped) > _SHOW_SKIPPED else ""
        print(f"skipped {len(skipped):,} record(s) without a barcode: {shown}{more}")
    rate = result["embedded"] / result["embed_seconds"] if result["embed_seconds"] > 0 else float("nan")
    print(f"embedded {result['embedded']:,} of {result['rows']:,} records ({result['distinct']:,} distinct "
          f"barcodes) with layer {result['layer']} of {result['num_layers']}: {result['dim']} dimensions, "
          f"{result['seconds']:.1f} s on {result['device']} ({rate:,.0f} records/s in the model)")
    print("wrote " + ", ".join(str(p) for p in (result["output"], result["ids"]) if p is not None))
    return 0
