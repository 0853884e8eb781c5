"""SIGTERM and SIGUSR1 stop a run cleanly: a checkpoint after the current step, exit 128+n,
and a resumed run that computes what the uninterrupted one would have (issue 10 item 14)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import torch
import torch.multiprocessing as mp

import bioscan_kmer as bk
from bioscan_kmer.model import load_checkpoint
from bioscan_kmer.train import pretrain
from bioscan_kmer.train.preemption import StopSignals, Stopped
from bioscan_kmer.train.runlog import read_log

from model_synthetic import SignalAt, ddp_worker, free_port, synthetic_shards
from model_synthetic import one_torch_thread  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("preemption_shards")
    synthetic_shards(out, n_train=48, n_val=16, seed=3)
    return out


COMMON = dict(preset="tiny", device="cpu", threads=1, progress=False, seed=6, steps=10, batch_size=8,
              grad_accum=2, dropout=0.1, log_every=1, val_every=4, val_batches=1, ckpt_every=0)

# A separate process, so that the signal is a real one arriving in a real run; it sends the
# signal to itself after step 4 (from the on_step hook), which makes the stopping point
# deterministic: the run finishes the step under way (5) and stops.
STOPPED_RUN = textwrap.dedent("""
    import json, sys
    import torch
    torch.set_num_threads(1)
    from bioscan_kmer.train import pretrain
    sys.path.insert(0, sys.argv[3])
    from model_synthetic import SignalAt
    kw = json.loads(sys.argv[4])
    result = pretrain(sys.argv[1], sys.argv[2], on_step=SignalAt(4, int(sys.argv[5])), **kw)
    print(json.dumps({k: result[k] for k in ("steps", "total_steps", "stopped_by")}))
""")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_checkpoints_and_the_resumed_run_equals_the_uninterrupted_one(shards, tmp_path, signum):
    tests_dir = os.path.dirname(__file__)
    proc = subprocess.run([sys.executable, "-c", STOPPED_RUN, str(shards), str(tmp_path / "parts"), tests_dir,
                           json.dumps(COMMON), str(int(signum))], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary == {"steps": 5, "total_steps": 10, "stopped_by": signal.Signals(signum).name}
    # ckpt_every=0: without the handler there would be no checkpoint at all.
    assert load_checkpoint(tmp_path / "parts")["step"] == 5
    if signum != signal.SIGTERM:
        return  # the resumption does not depend on which signal stopped the run
    parts = pretrain(shards, tmp_path / "parts", resume=True, **COMMON)
    whole = pretrain(shards, tmp_path / "whole", **COMMON)
    assert parts["resumed_from"] == 5 and parts["steps"] == whole["steps"] == 10 and parts["stopped_by"] is None
    a, b = load_checkpoint(whole["checkpoint"]), load_checkpoint(parts["checkpoint"])
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    strip = lambda log: [(r["step"], r.get("loss"), r.get("val_loss")) for r in read_log(log)]  # noqa: E731
    assert strip(whole["log"]) == strip(parts["log"])


def test_cli_stops_on_an_outside_sigterm_with_exit_143(shards, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "bioscan_kmer.cli", "pretrain", "--data", str(shards), "--out", str(out),
           "--preset", "tiny", "--steps", "1000000", "--batch-size", "8", "--device", "cpu", "--threads", "1",
           "--log-every", "1", "--ckpt-every", "0", "--val-split", "none", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        log = out / "log.jsonl"
        # Wait for training to be under way (a million steps never end on their own).
        while proc.poll() is None and not (log.is_file() and any("loss" in r for r in read_log(log))):
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    state = load_checkpoint(out)
    lines = stderr.strip().splitlines()
    assert lines[-1] == (f"bioscan-kmer pretrain: stopped by SIGTERM after step {state['step']:,} of 1,000,000; "
                         f"checkpoint {out / 'checkpoint.pt'}; rerun the same command with --resume to continue")
    assert "Traceback" not in stderr and state["step"] >= 1
    assert not [p.name for p in out.iterdir() if ".tmp-" in p.name]


def test_signal_before_training_cancels_a_long_native_call():
    """During setup the handler raises, and the core stops a long call on any exception a
    handler raises (as on Ctrl-C, docs/hardening.md): the signal is not held until the
    call ends, and the next call works."""
    seqs = ["ACGTN" * 200] * 2_000_000
    timer = threading.Timer(0.1, os.kill, args=(os.getpid(), signal.SIGTERM))
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as stop:
        timer.start()
        try:
            with pytest.raises(Stopped, match="stopped by SIGTERM before training started") as info:
                bk.tokenize(seqs, k=4, max_len=1000)
        finally:
            timer.join()
    assert info.value.signum == signal.SIGTERM and stop.name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before  # the previous handler is back
    assert bk.clean(["acgu"]) == ["ACGT"]


def test_ddp_processes_stop_after_the_same_step_when_one_is_signalled(shards, tmp_path):
    """Only rank 1 gets SIGTERM (after step 3); both ranks agree to stop after step 4, write
    one checkpoint and end (no process is left waiting in a collective)."""
    common = dict(data=str(shards), out_dir=str(tmp_path / "two"), **{**COMMON, "batch_size": 4},
                  on_step=SignalAt(3, signal.SIGTERM, rank=1))
    mp.spawn(ddp_worker, args=(2, free_port(), common, str(tmp_path / "result")), nprocs=2, join=True)
    state = load_checkpoint(tmp_path / "two")
    assert state["step"] == 4 and state["world_size"] == 2
    # Rank 0, which got no signal, also reports why the run stopped.
    for rank in (0, 1):
        result = json.loads((tmp_path / f"result.{rank}").read_text())
        assert (result["steps"], result["stopped_by"]) == (4, "SIGTERM"), rank
