"""`bioscan-kmer pretrain`: a run, and one-line errors with exit code 2."""

import errno

import pytest

from bioscan_kmer.cli import main
from bioscan_kmer.model import load_checkpoint
from bioscan_kmer.model import checkpoint as checkpoint_module
from bioscan_kmer.train import loop as loop_module

from model_synthetic import synthetic_shards
from model_synthetic import one_torch_thread  # noqa: F401 (autouse fixture)


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


def test_resume_from_a_checkpoint_without_training_state(shards, tmp_path, capsys):
    """Issue 10 item 10: a model-only checkpoint (no train_config, rng, ...) was a KeyError."""
    from bioscan_kmer.model import MaskedLM, get_preset, save_checkpoint

    config = get_preset("tiny").with_tokenizer(__import__("bioscan_kmer").KmerTokenizer(k=4, preset="barcodebert"))
    save_checkpoint(tmp_path / "run" / "checkpoint.pt",
                    {"model": MaskedLM(config).state_dict(), "config": config.to_dict()})
    assert main(args(shards, tmp_path / "run", "--resume")) == 2
    one_line_error(capsys, "checkpoint.pt cannot be resumed: it lacks train_config, optimizer, scheduler, rng")
    # A training checkpoint from before the recipes (another schedule class).
    assert main(args(shards, tmp_path / "old")) == 0
    capsys.readouterr()
    state = load_checkpoint(tmp_path / "old")
    del state["train_config"]["recipe"]
    save_checkpoint(tmp_path / "old" / "checkpoint.pt", {k: v for k, v in state.items() if k != "format"})
    assert main(args(shards, tmp_path / "old", "--resume")) == 2
    one_line_error(capsys, "written by an older bioscan-kmer", "start a new run")
    # A file that is not a checkpoint at all, in one line too.
    (tmp_path / "run" / "checkpoint.pt").write_text("not torch")
    assert main(args(shards, tmp_path / "run", "--resume")) == 2
    one_line_error(capsys, "is not a checkpoint")


def test_internal_errors_keep_their_traceback(shards, tmp_path, monkeypatch):
    """Issue 10 item 11: every ValueError/TypeError used to become exit 2 and one line, bugs
    included. Only the project's user-error types do now."""
    def bug(self, stop=None):
        raise ValueError("an internal bug, not the user's mistake")

    from bioscan_kmer.train.cli import main as pretrain_main  # `pretrain` alone, without cli.py's net

    monkeypatch.setattr(loop_module.Trainer, "run", bug)
    with pytest.raises(ValueError, match="internal bug"):
        pretrain_main(args(shards, tmp_path / "run")[1:])
    monkeypatch.setattr(loop_module.Trainer, "run", lambda self, stop=None: len(None))
    with pytest.raises(TypeError):
        pretrain_main(args(shards, tmp_path / "run2")[1:])


def test_every_option_has_help():
    import argparse

    from bioscan_kmer.train.cli import _add_arguments

    parser = argparse.ArgumentParser()
    _add_arguments(parser)
    bare = [a.option_strings[0] for a in parser._actions if not a.help and a.option_strings]
    assert bare == []
    text = parser.format_help()
    assert "--seed SEED" in text and "seed of initialisation" in text


def test_preset_defaults_and_printed_settings(shards, tmp_path, capsys):
    """Issue 13 item 2: tiny trains with the demo's settings unless told otherwise, and the
    run says which settings it used."""
    argv = ["pretrain", "--data", str(shards), "--preset", "tiny", "--steps", "2", "--out", str(tmp_path / "r"),
            "--device", "cpu", "--threads", "1", "--val-split", "none"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    start = [line for line in captured.err.splitlines() if line.startswith("pretrain: preset tiny")]
    assert len(start) == 1
    for part in ("recipe demo", "2 steps", "batch 32 x 1 x 1 process = 32", "lr 0.003", "clip 1",
                 "(fp32 on cpu)"):
        assert part in start[0], (part, start[0])
    assert "settings: preset tiny, recipe demo" in captured.out
    assert main(argv[:-6] + ["--out", str(tmp_path / "s"), "--batch-size", "8", "--lr", "1e-3",
                             "--recipe", "barcodebert", "--device", "cpu", "--no-progress",
                             "--val-split", "none"]) == 0
    out = capsys.readouterr().out
    assert "recipe barcodebert: 2 steps, batch 8" in out and "lr 0.001" in out and "no clipping" in out


def test_training_and_checkpoint_errors_are_user_errors():
    # The one mechanism of bioscan_kmer.errors decides what `bioscan-kmer` reports in one
    # line: the model layer's own error types must be part of it, or `evaluate` with a bad
    # checkpoint would print a traceback through the top-level command.
    from bioscan_kmer.errors import is_user_error
    from bioscan_kmer.model.checkpoint import CheckpointError
    from bioscan_kmer.model.config import ConfigError

    assert is_user_error(CheckpointError("x")) and is_user_error(ConfigError("x"))
    assert not is_user_error(ValueError("a bug"))
