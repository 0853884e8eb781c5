"""The pretraining loop: the loss falls, runs resume exactly, DDP equals one process."""

import json

import pytest
import torch
import torch.multiprocessing as mp

from bioscan_kmer.model import load_checkpoint, load_model
from bioscan_kmer.train import TrainConfig, pretrain
from bioscan_kmer.train.runlog import read_log

from model_synthetic import ddp_worker, free_port, species_sequences, synthetic_shards
from model_synthetic import one_torch_thread  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    synthetic_shards(out, n_train=512, n_val=64)
    return out


@pytest.fixture(scope="module")
def small_shards(tmp_path_factory):
    # 48 rows: with 8-row micro-batches an epoch is 6 micro-batches, so the runs below
    # cross several epoch boundaries, also in the middle of an accumulated step.
    out = tmp_path_factory.mktemp("small_shards")
    synthetic_shards(out, n_train=48, n_val=24, seed=1)
    return out


COMMON = dict(preset="tiny", device="cpu", threads=1, progress=False, seed=3)


def test_tiny_loss_falls_clearly(shards, tmp_path):
    result = pretrain(shards, tmp_path / "run", steps=90, batch_size=24, lr=3e-3, log_every=10,
                      val_every=45, val_batches=2, ckpt_every=0, **COMMON)
    records = read_log(tmp_path / "run" / "log.jsonl")
    losses = [r["loss"] for r in records if "loss" in r]
    # Chance level is ln(256) = 5.55 nats over the k-mer classes.
    assert 5.0 < losses[0] < 6.0
    assert result["last_loss"] < 0.5 * result["first_loss"]
    assert losses[-1] < 2.5
    val = [r["val_loss"] for r in records if "val_loss" in r]
    assert len(val) == 2 and val[-1] < 3.0 and result["val_loss"] == val[-1]
    for r in records:
        if "loss" in r:
            assert {"step", "loss", "lr", "tokens_per_s", "mfu", "tokens_seen"} <= set(r)
            assert r["tokens_per_s"] > 0 and 0 < r["mfu"] < 1
    # Outputs a person looks at.
    assert (tmp_path / "run" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"]["vocab_size"] == 261 and config["train"]["steps"] == 90
    # The checkpoint rebuilds the trained model.
    model = load_model(result["checkpoint"])
    assert model.config.num_layers == 2


class Interrupt(Exception):
    pass


def _stop_at(step):
    def hook(s, info):
        if s == step:
            raise Interrupt
    return hook


def test_interrupted_and_resumed_run_matches_uninterrupted(small_shards, tmp_path):
    kw = dict(steps=14, batch_size=8, grad_accum=2, lr=3e-3, dropout=0.1, log_every=2, val_every=4,
              val_batches=2, ckpt_every=5, **COMMON)
    whole = pretrain(small_shards, tmp_path / "whole", **kw)
    with pytest.raises(Interrupt):
        pretrain(small_shards, tmp_path / "parts", on_step=_stop_at(8), **kw)
    assert load_checkpoint(tmp_path / "parts")["step"] == 5  # steps 6-8 are lost, as in a crash
    parts = pretrain(small_shards, tmp_path / "parts", resume=True, **kw)
    assert parts["resumed_from"] == 5 and parts["steps"] == 14

    a, b = load_checkpoint(whole["checkpoint"]), load_checkpoint(parts["checkpoint"])
    assert a["data_position"] == b["data_position"] and a["data_position"]["epoch"] > 2
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 14

    # The resumed log has each step once, with the uninterrupted run's losses.
    la = read_log(whole["log"])
    lb = read_log(parts["log"])
    steps_b = [r["step"] for r in lb if "loss" in r]
    assert steps_b == sorted(set(steps_b)) == [r["step"] for r in la if "loss" in r]
    losses_a = [(r["step"], r.get("loss"), r.get("val_loss")) for r in la]
    losses_b = [(r["step"], r.get("loss"), r.get("val_loss")) for r in lb]
    assert losses_a == losses_b


def test_compiled_run_resumes_exactly(small_shards, tmp_path):
    """torch.compile draws dropout from its own kernels' seeds: a resumed compiled run still
    ends with the uninterrupted compiled run's weights (Inductor's seeds come from the torch
    generator, whose state the checkpoint restores)."""
    kw = dict(steps=8, batch_size=8, grad_accum=2, lr=3e-3, dropout=0.1, log_every=2, val_every=4,
              val_batches=2, ckpt_every=3, compile=True, **COMMON)
    whole = pretrain(small_shards, tmp_path / "whole", **kw)
    with pytest.raises(Interrupt):
        pretrain(small_shards, tmp_path / "parts", on_step=_stop_at(5), **kw)
    parts = pretrain(small_shards, tmp_path / "parts", resume=True, **kw)
    assert parts["resumed_from"] == 3
    a, b = load_checkpoint(whole["checkpoint"]), load_checkpoint(parts["checkpoint"])
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    # Not vacuous: dropout noise matters, so the eager run (other noise) ends elsewhere.
    eager = load_checkpoint(pretrain(small_shards, tmp_path / "eager", **{**kw, "compile": False})["checkpoint"])
    assert any(not torch.equal(v, eager["model"][k]) for k, v in a["model"].items())
    assert [r.get("loss") for r in read_log(whole["log"])] == [r.get("loss") for r in read_log(parts["log"])]


def test_resume_refuses_changed_settings_and_overwrites(small_shards, tmp_path):
    kw = dict(steps=3, batch_size=8, log_every=1, ckpt_every=1, **COMMON)
    pretrain(small_shards, tmp_path / "r", **kw)
    with pytest.raises(FileExistsError, match="resume"):
        pretrain(small_shards, tmp_path / "r", **kw)
    with pytest.raises(ValueError, match="batch_size: 8 -> 4"):
        pretrain(small_shards, tmp_path / "r", resume=True, **{**kw, "batch_size": 4})
    # Resuming a finished run does nothing more and reports it.
    again = pretrain(small_shards, tmp_path / "r", resume=True, **{**kw, "log_every": 2})
    assert again["steps"] == 3 and again["resumed_from"] == 3


def test_two_process_ddp_matches_one_process(small_shards, tmp_path):
    common = dict(data=str(small_shards), steps=6, grad_accum=2, lr=3e-3, dropout=0.0, log_every=1,
                  val_every=3, val_batches=2, ckpt_every=0, preset="tiny", device="cpu", progress=False, seed=5)
    single = pretrain(out_dir=tmp_path / "one", batch_size=8, threads=1, **common)
    mp.spawn(ddp_worker, args=(2, free_port(), {**common, "out_dir": str(tmp_path / "two"), "batch_size": 4}),
             nprocs=2, join=True)
    a = load_checkpoint(single["checkpoint"])
    b = load_checkpoint(tmp_path / "two")
    assert b["world_size"] == 2 and len(b["rng"]["processes"]) == 2
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    # Not vacuous: training moved the weights well beyond that tolerance.
    first = load_model(single["checkpoint"]).state_dict()
    torch.manual_seed(5)
    from bioscan_kmer.model import MaskedLM
    init = MaskedLM(load_model(single["checkpoint"]).config).state_dict()
    assert max((first[k] - init[k]).abs().max().item() for k in init) > 1e-2
    la, lb = read_log(single["log"]), read_log(tmp_path / "two" / "log.jsonl")
    for ra, rb in zip(la, lb):
        assert ra["step"] == rb["step"]
        for field in ("loss", "val_loss"):
            if field in ra:
                assert rb[field] == pytest.approx(ra[field], rel=1e-4)


def test_raw_sequences_with_random_offsets(tmp_path):
    from bioscan_kmer import KmerTokenizer

    tok = KmerTokenizer(k=4, max_len=160, preset="bert")
    seqs = species_sequences(96, length=160, seed=4)
    kw = dict(steps=6, batch_size=16, lr=3e-3, log_every=1, val_every=3, val_batches=1, ckpt_every=3, **COMMON)
    whole = pretrain(seqs, tmp_path / "a", tokenizer=tok, val_data=seqs[:32], **kw)
    assert whole["val_loss"] is not None and whole["first_loss"] > whole["last_loss"]
    with pytest.raises(Interrupt):
        pretrain(seqs, tmp_path / "b", tokenizer=tok, val_data=seqs[:32], on_step=_stop_at(4), **kw)
    parts = pretrain(seqs, tmp_path / "b", tokenizer=tok, val_data=seqs[:32], resume=True, **kw)
    a, b = load_checkpoint(whole["checkpoint"]), load_checkpoint(parts["checkpoint"])
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    with pytest.raises(ValueError, match="not the data"):
        pretrain(seqs[:64], tmp_path / "b", tokenizer=tok, resume=True, **kw)


def test_schedules_warm_up_and_decay(small_shards, tmp_path):
    for schedule in ("onecycle", "cosine"):
        result = pretrain(small_shards, tmp_path / schedule, steps=10, batch_size=8, lr=1e-3,
                          schedule=schedule, warmup_steps=3, log_every=1, ckpt_every=0, **COMMON)
        lrs = [r["lr"] for r in read_log(result["log"]) if "lr" in r]
        peak = lrs.index(max(lrs))
        assert 1 <= peak <= 3, (schedule, lrs)
        assert max(lrs) == pytest.approx(1e-3, rel=0.05)
        assert all(x >= y for x, y in zip(lrs[peak:], lrs[peak + 1:])) and lrs[-1] < 0.2e-3


def test_bad_settings_are_value_errors():
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="mask_recipe"):
        TrainConfig(mask_recipe="span")
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(steps=10, warmup_steps=10)


def test_vocabulary_mismatch_and_missing_shard(small_shards, tmp_path):
    with pytest.raises(ValueError, match="preset 'bioscan5m-8-4-4': vocabulary of shards .* k=4 \\(model expects 8\\)"):
        pretrain(small_shards, tmp_path / "x", **{**COMMON, "preset": "bioscan5m-8-4-4"}, steps=1)
    with pytest.raises(ValueError, match="does not exist"):
        pretrain(tmp_path / "nowhere", tmp_path / "y", steps=1, **COMMON)
    with pytest.raises(ValueError, match="split 'holdout' is not in"):
        pretrain(small_shards, tmp_path / "z", steps=1, train_split="holdout", **COMMON)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_compiled_run_trains_and_checkpoints_for_cpu(shards, tmp_path):
    result = pretrain(shards, tmp_path / "gpu", preset="tiny", steps=60, batch_size=32, lr=3e-3,
                      compile=True, log_every=10, ckpt_every=30, progress=False, seed=0)
    assert result["last_loss"] < 0.7 * result["first_loss"]
    model = load_model(result["checkpoint"], map_location="cpu")
    assert next(model.parameters()).device.type == "cpu"


def test_progress_bar_shows_loss_and_throughput(small_shards, tmp_path, capsys):
    pretrain(small_shards, tmp_path / "bar", steps=4, batch_size=8, log_every=2, ckpt_every=0,
             **{**COMMON, "progress": True})
    err = capsys.readouterr().err
    assert "pretrain" in err and "4/4" in err and "loss=" in err and "tok_s=" in err
    # Library calls are quiet unless asked.
    pretrain(small_shards, tmp_path / "quiet", steps=2, batch_size=8, ckpt_every=0,
             **{k: v for k, v in COMMON.items() if k != "progress"})
    assert capsys.readouterr().err == ""


def test_snapshots_keep_the_weights_of_their_steps(small_shards, tmp_path):
    # A learning curve needs the weights as they were at earlier steps: a snapshot of
    # step 3 must equal a run stopped after 3 steps of the same schedule, and snapshots
    # change nothing else (the final weights equal a run without them).
    from bioscan_kmer.model.hf import load_pretrained

    kw = dict(steps=6, batch_size=8, lr=3e-3, ckpt_every=0, val_split=None, **COMMON)
    plain = pretrain(small_shards, tmp_path / "plain", **kw)
    snap = pretrain(small_shards, tmp_path / "snap", snapshot_steps=(0, 3, 6, 99), **kw)
    files = sorted(p.name for p in (tmp_path / "snap" / "snapshots").iterdir())
    assert files == ["step_00000000.pt", "step_00000003.pt", "step_00000006.pt"]
    # Step 0 is the initialisation, before any update.
    init = load_checkpoint(tmp_path / "snap" / "snapshots" / "step_00000000.pt")
    assert init["step"] == 0 and init["tokens_seen"] == 0
    assert not torch.equal(init["model"]["encoder.embeddings.tokens.weight"],
                           load_checkpoint(snap["checkpoint"])["model"]["encoder.embeddings.tokens.weight"])
    final = load_checkpoint(snap["checkpoint"])["model"]
    for key, value in load_checkpoint(plain["checkpoint"])["model"].items():
        assert torch.equal(value, final[key]), key

    with pytest.raises(Interrupt):
        pretrain(small_shards, tmp_path / "stop3", on_step=_stop_at(3), **{**kw, "ckpt_every": 1})
    at3 = load_checkpoint(tmp_path / "stop3")["model"]
    model, tok_cfg = load_pretrained(tmp_path / "snap" / "snapshots" / "step_00000003.pt")
    assert tok_cfg is not None
    for key, value in model.state_dict().items():
        assert torch.equal(value, at3[key]), key
    snapshot = load_checkpoint(tmp_path / "snap" / "snapshots" / "step_00000003.pt")
    assert snapshot["step"] == 3 and 2 * snapshot["tokens_seen"] == load_checkpoint(snap["checkpoint"])["tokens_seen"]
