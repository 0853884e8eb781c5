"""Atomic checkpoints: a write killed half-way leaves the previous one loadable."""

import errno
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from bioscan_kmer.model import (DiskFullError, MaskedLM, get_preset, load_checkpoint, load_model,
                                save_checkpoint)
from bioscan_kmer.model import checkpoint as checkpoint_module
from model_synthetic import torch_threads


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # One thread: tiny models gain nothing from more, and the count is process-wide.
    with torch_threads(1):
        yield


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
    with pytest.raises(ValueError, match="not a bioscan-kmer checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="'model' and 'config'"):
        save_checkpoint(tmp_path / "x.pt", {"model": {}})


class _Payload:
    pass


def test_checkpoints_never_unpickle_code(tmp_path):
    # weights_only loading refuses arbitrary objects instead of executing their pickle.
    _, state = make_state(1)
    save_checkpoint(tmp_path / "c.pt", {**state, "extra": _Payload()})
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "c.pt")
