"""`bioscan-kmer pretrain`: a run, and one-line errors with exit code 2."""

import errno

import pytest
import torch

from bioscan_kmer.cli import main
from bioscan_kmer.model import load_checkpoint
from bioscan_kmer.model import checkpoint as checkpoint_module
from bioscan_kmer.train import loop as loop_module

from model_synthetic import synthetic_shards, torch_threads

@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # One thread: tiny models gain nothing from more, and the count is process-wide.
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_shards")
    synthetic_shards(out, n_train=64, n_val=16, preset="barcodebert")
    return out


def args(shards, out, *extra):
    return ["pretrain", "--data", str(shards), "--preset", "tiny", "--steps", "3", "--out", str(out),
            "--batch-size", "8", "--device", "cpu", "--threads", "1", "--num-workers", "0",
            "--log-every", "1", "--no-progress", *extra]


def one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bioscan-kmer pretrain: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_pretrain_runs_and_resumes(shards, tmp_path, capsys):
    assert main(args(shards, tmp_path / "run")) == 0
    out = capsys.readouterr().out
    assert "pretrained 3 steps" in out and "checkpoint" in out
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["step"] == 3 and state["config"]["tokenizer_preset"] == "barcodebert"
    assert (tmp_path / "run" / "loss.png").is_file() and (tmp_path / "run" / "log.jsonl").is_file()
    # Running again into the same directory needs --resume.
    assert main(args(shards, tmp_path / "run")) == 2
    one_line_error(capsys, "already exists", "--resume")
    assert main(args(shards, tmp_path / "run", "--resume")) == 0


def test_missing_shard(tmp_path, capsys):
    assert main(args(tmp_path / "no_such_dir", tmp_path / "run")) == 2
    one_line_error(capsys, "no_such_dir", "does not exist")
    (tmp_path / "empty").mkdir()
    assert main(args(tmp_path / "empty", tmp_path / "run")) == 2
    one_line_error(capsys, "manifest.json")


def test_missing_split(shards, tmp_path, capsys):
    assert main(args(shards, tmp_path / "run", "--train-split", "pretrain_all")) == 2
    one_line_error(capsys, "'pretrain_all'", "available: pretrain, val")


def test_vocabulary_not_matching_preset(shards, tmp_path, capsys):
    argv = args(shards, tmp_path / "run")
    argv[argv.index("tiny")] = "bioscan5m-8-4-4"
    assert main(argv) == 2
    one_line_error(capsys, "preset 'bioscan5m-8-4-4'", "k=4 (model expects 8)")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_disk_too_small_before_training(shards, tmp_path, capsys, monkeypatch):
    class Usage:
        free = 1 << 20

    monkeypatch.setattr(loop_module.shutil, "disk_usage", lambda path: Usage)
    assert main(args(shards, tmp_path / "run")) == 2
    one_line_error(capsys, "not enough free disk space", "MiB free")


def test_disk_full_while_checkpointing(shards, tmp_path, capsys, monkeypatch):
    def no_space(obj, f):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", no_space)
    assert main(args(shards, tmp_path / "run")) == 2
    one_line_error(capsys, "no space left on the device", "checkpoint.pt")


def test_bad_setting(shards, tmp_path, capsys):
    assert main(args(shards, tmp_path / "run", "--grad-accum", "0")) == 2
    one_line_error(capsys, "grad_accum must be a positive int")
