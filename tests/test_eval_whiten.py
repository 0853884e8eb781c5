"""PCA whitening fitted on keys (bioscan_kmer.eval.whiten): the benchmark's diagnostic."""

import numpy as np
import pytest

from bioscan_kmer.eval.knn import cosine_knn
from bioscan_kmer.eval.whiten import Whitening


def test_whitened_keys_have_unit_covariance_and_the_map_is_affine():
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(6, 6)) * np.array([30.0, 10.0, 3.0, 1.0, 0.3, 0.1])
    keys = rng.normal(size=(4000, 6)) @ mix + 5.0
    w = Whitening.fit(keys, eps=0.0)
    z = w(keys)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(6), atol=1e-3)
    # Affine: the image of a mean of rows is the mean of their images.
    q = rng.normal(size=(10, 6))
    np.testing.assert_allclose(w(q).mean(axis=0), w(q.mean(axis=0, keepdims=True))[0], rtol=1e-4, atol=1e-4)
    assert w.variances[0] >= w.variances[-1] > 0
    assert 0.99 < w.top_share(2) <= 1.0 and w.top_share(6) == pytest.approx(1.0)


def test_eps_floors_small_directions_and_rank_deficient_keys_drop_them():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(500, 3))
    keys = np.c_[base, base[:, 0] + base[:, 1], np.zeros(500)]  # rank 3 in 5 dimensions
    w = Whitening.fit(keys)
    assert w.basis.shape == (5, 3)
    assert np.isfinite(w(keys)).all()
    # A large eps shrinks every direction towards the largest one's scale.
    loose = Whitening.fit(keys, eps=1.0)
    assert np.std(loose(keys), axis=0).max() < 1.0


def test_whitening_lets_a_low_variance_direction_decide_the_neighbours():
    """Two classes that differ only along a direction of small variance, with a large
    nuisance direction: raw cosine 1-NN follows the nuisance, whitened 1-NN the class."""
    rng = np.random.default_rng(2)
    n = 600
    label = rng.integers(0, 2, n)
    nuisance = rng.normal(scale=50.0, size=n)
    signal = (2 * label - 1) * 0.1 + rng.normal(scale=0.01, size=n)
    x = np.c_[nuisance, signal, rng.normal(scale=0.01, size=n)] + np.array([0.0, 0.0, 100.0])
    keys, queries = x[:400], x[400:]
    raw = (label[:400][cosine_knn(queries, keys, 1, backend="numpy")[0][:, 0]] == label[400:]).mean()
    w = Whitening.fit(keys)
    white = (label[:400][cosine_knn(w(queries), w(keys), 1, backend="numpy")[0][:, 0]] == label[400:]).mean()
    assert white > 0.95 and raw < 0.8


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="at least two rows"):
        Whitening.fit(np.ones((1, 3)))
    with pytest.raises(ValueError, match="2-D"):
        Whitening.fit(np.ones(5))
    with pytest.raises(ValueError, match="finite"):
        Whitening.fit(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="no variance"):
        Whitening.fit(np.ones((4, 3)))
    with pytest.raises(ValueError, match="eps"):
        Whitening.fit(np.eye(3), eps=-1)
    w = Whitening.fit(np.eye(3))
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        w(np.ones((2, 4)))
