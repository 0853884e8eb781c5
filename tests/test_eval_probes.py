"""Probes on frozen features: right where the answer is easy, chance where labels are noise."""

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import AgglomerativeClustering

from bioscan_kmer.eval.labels import LabelMap, label_codes
from bioscan_kmer.eval.probes import (
    cut_tree_at,
    knn_predict,
    knn_probe,
    linear_probe,
    retrieval,
    standardize,
    ward_clusters,
    ward_tree,
    zero_shot_clustering,
)

N_CLASSES = 12


def _clusters(n, seed, dim=32, spread=4.0):
    """Well-separated Gaussian clusters; class codes 100.. to show codes need not start at 0."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(123).normal(size=(N_CLASSES, dim)) * spread
    y = rng.integers(0, N_CLASSES, n)
    return (centres[y] + rng.normal(size=(n, dim))).astype(np.float32), y + 100


@pytest.fixture(scope="module")
def data():
    return _clusters(1200, 0), _clusters(300, 1), _clusters(300, 2)


def test_standardize_uses_train_statistics():
    train = np.array([[0.0, 5.0], [2.0, 5.0]])
    other = np.array([[1.0, 7.0]])
    tr, ot = standardize(train, other)
    np.testing.assert_allclose(tr, [[-1, 0], [1, 0]])
    np.testing.assert_allclose(ot, [[0, 2]])  # constant feature: std 1, no NaN


@pytest.mark.parametrize("backend", ["torch", "sklearn"])
def test_linear_probe_separable_and_shuffled(data, backend):
    (xtr, ytr), (xva, yva), (xte, yte) = data
    good = linear_probe(xtr, ytr, xte, yte, val_x=xva, val_y=yva, backend=backend, topk=(1, 3))
    assert good["accuracy_micro"] > 0.97
    assert good["accuracy_macro"] > 0.97
    assert good["top3_micro"] >= good["accuracy_micro"]
    assert set(np.unique(good["predictions"])) <= set(np.unique(ytr))  # global codes back
    shuffled = np.random.default_rng(5).permutation(ytr)
    bad = linear_probe(xtr, shuffled, xte, yte, val_x=xva, val_y=yva, backend=backend)
    assert bad["accuracy_micro"] < 0.2  # chance is 1/12 ~ 0.083


def test_linear_probe_is_deterministic(data):
    (xtr, ytr), (xva, yva), (xte, yte) = data
    a = linear_probe(xtr, ytr, xte, yte, val_x=xva, val_y=yva)
    b = linear_probe(xtr, ytr, xte, yte, val_x=xva, val_y=yva)
    np.testing.assert_array_equal(a["predictions"], b["predictions"])
    assert a["l2"] == b["l2"]


def test_linear_probe_progress_announces_its_bound_and_changes_nothing(data, capsys, monkeypatch):
    (xtr, ytr), (xva, yva), (xte, yte) = data
    monkeypatch.setenv("BIOSCAN_KMER_PROGRESS", "lines")
    quiet = linear_probe(xtr, ytr, xte, yte, val_x=xva, val_y=yva, max_iter=40)
    assert capsys.readouterr().err == ""
    loud = linear_probe(xtr, ytr, xte, yte, val_x=xva, val_y=yva, max_iter=40, progress=True)
    err = capsys.readouterr().err
    assert "linear probe: 1,200 x 32 features, 12 classes, 3 L2 value(s): at most about " in err
    assert "(up to 50 L-BFGS evaluations each" in err and "linear probe: 150/150 eval" in err
    np.testing.assert_array_equal(quiet["predictions"], loud["predictions"])


def test_linear_probe_rejects_bad_input(data):
    (xtr, ytr), _, (xte, yte) = data
    with pytest.raises(ValueError, match="2 classes"):
        linear_probe(xtr, np.zeros_like(ytr), xte, yte)
    with pytest.raises(ValueError, match="features"):
        linear_probe(xtr, ytr, xte[:, :5], yte)
    with pytest.raises(TypeError, match="integer"):
        linear_probe(xtr, ytr.astype(float), xte, yte)
    with pytest.raises(ValueError, match="shape"):
        linear_probe(xtr, ytr[:-1], xte, yte)


def test_knn_probe_separable_and_shuffled(data):
    (xtr, ytr), _, (xte, yte) = data
    assert knn_probe(xtr, ytr, xte, yte)["accuracy_micro"] > 0.97
    assert knn_probe(xtr, ytr, xte, yte, k=5)["accuracy_micro"] > 0.97
    shuffled = np.random.default_rng(6).permutation(ytr)
    assert knn_probe(xtr, shuffled, xte, yte)["accuracy_micro"] < 0.2


def test_knn_probe_drops_unlabelled_keys():
    keys = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    y = np.array([-1, 7, 8])  # the nearest key has no label: the next one answers
    res = knn_probe(keys, y, np.array([[1.0, 0.0]]), np.array([7]))
    assert res["accuracy_micro"] == 1.0 and res["n_keys"] == 2


def test_knn_vote_ties_go_to_the_nearest():
    assert knn_predict(np.array([[5, 6, 6, 5], [5, 6, 7, 8], [2, 3, 3, 3]])).tolist() == [5, 5, 3]


def test_global_label_map_survives_splits_with_different_label_sets():
    df = pd.DataFrame({
        "genus": ["Apis", "Bombus", "Apis", "Culex", "Bombus", None, "Aedes"],
        "split": ["train", "train", "test_unseen", "test_unseen", "test_unseen", "test_unseen", "train"],
    })
    codes = label_codes(df, ("genus",))["genus"]
    names = LabelMap.fit(df["genus"])
    # One code per name whatever the split; missing -> -1; Culex (test only) has its own code.
    assert names.decode(codes) == ["Apis", "Bombus", "Apis", "Culex", "Bombus", None, "Aedes"]
    train = (df.split == "train").to_numpy()
    test = ~train
    # Per-split re-indexing would give Apis the id 1 in train (Aedes, Apis, Bombus) but 0 in
    # test (Apis, Bombus, Culex); the global codes agree, so a perfect 1-NN scores 100%.
    feats = np.eye(4)[[0, 1, 0, 2, 1, 3, 3]].astype(np.float32)
    res = knn_probe(feats[train], codes[train], feats[test], codes[test])
    # Apis and Bombus are found; Culex cannot be (not among keys); None is not scored.
    assert res["n_queries"] == 3
    assert res["accuracy_micro"] == pytest.approx(2 / 3)
    # The data layer's <rank>_id columns are used as given when present.
    df["genus_id"] = codes + 10
    np.testing.assert_array_equal(label_codes(df, ("genus",))["genus"], codes + 10)


def test_label_map_rejects_unknown_labels():
    m = LabelMap.fit(["a", "b"])
    with pytest.raises(ValueError, match="'c'"):
        m.encode(["a", "c"])
    assert m.encode(["c", "b"], strict=False).tolist() == [-1, 1]


def test_retrieval_micro_macro_per_rank(data):
    (xtr, ytr), _, (xte, yte) = data
    genus_tr, genus_te = ytr // 3, yte // 3
    recs = retrieval(xtr, {"species": ytr, "genus": genus_tr},
                     {"seen": (xte, {"species": yte, "genus": genus_te})}, ranks=("genus", "species"))
    assert len(recs) == 2 * 3 * 2  # ranks x k x averages
    for r in recs:
        assert r["value"] > 0.97
    shuffled = np.random.default_rng(7).permutation(ytr)
    recs = retrieval(xtr, {"species": shuffled}, {"seen": (xte, {"species": yte})}, ranks=("species",))
    top1 = [r["value"] for r in recs if r["k"] == 1 and r["average"] == "micro"][0]
    top5 = [r["value"] for r in recs if r["k"] == 5 and r["average"] == "micro"][0]
    assert top1 < 0.2 and top1 <= top5


def _same_partition(a, b) -> bool:
    """Equal up to the names of the clusters: a one-to-one map between the ids."""
    pairs = np.unique(np.stack([a, b]), axis=1).shape[1]
    return pairs == np.unique(a).size == np.unique(b).size


@pytest.mark.parametrize("n, dim, seed", [(150, 5, 3), (400, 50, 4), (257, 2, 5)])
def test_ward_cuts_equal_scikit_learn(n, dim, seed):
    rng = np.random.default_rng(seed)
    # Clustered points (as UMAP output is) with noise, so that merge heights never tie.
    x = rng.normal(size=(n, dim)) + 6 * rng.normal(size=(12, dim))[rng.integers(0, 12, n)]
    counts = [1, 2, 3, 7, 12, 40, n - 1, n]
    cuts = ward_clusters(x, counts)
    for c in counts:
        ref = AgglomerativeClustering(n_clusters=c, linkage="ward").fit_predict(x)
        assert np.unique(cuts[c]).size == c
        assert _same_partition(ref, cuts[c]), c


def test_ward_tree_equals_scipy_and_cuts_equal_cut_tree():
    from scipy.cluster.hierarchy import cut_tree, ward

    x = np.random.default_rng(6).normal(size=(300, 8))
    tree = ward_tree(x)
    want = ward(x)  # O(n^2) memory: the reference on small inputs
    np.testing.assert_array_equal(tree[:, :2], want[:, :2])
    np.testing.assert_allclose(tree[:, 2:], want[:, 2:], rtol=1e-10)
    # Ties (duplicate points) included: the cut follows the tree's merge order exactly.
    dup = np.repeat(np.random.default_rng(7).normal(size=(40, 3)), 3, axis=0)
    for t in (tree, ward_tree(dup)):
        n = t.shape[0] + 1
        for c in (1, 5, 33, n):
            got = cut_tree_at(t, c)
            assert _same_partition(got, cut_tree(t, n_clusters=c)[:, 0])
            assert got.tolist()[:1] == [0] and got.max() == c - 1  # ids 0..c-1 by first appearance
    with pytest.raises(ValueError, match=r"\[1, 300\]"):
        cut_tree_at(tree, 301)
    with pytest.raises(ValueError, match="at least 2 points"):
        ward_tree(x[:1])


def test_zero_shot_clustering_recovers_clusters_and_is_seeded():
    x, y = _clusters(400, 4)
    labels = {"species": y, "genus": (y - 100) // 3}
    a = zero_shot_clustering(x, labels, n_components=10, seed=0)
    assert a["ami"]["species"] > 0.9
    assert a["n_clusters"] == {"species": N_CLASSES, "genus": N_CLASSES // 3}
    b = zero_shot_clustering(x, labels, n_components=10, seed=0)
    assert a["ami"] == b["ami"]
    noise = zero_shot_clustering(np.random.default_rng(9).normal(size=(400, 32)), labels, n_components=10)
    assert noise["ami"]["species"] < 0.1


def test_zero_shot_clustering_scales_umap_down_for_few_points():
    x, y = _clusters(20, 5)
    with pytest.warns(UserWarning, match="n_neighbors lowered from 30 to 19, n_components lowered from 50 to 18"):
        res = zero_shot_clustering(x, {"species": y})
    assert res["n_neighbors"] == 19 and res["n_components"] == 18
    with pytest.raises(ValueError, match="at least 4"):
        zero_shot_clustering(x[:3], {"species": y[:3]})
