"""Evaluation: the BIOSCAN-5M benchmark table (SPEC section 8) and its baselines.

See ``docs/eval.md``. Sub-modules are imported on first use, so that the command line
(which imports :mod:`bioscan_kmer.eval.cli` at start-up) does not pay for torch, UMAP or
scikit-learn until ``evaluate`` actually runs.

- metrics: :func:`topk_accuracy`, :func:`accuracy`, :func:`ami`
- labels: :class:`LabelMap`, :func:`label_codes` (one global map, never per split)
- knn: :func:`cosine_knn` (exact, blocked matrix products, GPU when present)
- embeddings: :func:`embed_sequences`, :func:`embed_tokens`, :func:`masked_mean`, :func:`load_encoder`
- probes: :func:`linear_probe`, :func:`knn_probe`, :func:`zero_shot_clustering`, :func:`retrieval`
- finetune: :func:`fine_tune`, :class:`PooledClassifier`
- baselines: :class:`PaperCNN`, :func:`kmer_frequencies`, :func:`edit_distance_nn`
- pipeline: :class:`EvalSettings`, :func:`evaluate_models` and the model wrappers
- report: :func:`build_table`, :func:`write_report`, :func:`umap_figure`
- real: :func:`load_bold`, :func:`evaluate_bold` (real BOLD barcodes)
- demo: :func:`demo_evaluate`, :func:`evaluate_checkpoint`, :func:`demo_settings`
"""

from __future__ import annotations

from bioscan_kmer._lazy import lazy_exports

_EXPORTS = {
    "topk_accuracy": "metrics", "accuracy": "metrics", "ami": "metrics", "ranked_from_scores": "metrics",
    "LabelMap": "labels", "label_codes": "labels", "RANKS": "labels",
    "cosine_knn": "knn",
    "embed_sequences": "embeddings", "embed_tokens": "embeddings", "masked_mean": "embeddings",
    "load_encoder": "embeddings", "embed_file": "embed", "embed_barcodes": "embed",
    "linear_probe": "probes", "knn_probe": "probes", "zero_shot_clustering": "probes",
    "retrieval": "probes", "standardize": "probes",
    "fine_tune": "finetune", "PooledClassifier": "finetune",
    "PaperCNN": "baselines", "kmer_frequencies": "baselines", "edit_distance_nn": "baselines",
    "edit_distance_probe": "baselines", "nucleotide_codes": "baselines",
    "EvalSettings": "pipeline", "evaluate_models": "pipeline", "prepare_splits": "pipeline",
    "EncoderModel": "pipeline", "CNNModel": "pipeline", "KmerFrequencyModel": "pipeline",
    "EditDistanceModel": "pipeline",
    "build_table": "report", "build_details": "report", "to_markdown": "report",
    "write_report": "report", "umap_figure": "report",
    "load_bold": "real", "hold_out_unseen": "real", "evaluate_bold": "real",
    "demo_evaluate": "demo", "evaluate_checkpoint": "demo", "demo_settings": "demo",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
