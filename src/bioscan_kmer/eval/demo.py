"""One call from a checkpoint and a split table to the written report.

:func:`evaluate_checkpoint` is what ``bioscan-kmer evaluate`` runs; :func:`demo_evaluate`
is the fast variant the demo calls at its end (subsampled so that it finishes in about
a minute on two CPU cores; the report's notes say what was subsampled).
"""

from __future__ import annotations

import time
from pathlib import Path

__all__ = ["evaluate_checkpoint", "demo_evaluate", "demo_settings", "BASELINES"]

BASELINES = ("cnn", "kmer", "edit")


def demo_settings(**changes):
    """Settings of the demo: everything runs, on seeded subsamples, with short training.

    Returns
    -------
    EvalSettings
    """
    from .pipeline import EvalSettings

    base = EvalSettings(
        max_train=1500, max_val=300, max_test=600, max_key_unseen=1000, max_test_unseen=600,
        # The encoder fine-tunes on the whole (subsampled) train split for 5 epochs: with
        # 400 records and 2 epochs it could not learn ~400 species (5% vs 63% measured on
        # the default demo). The CNN costs several times more per record on CPU.
        cluster_max_points=1000, finetune_epochs=5, finetune_lr=1e-3, finetune_head_lr=1e-2,
        finetune_batch_size=32, finetune_max_train=1500, cnn_max_train=400, cnn_epochs=2, cnn_batch_size=32,
        cnn_lr=3e-3,
        linear_max_iter=30, linear_l2=(1e-3,), edit_max_queries=200, figure_points=1000, progress=True,
    )
    return base.replace(**changes) if changes else base


def _models(encoder_spec, baselines, settings):
    from .pipeline import CNNModel, EditDistanceModel, EncoderModel, KmerFrequencyModel

    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(BASELINES)}")
    models = [EncoderModel(*encoder_spec)] if encoder_spec is not None else []
    if "cnn" in baselines:
        models.append(CNNModel(kernel_width=settings.cnn_kernel_width))
    if "kmer" in baselines:
        models.append(KmerFrequencyModel(settings.kmer_k))
    if "edit" in baselines:
        models.append(EditDistanceModel())
    if not models:
        raise ValueError("nothing to evaluate: give a checkpoint or at least one baseline")
    return models


def evaluate_checkpoint(df, checkpoint, out_dir, *, settings=None, baselines=BASELINES, name=None,
                        tokenizer=None, config=None, title="Benchmark", extra_notes=()) -> dict:
    """Evaluate an encoder checkpoint and the baselines on a table with splits; write the report.

    Parameters
    ----------
    df : pandas.DataFrame
        Records with ``dna_barcode``, the ranks and a ``split`` column.
    checkpoint : path-like or None
        Our checkpoint (file or run directory) or a HF BERT state dict; None runs only the
        baselines.
    out_dir : path-like
        Report directory (created).
    settings : EvalSettings, optional
    baselines : iterable of {"cnn", "kmer", "edit"}
    name : str, optional
        Row name of the encoder (default: the checkpoint's file name).
    tokenizer, config
        For a HF state dict (see :func:`bioscan_kmer.eval.load_encoder`).
    title : str
    extra_notes : iterable of str
        Added to the report's notes.

    Returns
    -------
    dict
        ``table`` (DataFrame, percent), ``markdown`` (str), ``paths`` (written files),
        ``run`` (everything :func:`evaluate_models` returned), ``seconds``.
    """
    from .embeddings import load_encoder
    from .pipeline import EvalSettings, evaluate_models
    from .report import build_table, to_markdown, write_report

    settings = settings or EvalSettings()
    t0 = time.perf_counter()
    if settings.progress:
        _shared_cpu_hint(settings.device)
    spec = None
    if checkpoint is not None:
        encoder, tok = load_encoder(checkpoint, tokenizer=tokenizer, config=config,
                                    device=settings.device or "cpu")
        spec = (name or Path(checkpoint).name, encoder, tok)
    models = _models(spec, tuple(baselines), settings)
    run = evaluate_models(df, models, settings)
    run["notes"] = list(extra_notes) + run["notes"]
    seconds = time.perf_counter() - t0
    run["notes"].append(f"total evaluation time {seconds:.1f} s")
    paths = write_report(run, out_dir, title=title)
    return {"table": build_table(run), "markdown": to_markdown(run, title=title), "paths": paths,
            "run": run, "seconds": seconds}


def _shared_cpu_hint(device) -> None:
    """Say, once per run on the CPU, how to avoid OpenMP's spin-waits on a busy machine.

    libgomp reads OMP_WAIT_POLICY when torch is imported, so only the caller's
    environment can set it. On a 2-core VM shared with other jobs the spinning made
    fine-tuning 2-6x slower per epoch and an encoder step up to 20x slower (docs/eval.md).
    """
    import os

    from .knn import default_device

    if os.environ.get("OMP_WAIT_POLICY") or str(default_device(device)) != "cpu":
        return
    from .estimate import announce

    announce("note: on a CPU shared with other jobs, run with OMP_WAIT_POLICY=PASSIVE in the environment: "
             "torch's OpenMP threads then sleep instead of spinning (several times faster there)")


def demo_evaluate(df_with_splits, checkpoint_path_or_None, out_dir, progress: bool = True, *,
                  threads: int | None = 1) -> dict:
    """The demo's last step: the benchmark table for the demo model and the baselines.

    Runs on seeded subsamples of the splits with short training (see
    :func:`demo_settings`), prints the table and writes the report to ``out_dir``.

    Parameters
    ----------
    df_with_splits : pandas.DataFrame
        The demo's synthetic table with its ``split`` column.
    checkpoint_path_or_None : path-like or None
        The demo model's checkpoint; None evaluates the baselines only.
    out_dir : path-like
    progress : bool
        Progress bars and the printed table.
    threads : int or None, default 1
        Torch CPU threads while the demo runs (restored afterwards); None leaves torch's
        setting alone. One thread by default: on a small shared machine OpenMP's
        spin-waiting made two threads up to 10x slower for the many small operations here.

    Returns
    -------
    dict
        As :func:`evaluate_checkpoint`.
    """
    import torch

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _demo_evaluate(df_with_splits, checkpoint_path_or_None, out_dir, progress)
    finally:
        torch.set_num_threads(previous)


def _demo_evaluate(df_with_splits, checkpoint_path_or_None, out_dir, progress):
    settings = demo_settings(progress=progress)
    title = "Benchmark on synthetic data (demo; subsampled, short training)"
    notes = ["synthetic data: the numbers show the pipeline works, not how good a model is"]
    out = evaluate_checkpoint(df_with_splits, checkpoint_path_or_None, out_dir, settings=settings,
                              name="demo encoder" if checkpoint_path_or_None is not None else None,
                              title=title, extra_notes=notes)
    if progress:
        print(out["markdown"])
        print(f"report written to {out['paths']['markdown']}")
    return out
