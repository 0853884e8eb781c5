"""PCA whitening of frozen features, fitted on unlabelled keys: a diagnostic for cosine probes.

The paper's 1-NN probe and retrieval compare raw pooled features by cosine similarity, so
the few directions that hold most of the variance decide the neighbours. Masked-LM training
concentrates the variance of pooled hidden states in a handful of directions (on the real
BOLD corpus, 10 of 256 directions hold 85-96% of it after a few hundred steps, against 49%
at initialisation); a probe on whitened features, where every direction has unit variance,
tells whether the information a raw cosine probe misses is still in the features
(``benchmarks/results/real_bold.md``, "Why pretraining made the embedding worse").
Whitening uses no labels: it is fitted on the keys of the probe (train), never on queries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Whitening"]


@dataclass(frozen=True)
class Whitening:
    """``x -> (x - mean) @ basis``: centred, rotated onto the keys' principal axes and
    scaled to unit variance along each.

    Build it with :meth:`fit`. ``basis`` is (d, r) with r <= d the directions of non-zero
    variance; each column is a principal axis divided by ``sqrt(variance + eps * max
    variance)``, so directions of almost no variance are not blown up to unit size.
    """

    mean: np.ndarray  # (d,)
    basis: np.ndarray  # (d, r)
    variances: np.ndarray  # (r,), descending

    @classmethod
    def fit(cls, keys, *, eps: float = 1e-6) -> "Whitening":
        """Fit on the rows of ``keys``.

        Parameters
        ----------
        keys : array_like, shape (n, d)
            Finite features, n >= 2.
        eps : float
            Floor added to every variance, relative to the largest one.

        Raises
        ------
        ValueError
            Not 2-D, fewer than two rows, non-finite values, a negative ``eps``, or keys
            without any variance.
        """
        x = np.asarray(keys, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"keys must be a 2-D array of at least two rows, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("keys must be finite (found NaN or inf)")
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps!r}")
        mean = x.mean(axis=0)
        # SVD of the centred keys: right singular vectors are the principal axes.
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        var = s**2 / (x.shape[0] - 1)
        if not var.size or var[0] <= 0:
            raise ValueError("keys have no variance: every row is the same")
        keep = var > var[0] * 1e-12
        var, vt = var[keep], vt[keep]
        basis = vt.T / np.sqrt(var + eps * var[0])
        return cls(mean=mean.astype(np.float32), basis=basis.astype(np.float32), variances=var)

    def __call__(self, x) -> np.ndarray:
        """Whiten the rows of ``x`` (n, d) -> (n, r) float32."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"expected features of shape (n, {self.mean.shape[0]}), got {x.shape}")
        return (x - self.mean) @ self.basis

    def top_share(self, n: int = 10) -> float:
        """Share of the keys' total variance in their ``n`` largest principal directions."""
        return float(self.variances[:n].sum() / self.variances.sum())
