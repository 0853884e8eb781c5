"""The benchmark table of SPEC section 8 for any set of models.

:func:`evaluate_models` takes a metadata table with a ``split`` column (the eight
BIOSCAN-5M partitions) and a list of models, and runs for each model:

===========================  =====================================================
fine-tuned species           train -> test (seen), best epoch on val
linear probe species         frozen features, train -> test, l2 chosen on val
1-NN genus unseen            keys train, queries test_unseen, cosine, genus labels
zero-shot clustering         test + test_unseen, z-score, UMAP 50, Ward, AMI/rank
DNA-to-DNA retrieval         keys train + key_unseen; queries test (seen) and
                             test_unseen (unseen); top-1/3/5 micro+macro per rank
===========================  =====================================================

Label codes come from one map fitted on the whole table before any split is taken.
Features are computed once per distinct barcode and shared by all probes.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from .labels import label_codes
from .probes import RETRIEVAL_RANKS, knn_probe, linear_probe, retrieval, zero_shot_clustering

__all__ = [
    "EvalSettings",
    "SplitData",
    "prepare_splits",
    "EncoderModel",
    "CNNModel",
    "KmerFrequencyModel",
    "EditDistanceModel",
    "evaluate_models",
    "NEEDED_SPLITS",
]

NEEDED_SPLITS = ("train", "val", "test", "key_unseen", "test_unseen")


@dataclass
class EvalSettings:
    """Everything that decides the numbers of one evaluation run.

    Subsampling limits (``max_*``) are ``None`` for "use everything"; when one applies,
    a seeded random subset is taken and a note says so in the report.

    Attributes
    ----------
    seed : int
        Seeds subsampling, fine-tuning, UMAP.
    device : str, optional
        Torch device (CUDA when present by default).
    batch_size : int
        Embedding batch size.
    max_train, max_val, max_test, max_key_unseen, max_test_unseen : int, optional
        Records kept per split.
    cluster_max_points : int, optional
        Points clustered (a seeded subsample beyond it). Ward is exact in O(n) memory
        (fastcluster) but O(n^2 d) time: 50,000 x 50 took 71 s on 2 cores (docs/eval.md).
    finetune : bool
        Run fine-tuning at all.
    finetune_epochs, finetune_lr, finetune_head_lr, finetune_batch_size, finetune_max_train
        Fine-tuning (the head may get its own learning rate); at most
        ``finetune_max_train`` seeded-random train rows are used, by the encoder and (unless
        ``cnn_max_train`` is set) the CNN.
    finetune_patience, cnn_patience : int, optional
        Early stopping: training ends after this many epochs without a better validation
        accuracy (default 3; None runs every epoch). The best epoch on val is kept either
        way, and training always stops once val accuracy is 100% (no later epoch can be
        selected then).
    cnn_epochs, cnn_lr, cnn_batch_size, cnn_kernel_width, cnn_max_train
        The paper's CNN (Adam, batch 128, 20 epochs in the paper); ``cnn_max_train`` caps
        its train rows separately, since it costs several times the encoder per record on CPU.
    linear_l2, linear_max_iter, linear_backend
        Linear probe.
    kmer_k : int
        k of the k-mer frequency baseline.
    edit_max_queries : int, optional
        Queries of each edit-distance probe.
    ranks : tuple of str
        Ranks of clustering and retrieval.
    figure_points : int
        Points in the UMAP figure.
    progress : bool
        Progress bars.
    """

    seed: int = 0
    device: str | None = None
    batch_size: int = 256
    max_train: int | None = None
    max_val: int | None = None
    max_test: int | None = None
    max_key_unseen: int | None = None
    max_test_unseen: int | None = None
    cluster_max_points: int | None = 50000
    finetune: bool = True
    finetune_epochs: int = 5
    finetune_lr: float = 1e-4
    # A fresh head needs larger steps than pretrained weights; on the BOLD table 10x the
    # encoder's rate doubled fine-tuned accuracy of a small model (8% -> 15%) at 5 epochs.
    finetune_head_lr: float | None = 1e-3
    finetune_batch_size: int = 32
    finetune_max_train: int | None = None
    # On the README's 200k-record session the CNN's best val epoch was the second of 20
    # (val flat from the third on): 18 epochs, about 24 minutes on 2 cores, bought nothing.
    finetune_patience: int | None = 3
    cnn_patience: int | None = 3
    cnn_epochs: int = 20
    cnn_max_train: int | None = None
    cnn_lr: float = 1e-3
    cnn_batch_size: int = 128
    cnn_kernel_width: int = 3
    linear_l2: tuple = (1e-2, 1e-3, 1e-4)
    linear_max_iter: int = 200
    linear_backend: str = "torch"
    kmer_k: int = 4
    edit_max_queries: int | None = None
    ranks: tuple = RETRIEVAL_RANKS
    figure_points: int = 3000
    progress: bool = False

    def replace(self, **changes) -> "EvalSettings":
        """A copy with some fields changed; unknown names are an error."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown EvalSettings fields: {', '.join(unknown)}")
        new = copy.copy(self)
        for k, v in changes.items():
            setattr(new, k, v)
        return new


@dataclass
class SplitData:
    """The rows of the evaluation splits, with cleaned barcodes and global label codes.

    Attributes
    ----------
    seqs : dict
        ``{split: list of str}``.
    labels : dict
        ``{split: {rank: int64 array}}`` (global codes, -1 missing).
    rows : dict
        ``{split: int array}`` positions in the original table.
    orders : dict
        ``{split: str array}`` order names (for the figure legend), when the table has them.
    notes : list of str
        What was subsampled.
    """

    seqs: dict
    labels: dict
    rows: dict
    orders: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def size(self, split: str) -> int:
        return len(self.seqs[split])


def prepare_splits(df: pd.DataFrame, settings: EvalSettings | None = None) -> SplitData:
    """Select, subsample and clean the splits the probes need.

    Parameters
    ----------
    df : pandas.DataFrame
        All records with ``dna_barcode``, ``split`` and the taxonomic ranks (names, or
        the data layer's ``<rank>_id`` global codes).
    settings : EvalSettings, optional

    Returns
    -------
    SplitData

    Raises
    ------
    ValueError
        When a column is missing or ``train`` or ``test`` is empty. An empty
        ``test_unseen`` (small tables have no unseen species) is allowed: the unseen
        probes are then skipped with a note.
    """
    from .. import clean

    settings = settings or EvalSettings()
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    for col in ("dna_barcode", "split"):
        if col not in df.columns:
            raise ValueError(f"the table needs a {col!r} column")
    ranks = tuple(dict.fromkeys((*settings.ranks, "genus", "species", "order")))
    codes = label_codes(df, ranks)  # once, on the whole table: ids agree across splits
    split_col = df["split"].astype(str).to_numpy()
    limits = {"train": settings.max_train, "val": settings.max_val, "test": settings.max_test,
              "key_unseen": settings.max_key_unseen, "test_unseen": settings.max_test_unseen}
    rng = np.random.default_rng(settings.seed)
    seqs, labels, rows, orders, notes = {}, {}, {}, {}, []
    for split in NEEDED_SPLITS:
        idx = np.flatnonzero(split_col == split)
        limit = limits[split]
        if limit is not None and idx.size > limit:
            notes.append(f"{split}: {limit:,} of {idx.size:,} records (seeded random subsample)")
            idx = np.sort(rng.choice(idx, size=limit, replace=False))
        raw = df["dna_barcode"].iloc[idx].astype(object).where(df["dna_barcode"].iloc[idx].notna(), "")
        seqs[split] = clean(raw.astype(str).tolist()) if idx.size else []
        labels[split] = {r: codes[r][idx] for r in ranks}
        rows[split] = idx
        if "order" in df.columns:  # names for the figure legend
            o = df["order"].iloc[idx].astype(object)
            orders[split] = o.where(o.notna(), "").astype(str).to_numpy()
    if not seqs["test_unseen"]:
        notes.append("no test_unseen records: the unseen probes (1-NN genus, unseen retrieval) are skipped")
    for split in ("train", "test"):
        if not seqs[split]:
            raise ValueError(f"the {split!r} split is empty; the table's 'split' column must hold "
                             f"the BIOSCAN-5M partitions (see bioscan_kmer.data.splits.partition)")
    return SplitData(seqs=seqs, labels=labels, rows=rows, orders=orders, notes=notes)


def _unique_features(featurize, seqs):
    """Features of distinct barcodes only, expanded back to every row."""
    from .. import unique

    uniq, inverse, _ = unique(seqs)
    return featurize(list(uniq))[inverse]


def _train_subset(data: SplitData, settings: EvalSettings, limit: int | None = None):
    """The (seeded) train rows that fine-tuning uses: at most ``limit`` (default
    ``settings.finetune_max_train``)."""
    seqs, y = data.seqs["train"], data.labels["train"]["species"]
    if limit is None:
        limit = settings.finetune_max_train
    if limit is None or len(seqs) <= limit:
        return seqs, y
    pick = np.sort(np.random.default_rng(settings.seed + 1).choice(len(seqs), limit, replace=False))
    return [seqs[i] for i in pick], y[pick]


class EncoderModel:
    """A transformer encoder evaluated through fine-tuning and frozen-feature probes.

    Parameters
    ----------
    name : str
        Row name in the table.
    encoder : torch.nn.Module
        ``encoder(input_ids, attention_mask) -> (B, T, C)`` with ``config.hidden_size``.
    tokenizer : bioscan_kmer.KmerTokenizer
    layer : int, default -1
        The hidden state whose masked mean is the frozen feature (-1: the last layer, as
        the papers do; fine-tuning always pools the last layer).
    """

    linear_probe = True

    def __init__(self, name, encoder, tokenizer, layer: int = -1):
        self.name = name
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.layer = layer

    def features(self, seqs, settings):
        from .embeddings import embed_sequences

        return embed_sequences(self.encoder, self.tokenizer, seqs, batch_size=settings.batch_size,
                               device=settings.device, progress=settings.progress, layer=self.layer)

    def fine_tune(self, data: SplitData, settings: EvalSettings):
        from .finetune import PooledClassifier, fine_tune

        train_seqs, train_y = _train_subset(data, settings)

        def tok(seqs):
            enc = self.tokenizer(seqs, return_tensors="np") if seqs else None
            if enc is None:
                L = self.tokenizer.seq_len
                return np.zeros((0, L), np.int64), np.zeros((0, L), np.int64)
            return enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)

        hidden = self.encoder.config.hidden_size
        return fine_tune(
            lambda c: PooledClassifier(copy.deepcopy(self.encoder), hidden, c),
            tok(train_seqs), train_y, tok(data.seqs["val"]), data.labels["val"]["species"],
            tok(data.seqs["test"]), data.labels["test"]["species"],
            epochs=settings.finetune_epochs, lr=settings.finetune_lr, head_lr=settings.finetune_head_lr,
            batch_size=settings.finetune_batch_size, seed=settings.seed, patience=settings.finetune_patience,
            device=settings.device, progress=settings.progress, desc=f"fine-tuning {self.name}",
        )


class CNNModel:
    """The paper's supervised CNN: trained on train species, its 500-d layer probed.

    Its features are learned from the very species labels the linear probe would use, so
    the linear-probe column is left empty, as in the paper.
    """

    linear_probe = False

    def __init__(self, name="CNN (paper)", kernel_width: int = 3):
        self.name = name
        self.kernel_width = kernel_width
        self.model = None

    def fine_tune(self, data: SplitData, settings: EvalSettings):
        from .baselines import PaperCNN, nucleotide_codes
        from .finetune import fine_tune

        train_seqs, train_y = _train_subset(data, settings, settings.cnn_max_train)
        res = fine_tune(
            lambda c: PaperCNN(c, kernel_width=self.kernel_width),
            (nucleotide_codes(train_seqs),), train_y,
            (nucleotide_codes(data.seqs["val"]),), data.labels["val"]["species"],
            (nucleotide_codes(data.seqs["test"]),), data.labels["test"]["species"],
            epochs=settings.cnn_epochs, lr=settings.cnn_lr, batch_size=settings.cnn_batch_size,
            optimizer="adam", seed=settings.seed, patience=settings.cnn_patience,
            device=settings.device, progress=settings.progress, desc=f"training {self.name}",
        )
        self.model = res["model"]
        return res

    def features(self, seqs, settings):
        from .baselines import nucleotide_codes
        from .embeddings import batched_apply

        if self.model is None:
            raise ValueError("the CNN has no features before it is trained (call fine_tune first)")
        model = self.model.eval()
        return batched_apply(model.embed, [nucleotide_codes(seqs)], batch_size=settings.batch_size,
                             device=settings.device, progress=settings.progress, desc="CNN features")


class KmerFrequencyModel:
    """k-mer frequency vectors: no training, linear probe and cosine 1-NN on top."""

    linear_probe = True

    def __init__(self, k: int = 4, name: str | None = None):
        self.k = k
        self.name = name or f"{k}-mer frequency"

    def features(self, seqs, settings):
        from .baselines import kmer_frequencies

        return kmer_frequencies(seqs, self.k)

    fine_tune = None


class EditDistanceModel:
    """Nearest key by edit distance (edlib), the analogue of the paper's BLAST row.

    Reports 1-NN species accuracy on the seen test split (keys train), in the
    fine-tuned column as the paper does for BLAST, and 1-NN genus accuracy on
    test_unseen; it has no features for the other probes.
    """

    name = "edit-distance 1-NN"
    linear_probe = False
    fine_tune = None
    features = None


def _subsample_queries(seqs, y, limit, seed):
    if limit is None or len(seqs) <= limit:
        return seqs, y, None
    pick = np.sort(np.random.default_rng(seed).choice(len(seqs), limit, replace=False))
    return [seqs[i] for i in pick], y[pick], pick


def _strip(res):
    """Drop arrays and models from a probe result, keeping what the report needs."""
    return {k: v for k, v in res.items() if k not in ("predictions", "model", "classes", "embedding", "indices")}


def evaluate_models(df_or_data, models, settings: EvalSettings | None = None, *, figure_model: str | None = None) -> dict:
    """Run every probe for every model.

    Parameters
    ----------
    df_or_data : pandas.DataFrame or SplitData
        The table with splits, or splits already prepared by :func:`prepare_splits`.
    models : sequence
        :class:`EncoderModel`, :class:`CNNModel`, :class:`KmerFrequencyModel`,
        :class:`EditDistanceModel` instances (names must be distinct).
    settings : EvalSettings, optional
    figure_model : str, optional
        Model whose embeddings get a 2-D UMAP for the figure (default: the first one with
        features).

    Returns
    -------
    dict
        ``{"results": {model: {...}}, "notes": [...], "settings": EvalSettings,
        "figure": {"embedding", "order", "model", "n_total", "splits"} or None,
        "sizes": {split: n}}``.
    """
    settings = settings or EvalSettings()
    data = df_or_data if isinstance(df_or_data, SplitData) else prepare_splits(df_or_data, settings)
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be distinct, got {names}")
    notes = list(data.notes)
    results, figure = {}, None
    L, S = data.labels, data.seqs

    def say(text):
        if settings.progress:
            from .estimate import announce

            announce(text)

    for number, model in enumerate(models, 1):
        res = {"timings": {}, "notes": []}
        t = res["timings"]
        say(f"[{number}/{len(models)}] {model.name}")

        if isinstance(model, EditDistanceModel):
            from .baselines import edit_distance_probe

            for key, queries, rank in (("fine_tuned", "test", "species"), ("knn_genus_unseen", "test_unseen", "genus")):
                if not S[queries]:
                    continue
                qs, qy, pick = _subsample_queries(S[queries], L[queries][rank], settings.edit_max_queries, settings.seed)
                if pick is not None:
                    res["notes"].append(f"{queries}: {len(qs):,} of {len(S[queries]):,} queries")
                t0 = time.perf_counter()
                res[key] = _strip(edit_distance_probe(S["train"], L["train"][rank], qs, qy, progress=settings.progress))
                t[key] = time.perf_counter() - t0
            res["notes"].append("fine-tuned column: 1-NN species by edit distance, keys = train (no training)")
            results[model.name] = res
            continue

        if settings.finetune and model.fine_tune is not None:
            t0 = time.perf_counter()
            res["fine_tuned"] = _strip(model.fine_tune(data, settings))
            t["fine_tuned"] = time.perf_counter() - t0
            ft = res["fine_tuned"]
            stop = f" (stopped early: {ft['stopped_early']})" if ft.get("stopped_early") else ""
            res["notes"].append(f"fine-tuned on {ft['n_train']:,} train records, {ft['epochs_run']} epochs{stop}, "
                                f"best epoch {ft['best_epoch']} on val")

        t0 = time.perf_counter()
        feats = {s: (_unique_features(lambda u: model.features(u, settings), S[s]) if S[s] else None)
                 for s in NEEDED_SPLITS}
        t["features"] = time.perf_counter() - t0
        n_feat = sum(len(S[s]) for s in NEEDED_SPLITS)
        res["features_per_s"] = n_feat / t["features"] if t["features"] > 0 else float("nan")

        if model.linear_probe:
            t0 = time.perf_counter()
            val = feats["val"] is not None
            res["linear_probe"] = _strip(linear_probe(
                feats["train"], L["train"]["species"], feats["test"], L["test"]["species"],
                val_x=feats["val"] if val else None, val_y=L["val"]["species"] if val else None,
                l2=settings.linear_l2, max_iter=settings.linear_max_iter,
                backend=settings.linear_backend, device=settings.device, progress=settings.progress))
            t["linear_probe"] = time.perf_counter() - t0

        has_unseen = feats["test_unseen"] is not None
        if has_unseen:
            t0 = time.perf_counter()
            res["knn_genus_unseen"] = _strip(knn_probe(feats["train"], L["train"]["genus"], feats["test_unseen"],
                                                       L["test_unseen"]["genus"], device=settings.device))
            t["knn_genus_unseen"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        cluster_splits = ["test", "test_unseen"] if has_unseen else ["test"]
        cx = np.concatenate([feats[s] for s in cluster_splits])
        clab = {r: np.concatenate([L[s][r] for s in cluster_splits]) for r in settings.ranks}
        want_fig = figure is None and (figure_model is None or figure_model == model.name)
        n_clus = min(cx.shape[0], settings.cluster_max_points or cx.shape[0])
        say(f"{model.name}: zero-shot clustering of {n_clus:,} points (UMAP to 50 dimensions, Ward)")
        clus = zero_shot_clustering(cx, clab, max_points=settings.cluster_max_points, seed=settings.seed)
        res["clustering"] = _strip(clus)
        if settings.cluster_max_points is not None and cx.shape[0] > settings.cluster_max_points:
            res["notes"].append(f"clustering: {settings.cluster_max_points:,} of {cx.shape[0]:,} points")
        if clus["n_components"] < 50 or clus["n_neighbors"] < 30:
            res["notes"].append(f"clustering: only {clus['n_points']} points, UMAP n_components "
                                f"{clus['n_components']}, n_neighbors {clus['n_neighbors']}")
        t["clustering"] = time.perf_counter() - t0

        if want_fig:
            t0 = time.perf_counter()
            if data.orders:
                order = np.concatenate([data.orders[s] for s in cluster_splits])
            else:
                order = np.concatenate([L[s]["order"] for s in cluster_splits]).astype(str)
            figure = _figure_embedding(cx, order, settings, model.name)
            figure["splits"] = tuple(cluster_splits)
            t["figure"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        keys_x = np.concatenate([feats["train"]] + ([feats["key_unseen"]] if feats["key_unseen"] is not None else []))
        keys_lab = {r: np.concatenate([L["train"][r]] + ([L["key_unseen"][r]] if S["key_unseen"] else []))
                    for r in settings.ranks}
        res["retrieval"] = retrieval(
            keys_x, keys_lab,
            {"seen": (feats["test"], L["test"]),
             **({"unseen": (feats["test_unseen"], L["test_unseen"])} if has_unseen else {})},
            ranks=settings.ranks, device=settings.device)
        t["retrieval"] = time.perf_counter() - t0
        results[model.name] = res
    sizes = {s: data.size(s) for s in NEEDED_SPLITS}
    return {"results": results, "notes": notes, "settings": settings, "figure": figure, "sizes": sizes}


def _figure_embedding(x, order, settings, model_name):
    from .probes import _zscore, umap_embed

    n = x.shape[0]
    idx = np.arange(n)
    if n > settings.figure_points:
        idx = np.sort(np.random.default_rng(settings.seed).choice(n, settings.figure_points, replace=False))
    nn_ = min(30, len(idx) - 1)
    emb = umap_embed(_zscore(x[idx]), n_components=2, n_neighbors=max(2, nn_), min_dist=0.1, seed=settings.seed)
    return {"embedding": emb, "order": order[idx], "model": model_name, "n_total": int(n)}
