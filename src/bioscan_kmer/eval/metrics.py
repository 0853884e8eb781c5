"""Accuracy and clustering metrics used by every probe.

Labels are integer codes from one global label map (see :mod:`bioscan_kmer.eval.labels`);
a negative code means "no label at this rank". Queries without a label are left out of
every score, because there is nothing to be right or wrong about; a candidate without a
label simply never counts as a hit.

Scores are fractions in [0, 1]; the report turns them into percentages.
"""

from __future__ import annotations

import numpy as np

__all__ = ["topk_accuracy", "accuracy", "ranked_from_scores", "ami", "AVERAGES"]

AVERAGES = ("micro", "macro")


def _as_labels(y, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype == object or not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{name} must hold integer label codes, got dtype {y.dtype}")
    return y.astype(np.int64, copy=False)


def topk_accuracy(y_true, ranked_labels, k: int = 1, average: str = "micro") -> float:
    """Top-k accuracy of ranked label lists, micro- or macro-averaged.

    A query is a hit at ``k`` when its true label is among the first ``k`` entries of its
    ranked list. For a classifier the list holds the classes sorted by score; for
    retrieval it holds the labels of the nearest keys, nearest first (repeats allowed).

    Parameters
    ----------
    y_true : array_like of int, shape (n,)
        True label codes; negative codes (missing labels) are ignored.
    ranked_labels : array_like of int, shape (n, m) or (n,)
        Candidate labels per query, best first, ``m >= k``. A 1-D array is read as one
        prediction per query.
    k : int, default 1
        How many candidates count.
    average : {"micro", "macro"}
        ``"micro"``: fraction of labelled queries that are hits. ``"macro"``: the hit rate
        of each true class, averaged over the classes present in ``y_true`` with equal
        weight, so rare species count as much as common ones (for k=1 this is scikit-learn's
        ``balanced_accuracy_score``).

    Returns
    -------
    float
        The accuracy in [0, 1], or NaN when no query has a label.

    Raises
    ------
    ValueError
        On mismatched lengths, ``k < 1``, ``k`` larger than the number of candidates, or an
        unknown ``average``.
    TypeError
        When labels are not integer codes.
    """
    y = _as_labels(y_true, "y_true")
    ranked = _as_labels(ranked_labels, "ranked_labels")
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D, got shape {y.shape}")
    if ranked.ndim == 1:
        ranked = ranked[:, None]
    if ranked.ndim != 2 or ranked.shape[0] != y.shape[0]:
        raise ValueError(
            f"ranked_labels must have shape ({y.shape[0]}, m), got {np.shape(ranked_labels)}"
        )
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k > ranked.shape[1]:
        raise ValueError(f"k={k} but only {ranked.shape[1]} candidates per query")
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")

    keep = y >= 0
    y, ranked = y[keep], ranked[keep, :k]
    if y.size == 0:
        return float("nan")
    hit = (ranked == y[:, None]).any(axis=1)
    if average == "micro":
        return float(hit.mean())
    classes, inverse = np.unique(y, return_inverse=True)
    per_class_hits = np.bincount(inverse, weights=hit, minlength=classes.size)
    per_class_n = np.bincount(inverse, minlength=classes.size)
    return float(np.mean(per_class_hits / per_class_n))


def accuracy(y_true, y_pred, average: str = "micro") -> float:
    """Top-1 accuracy of single predictions; see :func:`topk_accuracy`."""
    y_pred = np.asarray(y_pred)
    if y_pred.ndim != 1:
        raise ValueError(f"y_pred must be 1-D, got shape {y_pred.shape}")
    return topk_accuracy(y_true, y_pred, k=1, average=average)


def ranked_from_scores(scores, classes, k: int) -> np.ndarray:
    """Turn a score matrix into the labels of the ``k`` best classes per row.

    Parameters
    ----------
    scores : array_like, shape (n, c)
        Higher is better.
    classes : array_like of int, shape (c,)
        The global label code of each score column.
    k : int
        Number of classes to keep, ``1 <= k <= c``.

    Returns
    -------
    numpy.ndarray of int64, shape (n, k)
        Best class first; equal scores are broken by column order (stable sort) so the
        result is deterministic.
    """
    scores = np.asarray(scores)
    classes = _as_labels(classes, "classes")
    if scores.ndim != 2 or scores.shape[1] != classes.shape[0]:
        raise ValueError(
            f"scores must have shape (n, {classes.shape[0]}), got {scores.shape}"
        )
    if not 1 <= k <= classes.shape[0]:
        raise ValueError(f"k must be in [1, {classes.shape[0]}], got {k}")
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return classes[order]


def ami(labels_true, labels_pred) -> float:
    """Adjusted mutual information between true labels and cluster assignments.

    A thin wrapper over :func:`sklearn.metrics.adjusted_mutual_info_score` (arithmetic
    normalisation) that drops records whose true label is missing (negative code), so
    unlabelled specimens neither help nor hurt a rank's score.

    Parameters
    ----------
    labels_true, labels_pred : array_like of int, shape (n,)

    Returns
    -------
    float
        AMI, 1 for identical partitions, about 0 for chance; NaN when nothing is labelled.
    """
    from sklearn.metrics import adjusted_mutual_info_score

    y = _as_labels(labels_true, "labels_true")
    p = _as_labels(labels_pred, "labels_pred")
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"labels_true and labels_pred must be 1-D of equal length, got {y.shape} and {p.shape}")
    keep = y >= 0
    if not keep.any():
        return float("nan")
    return float(adjusted_mutual_info_score(y[keep], p[keep]))
