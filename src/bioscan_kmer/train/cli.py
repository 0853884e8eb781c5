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
    from ..model.masking import RECIPES as MASK_RECIPES
    from .config import PRESET_RECIPES, TRAINING_RECIPES

    recipes = ", ".join(f"{preset}: {recipe}" for preset, recipe in PRESET_RECIPES.items())
    p.add_argument("--data", required=True, metavar="DATA",
                   help="training data: a shard directory written by `bioscan-kmer prepare`, or a "
                        "FASTA/TSV/CSV of barcodes")
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS),
                   help="model preset (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="run directory: checkpoint.pt, log.jsonl, loss.png, config.json")
    p.add_argument("--resume", action="store_true",
                   help="continue from DIR/checkpoint.pt (a fresh start when there is none); "
                        "rerun the same command line after a stop or pre-emption")
    p.add_argument("--recipe", choices=sorted(TRAINING_RECIPES), default=None,
                   help="where unset training settings come from (default: the preset's; "
                        f"{recipes}). barcodebert: BarcodeBERT's pretraining (35 epochs, batch 16, "
                        "lr 1e-4 x batch/64, one-cycle with cycled beta1, no clipping, fp32); "
                        "demo: the tiny model's one-minute CPU run (300 steps, batch 32, lr 3e-3, "
                        "10%% warm-up, clipping at 1, one CPU thread)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help="optimizer steps of the whole run "
                        "(default: the recipe's)")
    length.add_argument("--epochs", type=int, default=None,
                        help="passes over the training data, instead of --steps (barcodebert: 35)")
    g = p.add_argument_group("optimisation (defaults: the recipe's)")
    g.add_argument("--batch-size", type=int, default=None, help="sequences per process per micro-batch")
    g.add_argument("--grad-accum", type=int, default=1,
                   help="micro-batches per optimizer step (default: %(default)s)")
    g.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (barcodebert: 1e-4 x global batch / 64)")
    g.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay")
    g.add_argument("--schedule", choices=("onecycle", "cosine", "constant"), default=None,
                   help="learning-rate schedule, stepped every optimizer step")
    g.add_argument("--warmup-steps", type=int, default=None,
                   help="warm-up steps (default: the recipe's fraction of the run)")
    g.add_argument("--clip-grad", type=float, default=None,
                   help="max global gradient norm; 0 disables (barcodebert: 0)")
    g.add_argument("--mask-recipe", choices=MASK_RECIPES, default=None,
                   help="masking: barcodebert (50%% [MASK], loss on every k-mer) or bert (15%%, 80/10/10)")
    g.add_argument("--mask-ratio", type=float, default=None,
                   help="override the masking recipe's probability (0.5 / 0.15)")
    g.add_argument("--dropout", type=float, default=None, help="override the preset's dropout")
    g.add_argument("--seed", type=int, default=0,
                   help="seed of initialisation, data order, random offsets, masking and dropout "
                        "(default: %(default)s)")
    g = p.add_argument_group("data and evaluation")
    g.add_argument("--train-split", default="pretrain",
                   help="shard split to train on (default: %(default)s)")
    g.add_argument("--val-split", default="auto",
                   help="validation split ('auto': 'val' when present; 'none' disables)")
    g.add_argument("--val-every", type=int, default=200,
                   help="validate every N steps and at the end; 0: only at the end (default: %(default)s)")
    g.add_argument("--val-batches", type=int, default=20,
                   help="batches per validation, per process (default: %(default)s)")
    g.add_argument("--num-workers", type=int, default=0,
                   help="DataLoader workers per process (default 0: whole-batch reads outrun the GPU)")
    g = p.add_argument_group("run")
    g.add_argument("--ckpt-every", type=int, default=500,
                   help="write the checkpoint every N steps and at the end; 0: only at the end "
                        "(default: %(default)s). SIGTERM and SIGUSR1 also write it, after the current step")
    g.add_argument("--snapshot-steps", type=_step_list, default=(), metavar="N,N,...",
                   help="also keep the weights after these steps in DIR/snapshots/step_<N>.pt "
                        "(model-only checkpoints, e.g. for a learning curve; 0 = the initialisation)")
    g.add_argument("--log-every", type=int, default=10,
                   help="steps between log.jsonl records (default: %(default)s)")
    g.add_argument("--device", default=None, help="cuda, cuda:N or cpu (default: cuda if available)")
    g.add_argument("--precision", choices=("fp32", "tf32", "bf16", "auto"), default=None,
                   help="speed switch (default: the recipe's; barcodebert: fp32, as the original). "
                        "tf32: TF32 matmuls on CUDA; bf16: bf16 autocast; auto: bf16 on CUDA, fp32 on CPU")
    g.add_argument("--compile", action="store_true", help="use torch.compile")
    g.add_argument("--loss-chunk-rows", type=int, default=None, metavar="N",
                   help="compute the loss N positions at a time without the full logits "
                        "(saves memory for 8-4-4's 65,536-way output)")
    g.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: the recipe's; demo: 1, barcodebert: torch's)")
    g.add_argument("--no-progress", action="store_true", help="no settings line and no progress bar")


def _step_list(text: str) -> tuple[int, ...]:
    try:
        steps = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected step numbers (0 = the initialisation) separated by commas, got {text!r}") from None
    if not steps or min(steps) < 0:
        raise argparse.ArgumentTypeError(f"expected step numbers (0 = the initialisation) separated by commas, got {text!r}")
    return steps


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
    """Run the parsed command; returns the exit status: 2 for a user-facing error,
    128 + the signal number when SIGTERM/SIGUSR1 stopped the run (after its checkpoint)."""
    from ..errors import is_user_error, one_line
    from ..model.checkpoint import DiskFullError
    from .config import TrainConfig
    from .loop import pretrain
    from .preemption import Stopped

    try:
        cfg = TrainConfig(
            preset=args.preset, recipe=args.recipe, steps=args.steps, epochs=args.epochs,
            batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr,
            weight_decay=args.weight_decay, schedule=args.schedule, warmup_steps=args.warmup_steps,
            clip_grad=args.clip_grad, mask_recipe=args.mask_recipe, mask_ratio=args.mask_ratio,
            dropout=args.dropout, train_split=args.train_split,
            val_split=None if str(args.val_split).lower() == "none" else args.val_split,
            val_every=args.val_every, val_batches=args.val_batches, ckpt_every=args.ckpt_every,
            snapshot_steps=args.snapshot_steps,
            log_every=args.log_every, seed=args.seed, device=args.device, precision=args.precision,
            compile=args.compile, loss_chunk_rows=args.loss_chunk_rows, num_workers=args.num_workers,
            threads=args.threads,
            progress=not args.no_progress,
        )
        result = pretrain(args.data, args.out, train_config=cfg, resume=args.resume)
    except Stopped as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except DiskFullError as exc:
        return _error(exc.strerror or str(exc))
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return _error(f"no space left on the device: {exc.filename or args.out}")
        if isinstance(exc, (FileNotFoundError, FileExistsError, PermissionError)):
            return _error(str(exc))
        raise
    except Exception as exc:
        if not is_user_error(exc):
            raise
        return _error(one_line(exc))
    if result["world_size"] == 1 or _is_main():
        loss = result["last_loss"]
        val = result["val_loss"]
        if result["stopped_by"]:
            print(f"{PROG}: stopped by {result['stopped_by']} after step {result['steps']:,} of "
                  f"{result['total_steps']:,}; checkpoint {result['checkpoint']}; rerun the same command "
                  "with --resume to continue", file=sys.stderr)
        else:
            print(f"pretrained {result['steps']} steps: loss {result['first_loss']:.4f} -> {loss:.4f}"
                  + (f", validation {val:.4f}" if val is not None else "")
                  + f"; checkpoint {result['checkpoint']}, loss curve {result['plot']}")
            print(f"settings: {result['settings']}")
    if result["stopped_by"]:
        import signal

        return 128 + signal.Signals[result["stopped_by"]].value
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
