"""Probes on frozen features: linear probe, k-NN probe, zero-shot clustering, retrieval.

All take NumPy feature matrices and integer label codes from one global label map
(:mod:`bioscan_kmer.eval.labels`); negative codes mean "no label". None of them
re-indexes labels: classifiers work internally on the classes seen in training and map
their predictions back to the global codes before scoring.
"""

from __future__ import annotations

import warnings

import numpy as np

from .knn import cosine_knn, default_device
from .metrics import ami, ranked_from_scores, topk_accuracy

__all__ = [
    "standardize",
    "linear_probe",
    "knn_predict",
    "knn_probe",
    "zero_shot_clustering",
    "retrieval",
    "ward_clusters",
    "ward_tree",
    "cut_tree_at",
    "umap_embed",
    "RETRIEVAL_RANKS",
]

RETRIEVAL_RANKS = ("order", "family", "genus", "species")


def _features(x, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D feature matrix, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"{name} must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or inf")
    return x


def _labels(y, n: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{name} must hold integer label codes, got dtype {y.dtype}")
    if y.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {y.shape}")
    return y.astype(np.int64, copy=False)


def standardize(train: np.ndarray, *others: np.ndarray):
    """Z-score every matrix with the per-feature mean and std of ``train``.

    Constant features get a std of 1 so they become 0 instead of NaN.

    Returns
    -------
    tuple of numpy.ndarray
        ``train`` followed by ``others``, standardized, float32.
    """
    mean = train.mean(axis=0, dtype=np.float64)
    std = train.std(axis=0, dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    return tuple(((m - mean) / std).astype(np.float32) for m in (train, *others))


def _max_evals(max_iter: int) -> int:
    """Loss evaluations one L-BFGS fit may make (torch's default ``max_eval``): its cost bound."""
    return max_iter * 5 // 4


def _fit_logistic_torch(x, y, n_classes, l2, max_iter, device, init=None, chunk=16384, on_eval=None):
    """Multinomial logistic regression by full-batch L-BFGS.

    The loss is summed over row chunks inside the closure, so memory stays at
    (chunk, n_classes) logits however many training rows there are; full-batch L-BFGS
    has no learning rate or shuffling to tune and is deterministic. ``on_eval()`` is
    called after each evaluation of the loss (progress).
    """
    import torch
    import torch.nn.functional as F

    n, d = x.shape
    xt = torch.from_numpy(x).to(device)
    yt = torch.from_numpy(y).to(device)
    if init is None:
        w = torch.zeros(d, n_classes, device=device, requires_grad=True)
        b = torch.zeros(n_classes, device=device, requires_grad=True)
    else:
        w = init[0].clone().requires_grad_(True)
        b = init[1].clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=max_iter, max_eval=_max_evals(max_iter), history_size=20,
        line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-9,
    )

    def closure():
        opt.zero_grad()
        total = 0.0
        for s in range(0, n, chunk):
            logits = xt[s : s + chunk] @ w + b
            loss = F.cross_entropy(logits, yt[s : s + chunk], reduction="sum") / n
            loss.backward()
            total += loss.item()
        reg = 0.5 * l2 * (w * w).sum()
        reg.backward()
        if on_eval is not None:
            on_eval()
        return torch.tensor(total + reg.item())

    # Subnormal floats appear in the L-BFGS history when the regularisation is strong and
    # make every CPU operation on them ~100x slower (seen: 40 s instead of 0.5 s); flushing
    # them to zero changes nothing measurable in the solution. The flag is process-global,
    # so it is restored (PyTorch's default is off).
    flushed = torch.set_flush_denormal(True)
    try:
        opt.step(closure)
    finally:
        if flushed:
            torch.set_flush_denormal(False)
    return w.detach(), b.detach()


def _scores_torch(x, w, b, device, chunk=16384):
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, x.shape[0], chunk):
            out.append((torch.from_numpy(x[s : s + chunk]).to(device) @ w + b).cpu().numpy())
    return np.concatenate(out) if out else np.empty((0, w.shape[1]), dtype=np.float32)


def linear_probe(
    train_x,
    train_y,
    test_x,
    test_y,
    *,
    val_x=None,
    val_y=None,
    l2=(1e-2, 1e-3, 1e-4),
    backend: str = "torch",
    max_iter: int = 200,
    topk=(1,),
    device=None,
    progress: bool = False,
) -> dict:
    """Linear classifier on standardized frozen features.

    Features are z-scored with the training set's per-feature mean and std; a
    multinomial logistic regression is fitted on the training rows that have a label and
    scored on the test rows. With a validation set and several ``l2`` values the
    regularisation is chosen on validation accuracy (fits run from strongest to weakest,
    each starting from the previous solution); otherwise the first ``l2`` is used.

    Parameters
    ----------
    train_x, test_x, val_x : array_like, shape (n, d)
    train_y, test_y, val_y : array_like of int, shape (n,)
        Global label codes; rows with negative codes are skipped.
    l2 : float or sequence of float
        Weight of ``0.5 * ||W||^2`` added to the mean cross-entropy.
    backend : {"torch", "sklearn"}
        ``"torch"``: L-BFGS on ``device`` (CUDA when present). ``"sklearn"``:
        :class:`sklearn.linear_model.LogisticRegression` with ``C = 1 / (l2 * n)``, the
        same objective, on the CPU.
    max_iter : int
        L-BFGS iterations per fit.
    topk : tuple of int
        Which top-k accuracies to report.
    device : optional
        Torch device.
    progress : bool
        Progress over L-BFGS evaluations (torch backend), and an estimate of the
        longest the fits can take (from the first timed evaluations) on stderr.

    Returns
    -------
    dict
        ``accuracy_micro``/``accuracy_macro`` (top-1), ``top{k}_micro``/``top{k}_macro``
        for other k, ``l2`` chosen, ``val_accuracy_micro`` (if validated), ``n_train``,
        ``n_test``, ``n_classes``, and ``predictions`` (global codes, one per test row).
    """
    train_x = _features(train_x, "train_x")
    test_x = _features(test_x, "test_x")
    train_y = _labels(train_y, train_x.shape[0], "train_y")
    test_y = _labels(test_y, test_x.shape[0], "test_y")
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"train_x has {train_x.shape[1]} features but test_x has {test_x.shape[1]}")
    has_val = val_x is not None and val_y is not None and len(val_y) > 0
    if has_val:
        val_x = _features(val_x, "val_x")
        val_y = _labels(val_y, val_x.shape[0], "val_y")
    if backend not in ("torch", "sklearn"):
        raise ValueError(f"backend must be 'torch' or 'sklearn', got {backend!r}")
    l2s = (float(l2),) if np.isscalar(l2) else tuple(float(v) for v in l2)
    if not l2s or any(v <= 0 for v in l2s):
        raise ValueError(f"l2 must be positive, got {l2!r}")
    if not has_val:
        l2s = l2s[:1]
    l2s = tuple(sorted(l2s, reverse=True))

    keep = train_y >= 0
    x_tr, y_tr = train_x[keep], train_y[keep]
    classes = np.unique(y_tr)
    if classes.size < 2:
        raise ValueError(f"the linear probe needs at least 2 classes in training, got {classes.size}")
    y_idx = np.searchsorted(classes, y_tr)
    x_tr, x_te, *rest = standardize(x_tr, test_x, *([val_x] if has_val else []))
    x_va = rest[0] if has_val else None

    best = None  # (val_acc, l2, test_scores)
    if backend == "torch":
        dev = default_device(device)
        init = None
        bar, on_eval = _fit_progress(progress, x_tr.shape, classes.size, len(l2s), max_iter)
        for i, lam in enumerate(l2s):
            w, b = _fit_logistic_torch(x_tr, y_idx, classes.size, lam, max_iter, dev, init, on_eval=on_eval)
            if bar is not None:  # a fit that converged early leaves its unused budget behind
                bar.update((i + 1) * _max_evals(max_iter) - bar.n)
            init = (w, b)
            val_acc = (
                topk_accuracy(val_y, classes[_scores_torch(x_va, w, b, dev).argmax(1)], 1)
                if has_val else float("nan")
            )
            if best is None or val_acc > best[0]:
                best = (val_acc, lam, _scores_torch(x_te, w, b, dev))
    else:
        from sklearn.linear_model import LogisticRegression

        for lam in l2s:
            clf = LogisticRegression(C=1.0 / (lam * x_tr.shape[0]), max_iter=max_iter * 5)
            with warnings.catch_warnings():
                # Hitting max_iter is reported in the result's quality, not as an error.
                warnings.simplefilter("ignore", category=UserWarning)
                from sklearn.exceptions import ConvergenceWarning

                warnings.simplefilter("ignore", category=ConvergenceWarning)
                clf.fit(x_tr, y_idx)
            val_acc = (
                topk_accuracy(val_y, classes[clf.predict(x_va)], 1) if has_val else float("nan")
            )
            if best is None or val_acc > best[0]:
                best = (val_acc, lam, clf.decision_function(x_te).reshape(x_te.shape[0], -1))

    if backend == "torch" and bar is not None:
        bar.close()
    val_acc, lam, scores = best
    if scores.shape[1] == 1:  # binary sklearn decision_function: one column for class 1
        scores = np.concatenate([-scores, scores], axis=1)
    kmax = min(max(topk), classes.size)
    ranked = ranked_from_scores(scores, classes, kmax)
    out = {
        "accuracy_micro": topk_accuracy(test_y, ranked[:, 0], 1, "micro"),
        "accuracy_macro": topk_accuracy(test_y, ranked[:, 0], 1, "macro"),
        "l2": lam,
        "val_accuracy_micro": val_acc,
        "n_train": int(x_tr.shape[0]),
        "n_test": int((test_y >= 0).sum()),
        "n_classes": int(classes.size),
        "predictions": ranked[:, 0],
    }
    for k in topk:
        if k > 1 and k <= kmax:
            out[f"top{k}_micro"] = topk_accuracy(test_y, ranked, k, "micro")
            out[f"top{k}_macro"] = topk_accuracy(test_y, ranked, k, "macro")
    return out


def _fit_progress(progress, shape, n_classes, n_fits, max_iter):
    """A bar over the L-BFGS evaluations of ``n_fits`` fits and the callback that feeds it,
    announcing the upper bound on the fits' time once a few evaluations are timed."""
    if not progress:
        return None, None
    from bioscan_kmer._progress import progress_bar

    from .estimate import FirstUnitsTimer, announce, format_seconds

    per_fit = _max_evals(max_iter)
    bar = progress_bar(total=n_fits * per_fit, desc="linear probe", unit="eval")
    timer = FirstUnitsTimer(n_fits * per_fit, min_units=3, max_units=20)

    def on_eval():
        bar.update(1)
        rest = timer.tick()
        if rest is not None:
            announce(f"linear probe: {shape[0]:,} x {shape[1]:,} features, {n_classes:,} classes, {n_fits} L2 "
                     f"value(s): at most about {format_seconds(rest + timer.elapsed)} "
                     f"(up to {per_fit} L-BFGS evaluations each; fewer when it converges)", bar)

    return bar, on_eval


def knn_predict(neighbour_labels: np.ndarray) -> np.ndarray:
    """Majority vote over neighbour labels (nearest first); ties go to the nearest label.

    Parameters
    ----------
    neighbour_labels : numpy.ndarray of int, shape (n, k)

    Returns
    -------
    numpy.ndarray of int64, shape (n,)
    """
    lab = np.asarray(neighbour_labels, dtype=np.int64)
    if lab.shape[1] == 1:
        return lab[:, 0].copy()
    out = np.empty(lab.shape[0], dtype=np.int64)
    for i, row in enumerate(lab):
        values, first, counts = np.unique(row, return_index=True, return_counts=True)
        top = counts == counts.max()
        out[i] = values[top][np.argmin(first[top])]
    return out


def knn_probe(keys_x, keys_y, queries_x, queries_y, *, k: int = 1, device=None, backend="torch") -> dict:
    """k-nearest-neighbour classification by cosine similarity (the paper's 1-NN probe).

    For the genus probe of SPEC section 8, keys are the ``train`` split and queries the
    ``test_unseen`` split, both labelled with *genus* codes from the same global map: the
    query species are absent from the keys, but their genera are present.

    Parameters
    ----------
    keys_x, queries_x : array_like, shape (n, d)
    keys_y, queries_y : array_like of int
        Global label codes. Keys without a label are dropped (they cannot vote);
        queries without one are not scored.
    k : int, default 1
    device, backend
        Passed to :func:`bioscan_kmer.eval.knn.cosine_knn`.

    Returns
    -------
    dict
        ``accuracy_micro``, ``accuracy_macro``, ``n_keys``, ``n_queries``, ``predictions``.
    """
    keys_x = _features(keys_x, "keys_x")
    queries_x = _features(queries_x, "queries_x")
    keys_y = _labels(keys_y, keys_x.shape[0], "keys_y")
    queries_y = _labels(queries_y, queries_x.shape[0], "queries_y")
    keep = keys_y >= 0
    keys_x, keys_y = keys_x[keep], keys_y[keep]
    if keys_x.shape[0] == 0:
        raise ValueError("no labelled keys for the nearest-neighbour probe")
    if queries_x.shape[0] == 0:
        raise ValueError("no queries for the nearest-neighbour probe")
    idx, _ = cosine_knn(queries_x, keys_x, min(k, keys_x.shape[0]), device=device, backend=backend)
    pred = knn_predict(keys_y[idx])
    return {
        "accuracy_micro": topk_accuracy(queries_y, pred, 1, "micro"),
        "accuracy_macro": topk_accuracy(queries_y, pred, 1, "macro"),
        "n_keys": int(keys_x.shape[0]),
        "n_queries": int((queries_y >= 0).sum()),
        "predictions": pred,
    }


def retrieval(keys_x, keys_labels: dict, query_sets: dict, *, ks=(1, 3, 5), ranks=RETRIEVAL_RANKS,
              device=None, backend="torch") -> list:
    """DNA-to-DNA retrieval: top-k micro and macro accuracy per rank and query set.

    Each query's keys are ranked by cosine similarity; at rank r the query is a hit at k
    when one of its k nearest keys carries its own label at r. A key without a label at r
    is never a hit.

    Parameters
    ----------
    keys_x : array_like, shape (n_keys, d)
    keys_labels : dict
        ``{rank: int array (n_keys,)}`` global codes.
    query_sets : dict
        ``{name: (x (n, d), {rank: int array (n,)})}``, e.g. ``{"seen": ..., "unseen": ...}``.
    ks : tuple of int
    ranks : tuple of str

    Returns
    -------
    list of dict
        One record per (queries, rank, k, average) with its ``value`` and ``n_queries``.
    """
    keys_x = _features(keys_x, "keys_x")
    kmax = min(max(ks), keys_x.shape[0])
    records = []
    for name, (qx, qlabels) in query_sets.items():
        qx = _features(qx, f"query set {name!r}")
        if qx.shape[0] == 0:
            continue
        idx, _ = cosine_knn(qx, keys_x, kmax, device=device, backend=backend)
        for rank in ranks:
            if rank not in keys_labels or rank not in qlabels:
                raise ValueError(f"rank {rank!r} is missing from the key or query labels")
            ky = _labels(keys_labels[rank], keys_x.shape[0], f"keys_labels[{rank!r}]")
            qy = _labels(qlabels[rank], qx.shape[0], f"query labels [{name!r}][{rank!r}]")
            ranked = ky[idx]
            for k in ks:
                if k > kmax:
                    continue
                for average in ("micro", "macro"):
                    records.append({
                        "queries": name, "rank": rank, "k": int(k), "average": average,
                        "value": topk_accuracy(qy, ranked, k, average),
                        "n_queries": int((qy >= 0).sum()),
                    })
    return records


def _zscore(x: np.ndarray) -> np.ndarray:
    return standardize(x)[0]


def zero_shot_clustering(
    x,
    labels: dict,
    *,
    n_components: int = 50,
    n_neighbors: int = 30,
    min_dist: float = 0.0,
    max_points: int | None = None,
    seed: int = 0,
    return_embedding: bool = False,
) -> dict:
    """Zero-shot clustering: z-score, UMAP, Ward clustering with the true class count, AMI.

    The features are z-scored per dimension, reduced with UMAP (``n_components`` dims,
    ``n_neighbors``, ``min_dist``, Euclidean), and clustered by Ward agglomerative
    clustering once; the tree is then cut at each rank's number of true classes (the
    number of distinct labels among the points), and the AMI of that cut against the
    rank's labels is reported (points without a label at the rank are not scored).
    Cutting one Ward tree at several heights gives exactly what scikit-learn's
    ``AgglomerativeClustering(linkage="ward", n_clusters=c)`` gives for each c.

    Parameters
    ----------
    x : array_like, shape (n, d)
    labels : dict
        ``{rank: int array (n,)}`` global codes.
    n_components, n_neighbors, min_dist
        UMAP settings of SPEC section 8. With fewer points than they need, they are
        lowered (``n_neighbors <= n - 1``, ``n_components <= n - 2``) with a warning.
    max_points : int, optional
        Cluster a seeded random subsample of this many points. Ward itself needs O(n)
        memory (:func:`ward_tree`) but O(n^2 d) time, and UMAP's time grows with n too.
    seed : int
        UMAP and subsampling seed.
    return_embedding : bool
        Also return the UMAP coordinates and the indices of the points used.

    Returns
    -------
    dict
        ``ami`` ({rank: float}), ``n_clusters`` ({rank: int}), ``n_points``,
        ``n_components``, ``n_neighbors``; with ``return_embedding`` also ``embedding`` and
        ``indices``.
    """
    x = _features(x, "x")
    n = x.shape[0]
    lab = {r: _labels(v, n, f"labels[{r!r}]") for r, v in labels.items()}
    indices = np.arange(n)
    if max_points is not None and n > max_points:
        if max_points < 4:
            raise ValueError(f"max_points must be at least 4, got {max_points}")
        indices = np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))
        x = x[indices]
        lab = {r: v[indices] for r, v in lab.items()}
        n = max_points
    if n < 4:
        raise ValueError(f"zero-shot clustering needs at least 4 points, got {n}")
    lowered = []
    if n_neighbors > n - 1:
        lowered.append(f"n_neighbors lowered from {n_neighbors} to {n - 1}")
        n_neighbors = n - 1
    if n_components > n - 2:
        lowered.append(f"n_components lowered from {n_components} to {n - 2}")
        n_components = n - 2
    if lowered:
        warnings.warn(f"only {n} points: UMAP " + ", ".join(lowered), stacklevel=2)

    emb = umap_embed(_zscore(x), n_components=n_components, n_neighbors=n_neighbors,
                     min_dist=min_dist, seed=seed)

    n_clusters = {rank: int(np.unique(y[y >= 0]).size) for rank, y in lab.items()}
    cuts = ward_clusters(emb, [c for c in n_clusters.values() if c > 0])
    amis = {rank: (ami(y, cuts[n_clusters[rank]]) if n_clusters[rank] > 0 else float("nan"))
            for rank, y in lab.items()}
    out = {"ami": amis, "n_clusters": n_clusters, "n_points": int(n),
           "n_components": int(n_components), "n_neighbors": int(n_neighbors)}
    if return_embedding:
        out["embedding"] = emb
        out["indices"] = indices
    return out


def ward_tree(x) -> np.ndarray:
    """The Ward linkage of ``x`` (SciPy's linkage-matrix format), exact, in O(n) memory.

    ``fastcluster.linkage_vector(x, method="ward")`` runs the nearest-neighbour-chain
    algorithm on the vectors themselves, so memory is the data plus O(n), where SciPy's
    ``ward`` (and scikit-learn's ``AgglomerativeClustering`` without connectivity) first
    build the n(n-1)/2 pairwise distances: 10 GB at 50,000 points. Time stays O(n^2 d).

    Parameters
    ----------
    x : array_like, shape (n, d), n >= 2

    Returns
    -------
    numpy.ndarray, shape (n - 1, 4)
        Row i merges clusters ``Z[i, 0]`` and ``Z[i, 1]`` (ids >= n are earlier merges)
        at height ``Z[i, 2]``; rows in merge order.
    """
    try:
        import fastcluster
    except ImportError:
        raise ImportError("zero-shot clustering needs fastcluster (exact Ward in O(n) memory): "
                          "pip install 'bioscan-kmer[eval]' (or: pip install fastcluster)") from None
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"Ward clustering needs at least 2 points in a 2-D array, got shape {x.shape}")
    return fastcluster.linkage_vector(x, method="ward")


def cut_tree_at(tree: np.ndarray, n_clusters: int) -> np.ndarray:
    """Cluster ids (0 .. c-1, in order of first appearance) after the first n - c merges.

    This is the partition scikit-learn's ``AgglomerativeClustering(n_clusters=c)`` takes
    from the same tree, and SciPy's ``cut_tree``, but vectorised (pointer jumping over
    the merge forest: O(n log n)) where ``cut_tree`` walks every merge in Python, O(n^2).
    """
    tree = np.asarray(tree)
    n = tree.shape[0] + 1
    c = int(n_clusters)
    if not 1 <= c <= n:
        raise ValueError(f"cluster count must be in [1, {n}], got {c}")
    merges = n - c
    parent = np.arange(2 * n - 1, dtype=np.int64)
    children = tree[:merges, :2].astype(np.int64)
    parent[children[:, 0]] = parent[children[:, 1]] = n + np.arange(merges)
    while True:  # every node points at its root after O(log depth) rounds
        up = parent[parent]
        if np.array_equal(up, parent):
            break
        parent = up
    _, first, ids = np.unique(parent[:n], return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[ids]


def ward_clusters(x, n_clusters) -> dict:
    """Ward agglomerative clustering of ``x`` cut at several cluster counts.

    The Ward tree is built once (:func:`ward_tree`: exact, O(n) memory) and cut at each
    requested count (:func:`cut_tree_at`), which gives the same partitions as
    scikit-learn's ``AgglomerativeClustering(linkage="ward", n_clusters=c)`` for every
    ``c`` at the cost of one fit.

    Parameters
    ----------
    x : array_like, shape (n, d)
    n_clusters : iterable of int
        Each in ``[1, n]``.

    Returns
    -------
    dict
        ``{c: int64 array (n,)}`` cluster id per point.
    """
    x = np.asarray(x, dtype=np.float64)
    wanted = sorted(set(int(c) for c in n_clusters))
    if any(c < 1 or c > x.shape[0] for c in wanted):
        raise ValueError(f"cluster counts must be in [1, {x.shape[0]}], got {wanted}")
    if not wanted:
        return {}
    if x.shape[0] == 1:
        return {1: np.zeros(1, dtype=np.int64)}
    tree = ward_tree(x)
    return {c: cut_tree_at(tree, c) for c in wanted}


def umap_embed(x: np.ndarray, *, n_components: int, n_neighbors: int, min_dist: float, seed: int) -> np.ndarray:
    """Seeded UMAP of ``x`` (already scaled), silencing umap-learn's own chatter.

    umap-learn warns that a fixed ``random_state`` disables its parallelism, and numba/
    scikit-learn may emit deprecation notices from inside umap; none of it concerns the
    caller, and the project runs its tests with warnings as errors.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import umap

        reducer = umap.UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist,
                            metric="euclidean", random_state=seed, n_jobs=1)
        return np.asarray(reducer.fit_transform(x), dtype=np.float32)
