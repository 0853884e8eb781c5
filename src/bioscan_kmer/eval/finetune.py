"""Supervised fine-tuning with validation-based model selection.

The paper's "fine-tuned" column trains the whole encoder plus a linear head on the
masked mean of its last hidden layer, on the ``train`` split's species, and reports
accuracy on the seen ``test`` split. We keep the weights of the epoch with the best
validation accuracy (``val`` split), not those of the last epoch, and only then touch the
test set once. Training stops early when no later epoch can be selected any more: when
the validation accuracy reaches 100% (ties keep the earlier epoch, so nothing can beat
it; this never changes the result), or after ``patience`` epochs without a better
validation accuracy (the one deviation from a fixed epoch count, see docs/eval.md).

The loop is generic: any classifier module whose ``forward(*inputs)`` returns logits over
the training classes works (the encoder head below, the paper's CNN baseline).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .embeddings import masked_mean
from .estimate import FirstUnitsTimer, announce, format_seconds
from .knn import default_device
from .metrics import topk_accuracy

__all__ = ["PooledClassifier", "fine_tune"]


class PooledClassifier(nn.Module):
    """Encoder + dropout + linear head on the masked mean of the last layer.

    Parameters
    ----------
    encoder : torch.nn.Module
        ``encoder(input_ids, attention_mask) -> (B, T, C)``; trained along with the head.
    hidden_size : int
        C.
    n_classes : int
    dropout : float
    """

    def __init__(self, encoder, hidden_size: int, n_classes: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, n_classes)

    def embed(self, input_ids, attention_mask):
        """Masked mean of the last layer (B, C)."""
        return masked_mean(self.encoder(input_ids, attention_mask), attention_mask)

    def forward(self, input_ids, attention_mask):
        return self.head(self.drop(self.embed(input_ids, attention_mask)))  # (B, n_classes)


def _predict(model, inputs, batch_size, device, kmax):
    out = []
    model.eval()
    with torch.inference_mode():
        for s in range(0, inputs[0].shape[0], batch_size):
            batch = [torch.as_tensor(a[s : s + batch_size]).to(device) for a in inputs]
            logits = model(*batch)
            out.append(torch.topk(logits, kmax, dim=1).indices.cpu().numpy())
    return np.concatenate(out) if out else np.empty((0, kmax), dtype=np.int64)


def fine_tune(
    build_model,
    train_inputs,
    train_y,
    val_inputs,
    val_y,
    test_inputs,
    test_y,
    *,
    epochs: int = 5,
    lr: float = 1e-4,
    head_lr: float | None = None,
    weight_decay: float = 0.01,
    batch_size: int = 32,
    optimizer: str = "adamw",
    seed: int = 0,
    device=None,
    progress: bool = False,
    eval_batch_size: int = 256,
    topk=(1,),
    patience: int | None = None,
    desc: str = "fine-tuning",
) -> dict:
    """Train a classifier on ``train``, keep the best epoch on ``val``, score ``test``.

    Parameters
    ----------
    build_model : callable
        ``build_model(n_classes) -> torch.nn.Module`` with ``forward(*inputs) -> logits``
        (B, n_classes). Called once, after seeding, so initialisation is reproducible.
    train_inputs, val_inputs, test_inputs : tuple of numpy.ndarray
        Model inputs, row-aligned (e.g. ``(input_ids, attention_mask)`` or ``(codes,)``).
    train_y, val_y, test_y : array_like of int
        Global label codes. Training rows without a label are skipped. The classes are
        those present in training; a val/test label outside them counts as an error.
    epochs, lr, weight_decay, batch_size
        Optimisation settings.
    head_lr : float, optional
        Learning rate of the model's ``head`` sub-module (when it has one), so that a
        freshly initialised head can move faster than pretrained weights; default ``lr``.
    optimizer : {"adamw", "adam"}
        AdamW for the encoder; plain Adam is what the paper's CNN used.
    seed : int
        Seeds initialisation, dropout and the shuffling order.
    device : optional
        Torch device, CUDA when present by default.
    progress : bool
        Progress over batches, and before the long part an estimate of the step's time
        (from the first timed batches) on stderr.
    topk : tuple of int
        Extra top-k test accuracies to report.
    patience : int, optional
        Stop after this many epochs without a better validation accuracy; None runs
        every epoch (still stopping at 100% validation accuracy, which changes nothing).
    desc : str
        Name of the step in progress lines.

    Returns
    -------
    dict
        ``accuracy_micro``, ``accuracy_macro`` (test, top-1), ``best_epoch`` (1-based),
        ``val_curve`` (val micro accuracy per epoch run), ``train_loss`` per epoch run,
        ``epochs_run``, ``stopped_early`` (the reason, or None), ``n_train``, ``n_test``,
        ``n_classes``, ``classes`` (global codes of the logits), and ``model`` (the
        selected model, in eval mode).
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be positive, got {epochs} and {batch_size}")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
        raise ValueError(f"patience must be a positive integer or None, got {patience!r}")
    if optimizer not in ("adamw", "adam"):
        raise ValueError(f"optimizer must be 'adamw' or 'adam', got {optimizer!r}")
    train_inputs = tuple(np.asarray(a) for a in train_inputs)
    val_inputs = tuple(np.asarray(a) for a in val_inputs)
    test_inputs = tuple(np.asarray(a) for a in test_inputs)
    train_y, val_y, test_y = (np.asarray(y, dtype=np.int64) for y in (train_y, val_y, test_y))
    for name, ins, y in (("train", train_inputs, train_y), ("val", val_inputs, val_y), ("test", test_inputs, test_y)):
        if any(a.shape[0] != y.shape[0] for a in ins):
            raise ValueError(f"{name} inputs and labels have different lengths")
    keep = train_y >= 0
    train_inputs = tuple(a[keep] for a in train_inputs)
    train_y = train_y[keep]
    classes = np.unique(train_y)
    if classes.size < 2:
        raise ValueError(f"fine-tuning needs at least 2 classes in training, got {classes.size}")
    y_idx = np.searchsorted(classes, train_y)

    dev = default_device(device)
    torch.manual_seed(seed)
    model = build_model(int(classes.size)).to(dev)
    opt_cls = torch.optim.AdamW if optimizer == "adamw" else torch.optim.Adam
    head = getattr(model, "head", None)
    if head_lr is not None and isinstance(head, nn.Module):
        head_ids = {id(p) for p in head.parameters()}
        groups = [{"params": [p for p in model.parameters() if id(p) not in head_ids]},
                  {"params": list(head.parameters()), "lr": head_lr}]
    else:
        groups = model.parameters()
    opt = opt_cls(groups, lr=lr, weight_decay=weight_decay if optimizer == "adamw" else 0.0)
    gen = torch.Generator().manual_seed(seed)
    n = train_y.shape[0]
    has_val = val_y.shape[0] > 0 and (val_y >= 0).any()
    if not has_val:
        warnings.warn("no labelled validation rows: keeping the last epoch", stacklevel=2)

    n_batches = -(-n // batch_size)
    bar = timer = None
    if progress:
        from bioscan_kmer._progress import progress_bar

        bar = progress_bar(total=epochs * n_batches, desc=desc, unit="batch")
        # Validation is a forward pass (about a third of a training step) over val rows.
        val_share = val_y.shape[0] / max(n, 1) / 3 if has_val else 0.0
        timer = FirstUnitsTimer(n_batches)
    best_acc, best_epoch, best_state, stopped = -1.0, 0, None, None
    val_curve, losses = [], []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen).numpy()
        total = 0.0
        for s in range(0, n, batch_size):
            rows = order[s : s + batch_size]
            if rows.size < 2 and n >= 2:
                continue  # a batch of one breaks BatchNorm layers in training mode
            batch = [torch.as_tensor(a[rows]).to(dev) for a in train_inputs]
            target = torch.as_tensor(y_idx[rows]).to(dev)
            loss = F.cross_entropy(model(*batch), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * rows.size
            if bar is not None:
                bar.update(1)
                if timer.tick() is not None:
                    per_epoch = timer.per_unit * n_batches * (1 + val_share)
                    stop_rule = (f"; stops after {patience} epochs without a better val accuracy"
                                 if patience is not None and has_val and patience < epochs else "")
                    announce(f"{desc}: {n:,} records, {n_batches:,} batches per epoch, about "
                             f"{format_seconds(per_epoch)} per epoch; up to {epochs} epochs, about "
                             f"{format_seconds(epochs * per_epoch)}{stop_rule}", bar)
        losses.append(total / n)
        if has_val:
            pred = classes[_predict(model, val_inputs, eval_batch_size, dev, 1)[:, 0]]
            acc = topk_accuracy(val_y, pred, 1)
        else:
            acc = float(epoch)  # no validation: the last epoch wins
        val_curve.append(acc if has_val else float("nan"))
        if acc > best_acc:  # strict: ties keep the earlier, less-trained epoch
            best_acc, best_epoch = acc, epoch
            best_state = copy.deepcopy(model.state_dict())
        if bar is not None:
            bar.set_postfix(epoch=f"{epoch}/{epochs}", val=f"{acc:.3f}" if has_val else "-")
        if epoch < epochs and has_val:
            if best_acc >= 1.0:  # nothing can beat it: stopping changes nothing
                stopped = "validation accuracy 100%"
            elif patience is not None and epoch - best_epoch >= patience:
                stopped = f"no better validation accuracy for {patience} epochs"
            if stopped:
                break
    if bar is not None:
        bar.close()
        if stopped:
            announce(f"{desc}: stopped after epoch {len(val_curve)} of {epochs} ({stopped}); best epoch {best_epoch}")
    model.load_state_dict(best_state)
    model.eval()

    kmax = min(max(topk), classes.size)
    ranked = classes[_predict(model, test_inputs, eval_batch_size, dev, kmax)]
    out = {
        "accuracy_micro": topk_accuracy(test_y, ranked[:, 0], 1, "micro"),
        "accuracy_macro": topk_accuracy(test_y, ranked[:, 0], 1, "macro"),
        "best_epoch": best_epoch,
        "epochs_run": len(val_curve),
        "stopped_early": stopped,
        "val_curve": val_curve,
        "train_loss": losses,
        "n_train": int(n),
        "n_test": int((test_y >= 0).sum()),
        "n_classes": int(classes.size),
        "classes": classes,
        "model": model,
    }
    for k in topk:
        if 1 < k <= kmax:
            out[f"top{k}_micro"] = topk_accuracy(test_y, ranked, k, "micro")
            out[f"top{k}_macro"] = topk_accuracy(test_y, ranked, k, "macro")
    return out
