"""Early stopping of fine-tuning and the CNN: it ends training, never changes which epoch
is selected beyond what the patience rule says, and the long steps announce their cost."""

import numpy as np
import pytest
from torch import nn

from bioscan_kmer.eval.estimate import FirstUnitsTimer, format_seconds
from bioscan_kmer.eval.finetune import fine_tune


class _Lookup(nn.Module):
    """Logits from a one-hot input through one linear layer: learns a mapping fast."""

    def __init__(self, n_in, n_classes):
        super().__init__()
        self.head = nn.Linear(n_in, n_classes)

    def forward(self, x):
        return self.head(x)


def _problem(n=240, n_classes=6, noise=0.0, scale=0.8, seed=0):
    """Noisy inputs that name their class (one-hot), with a share of val labels flipped."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    x = np.eye(n_classes, dtype=np.float32)[y] + rng.normal(scale=scale, size=(n, n_classes)).astype(np.float32)
    val_y = y.copy()
    flip = rng.random(n) < noise
    val_y[flip] = (val_y[flip] + 1) % n_classes
    return (x,), y, (x,), val_y, (x,), y


def _run(problem, **kw):
    kw = {"epochs": 8, "lr": 0.05, "batch_size": 16, "seed": 0, "optimizer": "adam", **kw}
    return fine_tune(lambda c: _Lookup(problem[0][0].shape[1], c), *problem, **kw)


def _first_stop(curve, patience):
    """The epoch (1-based) at which the patience rule stops, from a full validation curve."""
    best, best_epoch = -1.0, 0
    for epoch, acc in enumerate(curve, 1):
        if acc > best:
            best, best_epoch = acc, epoch
        if epoch < len(curve) and (best >= 1.0 or epoch - best_epoch >= patience):
            return epoch
    return len(curve)


@pytest.mark.parametrize("patience", [1, 2])
def test_patience_stops_where_the_full_curve_says(patience):
    problem = _problem(noise=0.3)  # val accuracy stalls below 100%
    full = _run(problem, patience=None)
    assert full["epochs_run"] == 8 and full["stopped_early"] is None
    stop = _first_stop(full["val_curve"], patience)
    assert stop < 8, full["val_curve"]  # the case must actually stop early
    early = _run(problem, patience=patience)
    assert early["epochs_run"] == stop
    assert early["val_curve"] == full["val_curve"][:stop]  # same training up to the stop
    assert early["best_epoch"] == int(np.argmax(early["val_curve"])) + 1
    assert early["stopped_early"] == f"no better validation accuracy for {patience} epochs"


def test_perfect_validation_stops_without_changing_the_result():
    problem = _problem(noise=0.0, scale=0.05)
    full = _run(problem, patience=None, epochs=8)
    assert full["stopped_early"] == "validation accuracy 100%"
    first = full["val_curve"].index(1.0) + 1
    assert full["epochs_run"] == first == full["best_epoch"]
    # Running on would only have tied at best: the selected epoch would be the same.
    assert full["accuracy_micro"] == pytest.approx(1.0)


def test_patience_is_validated():
    problem = _problem()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="patience"):
            _run(problem, patience=bad)


def test_progress_announces_an_estimate_and_the_stop(capsys, monkeypatch):
    monkeypatch.setenv("BIOSCAN_KMER_PROGRESS", "lines")
    _run(_problem(noise=0.3), patience=1, progress=True, desc="training X")
    err = capsys.readouterr().err
    assert "training X: 240 records, 15 batches per epoch, about " in err
    assert "up to 8 epochs, about " in err and "stops after 1 epochs without a better val accuracy" in err
    assert "training X: stopped after epoch " in err
    _run(_problem(noise=0.3), patience=1)  # quiet by default
    assert capsys.readouterr().err == ""


def test_first_units_timer_and_formatting():
    timer = FirstUnitsTimer(100, min_units=3, min_seconds=0.0)
    assert timer.tick() is None and timer.tick() is None
    rest = timer.tick()
    assert rest is not None and rest == pytest.approx(timer.per_unit * 97)
    assert timer.tick() is None  # once
    short = FirstUnitsTimer(2, min_units=3, min_seconds=10.0)
    assert short.tick() is None and short.tick() == 0.0  # the whole step was timed
    assert [format_seconds(s) for s in (4.2, 89, 150, 5000, 7200)] == ["4 s", "89 s", "2.5 min", "83.3 min", "2.0 h"]
