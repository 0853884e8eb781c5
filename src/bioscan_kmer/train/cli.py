"""The ``pretrain`` sub-command of ``bioscan-kmer``.

``bioscan_kmer.cli`` calls :func:`register` to add it; :func:`main` runs it alone
(``python -m bioscan_kmer.train.cli ...``). Under ``torchrun`` every process runs the
same command line.
"""

from __future__ import annotations

import argparse
import errno
import sys
from typing import Sequence

__all__ = ["register", "run", "main"]

PROG = "bioscan-kmer pretrain"


def _add_arguments(p: argparse.ArgumentParser) -> None:
    from ..model.config import PRESETS
    from ..model.masking import RECIPES

    p.add_argument("--data", required=True, metavar="SHARDS",
                   help="shard directory written by `bioscan-kmer prepare`")
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS),
                   help="model preset (default: %(default)s)")
    p.add_argument("--steps", type=int, required=True, help="optimizer steps of the whole run")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="run directory: checkpoint.pt, log.jsonl, loss.png, config.json")
    p.add_argument("--resume", action="store_true",
                   help="continue from DIR/checkpoint.pt (a fresh start when there is none)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--batch-size", type=int, default=16, help="sequences per process per micro-batch")
    g.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    g.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default: base x global batch / 64)")
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--schedule", choices=("onecycle", "cosine", "constant"), default="onecycle")
    g.add_argument("--warmup-steps", type=int, default=None)
    g.add_argument("--clip-grad", type=float, default=1.0, help="max gradient norm; 0 disables")
    g.add_argument("--mask-recipe", choices=RECIPES, default="barcodebert")
    g.add_argument("--mask-ratio", type=float, default=None)
    g.add_argument("--dropout", type=float, default=None, help="override the preset's dropout")
    g.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("data and evaluation")
    g.add_argument("--train-split", default="pretrain")
    g.add_argument("--val-split", default="auto",
                   help="validation split ('auto': 'val' when present; 'none' disables)")
    g.add_argument("--val-every", type=int, default=200)
    g.add_argument("--val-batches", type=int, default=20)
    g.add_argument("--num-workers", type=int, default=0,
                   help="DataLoader workers per process (default 0: whole-batch reads outrun the GPU)")
    g = p.add_argument_group("run")
    g.add_argument("--ckpt-every", type=int, default=500)
    g.add_argument("--log-every", type=int, default=10)
    g.add_argument("--device", default=None, help="cuda, cuda:N or cpu (default: cuda if available)")
    g.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    g.add_argument("--compile", action="store_true", help="use torch.compile")
    g.add_argument("--loss-chunk-rows", type=int, default=None, metavar="N",
                   help="compute the loss N positions at a time without the full logits "
                        "(saves memory for 8-4-4's 65,536-way output)")
    g.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``pretrain`` sub-command; its ``func`` default is :func:`run`."""
    p = subparsers.add_parser(
        "pretrain", help="pretrain the DNA encoder (masked-LM) on shards",
        description="Masked-language-model pretraining of the k-mer BERT encoder on shards; "
                    "one process, or several under torchrun (NCCL on GPUs, gloo on CPUs).",
    )
    _add_arguments(p)
    p.set_defaults(func=run)
    return p


def _error(message: str) -> int:
    # One line, whatever the exception text held.
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; returns the exit status (2 for a user-facing error)."""
    from ..model.checkpoint import DiskFullError
    from .config import TrainConfig
    from .loop import pretrain

    try:
        cfg = TrainConfig(
            preset=args.preset, steps=args.steps, batch_size=args.batch_size, grad_accum=args.grad_accum,
            lr=args.lr, weight_decay=args.weight_decay, schedule=args.schedule,
            warmup_steps=args.warmup_steps, clip_grad=args.clip_grad or None,
            mask_recipe=args.mask_recipe, mask_ratio=args.mask_ratio, dropout=args.dropout,
            train_split=args.train_split,
            val_split=None if str(args.val_split).lower() == "none" else args.val_split,
            val_every=args.val_every, val_batches=args.val_batches, ckpt_every=args.ckpt_every,
            log_every=args.log_every, seed=args.seed, device=args.device, precision=args.precision,
            compile=args.compile, loss_chunk_rows=args.loss_chunk_rows, num_workers=args.num_workers,
            threads=args.threads,
            progress=not args.no_progress,
        )
        result = pretrain(args.data, args.out, train_config=cfg, resume=args.resume)
    except DiskFullError as exc:
        return _error(exc.strerror or str(exc))
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return _error(f"no space left on the device: {exc.filename or args.out}")
        if isinstance(exc, (FileNotFoundError, FileExistsError, PermissionError)):
            return _error(str(exc))
        raise
    except (ValueError, TypeError) as exc:
        # ShardError (missing shard/split), vocabulary mismatch, bad settings, resumption
        # that does not match its checkpoint.
        return _error(str(exc))
    if result["world_size"] == 1 or _is_main():
        loss = result["last_loss"]
        val = result["val_loss"]
        print(f"pretrained {result['steps']} steps: loss {result['first_loss']:.4f} -> {loss:.4f}"
              + (f", validation {val:.4f}" if val is not None else "")
              + f"; checkpoint {result['checkpoint']}, loss curve {result['plot']}")
    return 0


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pretrain`` as a stand-alone program."""
    parser = argparse.ArgumentParser(prog=PROG, description="Masked-LM pretraining of the DNA encoder.")
    _add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
