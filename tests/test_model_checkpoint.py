"""Atomic checkpoints: a write killed half-way leaves the previous one loadable."""

import errno
import subprocess
import sys
import textwrap

import pytest
import torch

from bioscan_kmer.model import (CheckpointError, DiskFullError, MaskedLM, get_preset, load_checkpoint,
                                load_model, save_checkpoint)
from bioscan_kmer.model.hf import load_pretrained
from bioscan_kmer.model import checkpoint as checkpoint_module
from model_synthetic import one_torch_thread  # noqa: F401 (autouse fixture)


def make_state(seed):
    torch.manual_seed(seed)
    config = get_preset("tiny")
    model = MaskedLM(config)
    return model, {"model": model.state_dict(), "config": config.to_dict(), "step": seed}


def test_round_trip_and_load_model(tmp_path):
    model, state = make_state(1)
    path = save_checkpoint(tmp_path / "run" / "checkpoint.pt", state)
    loaded = load_checkpoint(path)
    assert loaded["step"] == 1
    for k, v in model.state_dict().items():
        assert torch.equal(loaded["model"][k], v)
    rebuilt = load_model(tmp_path / "run")  # a run directory works too
    assert not rebuilt.training
    ids = torch.randint(5, 261, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(ids)[0], model.eval()(ids)[0])
    encoder = load_model(path, encoder_only=True)
    assert encoder.embed(ids).shape == (2, 64)


KILLER = textwrap.dedent("""
    import io, os, signal, sys
    import torch
    from bioscan_kmer.model import MaskedLM, get_preset, save_checkpoint

    real_save = torch.save

    def dying_save(obj, f):
        # Serialise fully, write half of the bytes, then die as a killed job would.
        buf = io.BytesIO()
        real_save(obj, buf)
        data = buf.getvalue()
        f.write(data[: len(data) // 2])
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    torch.save = dying_save
    torch.manual_seed(2)
    config = get_preset("tiny")
    save_checkpoint(sys.argv[1], {"model": MaskedLM(config).state_dict(), "config": config.to_dict(), "step": 2})
""")


def test_write_killed_half_way_leaves_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    model, state = make_state(1)
    save_checkpoint(path, state)
    before = path.read_bytes()
    proc = subprocess.run([sys.executable, "-c", KILLER, str(path)], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()
    # The killed writer left its half file beside the checkpoint, never in its place.
    strays = [p for p in tmp_path.iterdir() if p.name.startswith(".checkpoint.pt.tmp-")]
    assert len(strays) == 1 and 0 < strays[0].stat().st_size < len(before)
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(strays[0])
    assert path.read_bytes() == before
    loaded = load_checkpoint(path)
    assert loaded["step"] == 1
    for k, v in model.state_dict().items():
        assert torch.equal(loaded["model"][k], v)


def test_full_disk_raises_and_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    _, state = make_state(1)
    save_checkpoint(path, state)
    before = path.read_bytes()

    def no_space(obj, f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", no_space)
    with pytest.raises(DiskFullError, match="no space left on the device writing checkpoint"):
        save_checkpoint(path, make_state(2)[1])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # temp file removed


def test_foreign_and_missing_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a bioscan-kmer checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="is not a checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="'model' and 'config'"):
        save_checkpoint(tmp_path / "x.pt", {"model": {}})


def _png(path):
    from matplotlib.figure import Figure

    Figure(figsize=(1, 1)).savefig(path, format="png")
    return path


@pytest.mark.parametrize("loader", [load_checkpoint, load_model, lambda p: load_pretrained(p)])
def test_a_picture_is_not_a_checkpoint_in_one_line(tmp_path, loader):
    """Issue 13 item 7: torch's weights_only advice (which suggests the unsafe load) must not
    reach the user; one line says what the file is not."""
    path = _png(tmp_path / "loss.png")
    with pytest.raises(CheckpointError) as info:
        loader(path)
    message = str(info.value)
    assert message == f"{path} is not a checkpoint (not a file written by torch.save)"
    assert "weights_only" not in message and "\n" not in message


class _Payload:
    pass


def test_checkpoints_never_unpickle_code(tmp_path):
    # weights_only loading refuses arbitrary objects instead of executing their pickle.
    _, state = make_state(1)
    save_checkpoint(tmp_path / "c.pt", {**state, "extra": _Payload()})
    with pytest.raises(CheckpointError, match=r"holds pickled Python objects \(.*_Payload\) besides "
                                              r"tensors; refusing to unpickle them") as info:
        load_checkpoint(tmp_path / "c.pt")
    assert "\n" not in str(info.value) and "weights_only" not in str(info.value)


def test_weights_that_do_not_fit_the_config_are_named_not_a_runtime_error(tmp_path):
    """Issue 10 item 10: mismatched shapes were a RuntimeError from load_state_dict."""
    model, state = make_state(1)
    state["config"] = {**state["config"], "intermediate_size": 128}
    path = save_checkpoint(tmp_path / "c.pt", state)
    with pytest.raises(CheckpointError, match=r"blocks\.0\.ffn_in\.weight has shape \(256, 64\), "
                                              r"the configuration needs \(128, 64\)"):
        load_model(path)
    _, state = make_state(1)
    del state["model"]["head.proj.bias"]
    with pytest.raises(CheckpointError, match="missing head.proj.bias"):
        load_model(save_checkpoint(tmp_path / "d.pt", state))
    _, state = make_state(1)
    state["config"] = {**state["config"], "hidden_size": "wide"}
    with pytest.raises(CheckpointError, match="unreadable model configuration"):
        load_model(save_checkpoint(tmp_path / "e.pt", state))


HUGE = textwrap.dedent("""
    import resource, sys
    # 4 GiB of address space: a model of 51 GB cannot even be attempted quietly.
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    from bioscan_kmer.model import CheckpointError, load_model
    try:
        load_model(sys.argv[1])
    except CheckpointError as exc:
        print("refused:", exc)
""")


def test_a_config_asking_for_51_gb_is_refused_before_allocating(tmp_path):
    """Issue 10 item 10: the configuration was allocated before any shape check; here it
    asks for a 200M-row embedding (51 GB) while the weights are the tiny model's."""
    _, state = make_state(1)
    state["config"] = {**state["config"], "vocab_size": 200_000_000}
    path = save_checkpoint(tmp_path / "huge.pt", state)
    proc = subprocess.run([sys.executable, "-c", HUGE, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "refused:" in proc.stdout and "embeddings.tokens.weight has shape (261, 64), the " \
        "configuration needs (200000000, 64)" in proc.stdout
