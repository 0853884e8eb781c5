"""Accuracy and AMI metrics against scikit-learn and hand-worked examples."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_mutual_info_score, balanced_accuracy_score, top_k_accuracy_score

from bioscan_kmer.eval.metrics import accuracy, ami, ranked_from_scores, topk_accuracy


def test_hand_worked_micro_vs_macro():
    # Class 0 has three queries (one hit at top-1), class 1 one query (a hit).
    y = np.array([0, 0, 0, 1])
    ranked = np.array([[0, 1], [1, 0], [1, 0], [1, 0]])
    assert topk_accuracy(y, ranked, 1, "micro") == pytest.approx(2 / 4)
    # Macro: (1/3 + 1/1) / 2, rare class 1 weighs as much as class 0.
    assert topk_accuracy(y, ranked, 1, "macro") == pytest.approx((1 / 3 + 1) / 2)
    assert topk_accuracy(y, ranked, 2, "micro") == 1.0
    assert topk_accuracy(y, ranked, 2, "macro") == 1.0


def test_retrieval_style_repeated_neighbour_labels():
    # Neighbour label lists may repeat a label; a hit is any position <= k.
    y = np.array([3, 4, 5])
    ranked = np.array([[1, 1, 3], [4, 4, 4], [1, 2, 2]])
    assert topk_accuracy(y, ranked, 1) == pytest.approx(1 / 3)
    assert topk_accuracy(y, ranked, 3) == pytest.approx(2 / 3)


def test_missing_true_labels_are_ignored():
    y = np.array([0, -1, 1, -1])
    pred = np.array([0, 0, 0, 1])
    assert accuracy(y, pred) == pytest.approx(1 / 2)
    assert np.isnan(accuracy(np.array([-1, -1]), np.array([0, 1])))


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_micro_topk_matches_sklearn(k):
    rng = np.random.default_rng(k)
    n, c = 300, 7
    classes = np.array([10, 11, 12, 15, 20, 21, 30])  # global codes need not be 0..c-1
    y_idx = rng.integers(0, c, n)
    scores = rng.normal(size=(n, c)) + 1.5 * np.eye(c)[y_idx]
    ranked = ranked_from_scores(scores, classes, k)
    ours = topk_accuracy(classes[y_idx], ranked, k, "micro")
    theirs = top_k_accuracy_score(y_idx, scores, k=k, labels=np.arange(c))
    assert ours == pytest.approx(theirs)


def test_macro_top1_is_balanced_accuracy():
    rng = np.random.default_rng(0)
    y = rng.choice([0, 1, 2, 3], size=500, p=[0.7, 0.2, 0.05, 0.05])
    pred = np.where(rng.random(500) < 0.6, y, rng.integers(0, 4, 500))
    assert accuracy(y, pred, "macro") == pytest.approx(balanced_accuracy_score(y, pred))
    assert accuracy(y, pred, "micro") == pytest.approx(np.mean(y == pred))
    assert accuracy(y, pred, "macro") != pytest.approx(accuracy(y, pred, "micro"))


def test_ranked_from_scores_breaks_ties_by_column():
    scores = np.array([[1.0, 2.0, 2.0, 0.0]])
    assert ranked_from_scores(scores, np.array([7, 8, 9, 10]), 3).tolist() == [[8, 9, 7]]


def test_ami_matches_sklearn_and_drops_missing():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 200)
    p = np.where(rng.random(200) < 0.7, y, rng.integers(0, 5, 200))
    assert ami(y, p) == pytest.approx(adjusted_mutual_info_score(y, p))
    y_missing = y.copy()
    y_missing[:50] = -1
    assert ami(y_missing, p) == pytest.approx(adjusted_mutual_info_score(y[50:], p[50:]))
    assert ami(y, y) == pytest.approx(1.0)


def test_bad_inputs_raise_clear_errors():
    y = np.array([0, 1])
    with pytest.raises(ValueError, match="k=3"):
        topk_accuracy(y, np.array([[0, 1], [1, 0]]), 3)
    with pytest.raises(ValueError, match="average"):
        topk_accuracy(y, np.array([0, 1]), 1, "weighted")
    with pytest.raises(TypeError, match="integer"):
        topk_accuracy(np.array([0.0, 1.0]), np.array([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        topk_accuracy(y, np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="positive"):
        topk_accuracy(y, np.array([0, 1]), 0)
