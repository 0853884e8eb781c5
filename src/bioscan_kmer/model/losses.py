"""Cross-entropy of a linear output layer, computed in row chunks without the logits.

``bioscan5m-8-4-4`` scores every position over 65,536 k-mers: at batch 256 x 82 positions
the logits alone are 2.75 GB in bf16, and the float32 copy that the loss takes, its
gradient and the bf16 gradient add 14 GB more (23 GB peak for the uncompiled step on an
H200, 43 GB at batch 512). :func:`linear_cross_entropy` computes ``sum CE(h W^T + b, y)``
one chunk of rows at a time and, in the same pass, the gradients with respect to ``h``,
``W`` and ``b`` (softmax minus one-hot times the chunk's inputs), so no more than one
chunk's (rows x classes) scores ever exist. The backward pass only scales the stored
gradients by the incoming one, so the output layer's three matrix products are each done
once, as in the plain path. The cost: the gradients are computed even if backward never
runs (not under ``torch.no_grad()``, where they are skipped), and W's gradient is held in
float32 until backward.

Numerics: scores, log-sum-exp and softmax in float32 (as ``F.cross_entropy`` does under
autocast); the matrix products in the autocast dtype when autocast is on.
"""

from __future__ import annotations

import torch

__all__ = ["linear_cross_entropy"]


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, labels, ignore_index, chunk_rows):
        # hidden (N, C), weight (K, C), bias (K,) or None, labels (N,) -> loss sum ()
        dtype = torch.get_autocast_dtype(hidden.device.type) if torch.is_autocast_enabled(hidden.device.type) \
            else hidden.dtype
        want_h, want_w, want_b = ctx.needs_input_grad[:3]
        want = want_h or want_w or want_b
        acc = torch.promote_types(dtype, torch.float32)  # float32, or float64 for float64 inputs
        w = weight.to(dtype)
        b = bias.to(acc) if bias is not None else None
        N = hidden.shape[0]
        total = torch.zeros((), device=hidden.device, dtype=acc)
        grad_h = torch.empty_like(hidden) if want_h else None
        grad_w = torch.zeros(weight.shape, device=weight.device, dtype=acc) if want_w else None
        grad_b = torch.zeros(bias.shape, device=bias.device, dtype=acc) if want_b else None
        with torch.autocast(hidden.device.type, enabled=False):
            for start in range(0, N, chunk_rows):
                h = hidden[start:start + chunk_rows].to(dtype)  # (n, C)
                y = labels[start:start + chunk_rows]  # (n,)
                scores = (h @ w.t()).to(acc)  # (n, K)
                if b is not None:
                    scores += b
                valid = y != ignore_index  # (n,)
                target = torch.where(valid, y, 0)[:, None]  # (n, 1)
                lse = torch.logsumexp(scores, dim=1)  # (n,)
                picked = scores.gather(1, target)[:, 0]  # (n,)
                total += torch.where(valid, lse - picked, 0.0).sum()
                if not want:
                    continue
                # d(sum CE)/d(scores) = softmax - one_hot, zero on ignored rows.
                g = scores.sub_(lse[:, None]).exp_()  # (n, K), reuses the scores' memory
                g.scatter_add_(1, target, torch.full_like(picked, -1.0)[:, None])
                g.mul_(valid[:, None])
                if want_b:
                    grad_b += g.sum(dim=0)
                g = g.to(dtype)
                if want_h:
                    grad_h[start:start + chunk_rows] = g @ w  # (n, C)
                if want_w:
                    grad_w += (g.t() @ h).to(acc)  # (K, C)
        ctx.save_for_backward(grad_h, grad_w, grad_b)
        ctx.weight_dtype = weight.dtype
        ctx.bias_dtype = bias.dtype if bias is not None else None
        return total

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w, grad_b = ctx.saved_tensors
        dh = grad_h * grad_out.to(grad_h.dtype) if grad_h is not None else None
        dw = (grad_w * grad_out).to(ctx.weight_dtype) if grad_w is not None else None
        db = (grad_b * grad_out).to(ctx.bias_dtype) if grad_b is not None else None
        return dh, dw, db, None, None, None


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                         labels: torch.Tensor, *, ignore_index: int = -100,
                         chunk_rows: int = 4096) -> torch.Tensor:
    """``F.cross_entropy(hidden @ weight.T + bias, labels, reduction="sum")`` in row chunks.

    Parameters
    ----------
    hidden : Tensor (N, C)
    weight : Tensor (K, C)
    bias : Tensor (K,) or None
    labels : LongTensor (N,)
        Class ids in [0, K), or ``ignore_index`` for rows without a loss.
    ignore_index : int
    chunk_rows : int
        Rows scored at once: memory is about ``chunk_rows x K x 4`` bytes (x 2 with grads).

    Returns
    -------
    Tensor ()
        The sum of the per-row losses over rows whose label is not ignored, in float32
        (float64 for float64 inputs).
    """
    if hidden.dim() != 2 or weight.dim() != 2 or hidden.shape[1] != weight.shape[1]:
        raise ValueError(f"hidden (N, C) and weight (K, C) do not fit: {tuple(hidden.shape)}, {tuple(weight.shape)}")
    if labels.shape != hidden.shape[:1]:
        raise ValueError(f"labels shape {tuple(labels.shape)} differs from ({hidden.shape[0]},)")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"bias shape {tuple(bias.shape)} differs from ({weight.shape[0]},)")
    if not isinstance(chunk_rows, int) or isinstance(chunk_rows, bool) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive int, got {chunk_rows!r}")
    return _LinearCrossEntropy.apply(hidden, weight, bias, labels, ignore_index, chunk_rows)
