"""Blocked cosine nearest-neighbour search against brute force."""

import numpy as np
import pytest

from bioscan_kmer.eval.knn import cosine_knn


def _brute(q, k, n):
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    kn = k / np.linalg.norm(k, axis=1, keepdims=True)
    sims = qn @ kn.T
    idx = np.argsort(-sims, axis=1, kind="stable")[:, :n]
    return idx, np.take_along_axis(sims, idx, axis=1)


@pytest.mark.parametrize("backend", ["torch", "numpy"])
@pytest.mark.parametrize("block_size", [1, 7, 64, None])
def test_blocked_search_equals_brute_force(backend, block_size):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(83, 24))
    keys = rng.normal(size=(517, 24))
    idx, sims = cosine_knn(q, keys, 5, block_size=block_size, backend=backend)
    ref_idx, ref_sims = _brute(q, keys, 5)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(sims, ref_sims, rtol=1e-5, atol=1e-5)


def test_every_key_when_k_is_all_keys():
    rng = np.random.default_rng(1)
    q, keys = rng.normal(size=(4, 3)), rng.normal(size=(6, 3))
    for backend in ("torch", "numpy"):
        idx, _ = cosine_knn(q, keys, 6, backend=backend)
        np.testing.assert_array_equal(idx, _brute(q, keys, 6)[0])


def test_a_key_finds_itself_and_scale_does_not_matter():
    rng = np.random.default_rng(2)
    keys = rng.normal(size=(50, 8))
    idx, sims = cosine_knn(keys * 3.0, keys, 1)
    np.testing.assert_array_equal(idx[:, 0], np.arange(50))
    np.testing.assert_allclose(sims[:, 0], 1.0, atol=1e-5)


def test_zero_vectors_have_zero_similarity():
    keys = np.array([[1.0, 0.0], [0.0, 1.0]])
    _, sims = cosine_knn(np.zeros((1, 2)), keys, 2)
    np.testing.assert_array_equal(sims, 0.0)


def test_bad_inputs():
    rng = np.random.default_rng(3)
    q, keys = rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
    with pytest.raises(ValueError, match="features"):
        cosine_knn(q, keys[:, :3])
    with pytest.raises(ValueError, match="k must be"):
        cosine_knn(q, keys, 6)
    with pytest.raises(ValueError, match="NaN"):
        cosine_knn(np.full((1, 4), np.nan), keys)
    with pytest.raises(ValueError, match="no keys"):
        cosine_knn(q, np.empty((0, 4)))
    with pytest.raises(ValueError, match="backend"):
        cosine_knn(q, keys, backend="faiss")
    with pytest.raises(TypeError):
        cosine_knn(np.array([["a"]]), np.array([["b"]]))
