"""Training recipes: BarcodeBERT's pretraining for the published presets, the demo's for tiny.

The reference for ``barcodebert`` is the original's ``barcodebert/pretraining.py`` (see
docs/model.md for where we differ and why): AdamW with weight decay 0, lr 1e-4 x batch/64,
torch's ``OneCycleLR`` built with only ``max_lr``, ``epochs`` and ``steps_per_epoch`` (so
with its defaults, beta1 cycling included), stepped every batch; no clipping; fp32.
"""

import json

import pytest
import torch

from bioscan_kmer.model import MaskedLM, get_preset
from bioscan_kmer.train import TrainConfig, pretrain
from bioscan_kmer.train.config import PRESET_RECIPES
from bioscan_kmer.train.optim import make_optimizer, make_scheduler
from bioscan_kmer.train.runlog import read_log

from model_synthetic import synthetic_shards
from model_synthetic import one_torch_thread  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def small_shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("recipe_shards")
    synthetic_shards(out, n_train=48, n_val=16, seed=2)
    return out


COMMON = dict(preset="tiny", device="cpu", threads=1, progress=False, seed=4, val_split=None, ckpt_every=0)


def test_presets_carry_their_recipes_and_flags_override_them():
    for preset in ("barcodebert-4-12-12", "bioscan5m-8-4-4"):
        cfg = TrainConfig(preset=preset)
        assert PRESET_RECIPES[preset] == cfg.recipe == "barcodebert"
        assert (cfg.batch_size, cfg.epochs, cfg.steps, cfg.weight_decay, cfg.clip_grad) == (16, 35, None, 0.0, 0.0)
        assert (cfg.schedule, cfg.warmup_fraction, cfg.cycle_momentum, cfg.precision) == ("onecycle", 0.3, True, "fp32")
        assert cfg.peak_lr(1) == pytest.approx(1e-4 * 16 / 64) and cfg.peak_lr(4) == pytest.approx(1e-4)
    tiny = TrainConfig(preset="tiny")
    assert tiny.recipe == "demo"
    assert (tiny.batch_size, tiny.lr, tiny.steps, tiny.epochs, tiny.clip_grad, tiny.cycle_momentum) == \
        (32, 3e-3, 300, None, 1.0, False)
    assert tiny.warmup == 30 and tiny.threads == 1 and TrainConfig(preset="bioscan5m-8-4-4").threads is None
    small = TrainConfig(preset="small")
    assert small.recipe == "small" and (small.batch_size, small.lr, small.epochs, small.steps) == (32, 1e-3, 4, None)
    # Explicit values win; a run may take the other recipe; steps replace the recipe's epochs.
    assert TrainConfig(preset="tiny", batch_size=8, lr=1e-3).batch_size == 8
    mixed = TrainConfig(preset="tiny", recipe="barcodebert", steps=10, clip_grad=0.5)
    assert (mixed.batch_size, mixed.steps, mixed.epochs, mixed.clip_grad, mixed.lr) == (16, 10, None, 0.5, None)
    with pytest.raises(ValueError, match="steps or epochs, not both"):
        TrainConfig(steps=3, epochs=2)
    with pytest.raises(ValueError, match="recipe must be one of"):
        TrainConfig(recipe="fast")
    with pytest.raises(ValueError, match="cycle_momentum needs the onecycle schedule"):
        TrainConfig(preset="bioscan5m-8-4-4", schedule="cosine")
    # The effective settings in one line.
    line = TrainConfig(preset="barcodebert-4-12-12").describe(2)
    for part in ("recipe barcodebert", "35 epochs", "batch 16 x 1 x 2 processes = 32", "lr 5e-05",
                 "beta1 0.95->0.85->0.95", "no clipping", "precision fp32"):
        assert part in line, (part, line)


def _original_optimizer_and_schedule(model, lr, epochs, steps_per_epoch):
    # barcodebert/pretraining.py: getattr(torch.optim, "AdamW")(model.parameters(), lr=...,
    # weight_decay=0.0), then OneCycleLR(optimizer, [lrs], epochs=..., steps_per_epoch=...).
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, [g["lr"] for g in optimizer.param_groups],
                                                    epochs=epochs, steps_per_epoch=steps_per_epoch)
    return optimizer, scheduler


def test_barcodebert_optimizer_and_schedule_equal_the_originals():
    epochs, per_epoch = 3, 7
    cfg = TrainConfig(preset="barcodebert-4-12-12").with_steps(per_epoch)
    assert cfg.steps == epochs * per_epoch * 35 // 3  # 35 epochs of 7
    cfg = TrainConfig(preset="barcodebert-4-12-12", epochs=epochs).with_steps(per_epoch)
    config = get_preset("tiny")
    torch.manual_seed(0)
    ours = MaskedLM(config)
    theirs = MaskedLM(config)
    theirs.load_state_dict(ours.state_dict())
    lr = cfg.peak_lr(1)
    opt_a = make_optimizer(ours, cfg, lr, torch.device("cpu"))
    sched_a = make_scheduler(opt_a, cfg, lr)
    opt_b, sched_b = _original_optimizer_and_schedule(theirs, lr, epochs, per_epoch)
    seen = []
    for step in range(cfg.steps):
        for model, opt in ((ours, opt_a), (theirs, opt_b)):
            opt.zero_grad()
            # Any deterministic gradient will do; the same on both sides.
            sum(((p - 0.01 * step) ** 2).sum() for p in model.parameters()).backward()
        assert opt_a.param_groups[0]["lr"] == opt_b.param_groups[0]["lr"]
        assert opt_a.param_groups[0]["betas"] == opt_b.param_groups[0]["betas"]
        seen.append(opt_b.param_groups[0]["betas"][0])
        opt_a.step(), opt_b.step(), sched_a.step(), sched_b.step()
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        assert torch.equal(a, b), name
    # Not vacuous: beta1 did cycle (0.95 -> 0.85 at the peak -> back towards 0.95).
    assert seen[0] == 0.95 and 0.85 <= min(seen) < 0.851 and seen[-1] > 0.94


def test_barcodebert_recipe_runs_without_clipping_in_fp32(small_shards, tmp_path, monkeypatch):
    clipped = []
    real_clip = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        clipped.append(max_norm)
        return real_clip(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    torch.backends.cuda.matmul.allow_tf32 = True
    during = []
    try:
        result = pretrain(small_shards, tmp_path / "bb", recipe="barcodebert", steps=4, batch_size=8,
                          on_step=lambda s, info: during.append(torch.backends.cuda.matmul.allow_tf32),
                          **COMMON)
        # The caller's process-wide TF32 flag is back as it was.
        assert torch.backends.cuda.matmul.allow_tf32 is True
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False
    assert clipped == [] and during == [False] * 4
    assert "no clipping" in result["settings"] and "(fp32 on cpu)" in result["settings"]
    effective = json.loads((tmp_path / "bb" / "config.json").read_text())["effective"]
    assert effective["precision"] == "fp32" and effective["lr"] == pytest.approx(1e-4 * 8 / 64)
    # The demo recipe (tiny's) clips at 1.
    pretrain(small_shards, tmp_path / "demo", steps=2, batch_size=8, **COMMON)
    assert clipped == [1.0, 1.0]


def test_epochs_set_the_length_of_the_run(small_shards, tmp_path):
    # 48 rows in micro-batches of 8: 6 per epoch; with 2 per step, 3 steps an epoch.
    result = pretrain(small_shards, tmp_path / "e", epochs=2, batch_size=8, grad_accum=2, log_every=1,
                      **COMMON)
    assert result["steps"] == result["total_steps"] == 6
    from bioscan_kmer.model import load_checkpoint

    state = load_checkpoint(result["checkpoint"])
    assert state["data_position"] == {"epoch": 2, "batch": 0}
    assert state["train_config"]["epochs"] == 2 and state["train_config"]["steps"] is None
    assert [r["epoch"] for r in read_log(result["log"]) if "loss" in r] == [0, 0, 1, 1, 1, 2]
    # Resuming with the same epochs is the same run; a change of batch size is refused.
    again = pretrain(small_shards, tmp_path / "e", epochs=2, batch_size=8, grad_accum=2, log_every=1,
                     resume=True, **COMMON)
    assert again["resumed_from"] == 6
    with pytest.raises(ValueError, match="batch_size: 8 -> 4"):
        pretrain(small_shards, tmp_path / "e", epochs=2, batch_size=4, grad_accum=2, resume=True, **COMMON)
    with pytest.raises(ValueError, match="fewer than one global batch"):
        pretrain(small_shards, tmp_path / "big", epochs=1, batch_size=64, **COMMON)
