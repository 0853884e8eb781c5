"""Synthetic barcodes with structure, for the model and training tests.

A handful of random "species" templates; every sequence is a template with a few point
mutations, a random length and sometimes an N. A masked-LM can learn these quickly (a k-mer
is predictable from its neighbours once the template is recognised), so a falling loss
means the model and the loop work.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from bioscan_kmer import KmerTokenizer


def species_sequences(n: int, *, n_species: int = 6, length: int = 160, mutation_rate: float = 0.02,
                      seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    alphabet = np.array(list("ACGT"))
    templates = rng.integers(0, 4, size=(n_species, length))
    out = []
    for _ in range(n):
        seq = templates[rng.integers(n_species)].copy()
        hits = rng.random(length) < mutation_rate
        seq[hits] = rng.integers(0, 4, size=int(hits.sum()))
        chars = alphabet[seq]
        if rng.random() < 0.1:
            chars[rng.integers(length)] = "N"
        cut = length - int(rng.integers(0, length // 8))
        out.append("".join(chars[:cut]))
    return out


def synthetic_shards(out_dir, *, n_train: int = 512, n_val: int = 64, preset: str = "bert", k: int = 4,
                     max_len: int = 160, seed: int = 0):
    """Write pretrain + val shards of species sequences; return the tokenizer."""
    from bioscan_kmer.data.shards import write_shards

    tok = KmerTokenizer(k=k, max_len=max_len, preset=preset)
    seqs = species_sequences(n_train + n_val, length=max_len, seed=seed)
    write_shards(out_dir, {"pretrain": seqs[:n_train], "val": seqs[n_train:]}, tok)
    return tok


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_worker(rank: int, world_size: int, port: int, kwargs: dict, result_path: str | None = None) -> None:
    """Entry point of one process of a gloo DDP test run (spawned; must be importable).

    Checks that ``pretrain`` left the process group and freed its DDP wrapper, then ends
    the process with ``os._exit``: what the test covers is done, and the interpreter's
    shutdown (c10d's and gloo's static destructors, in an order torch decides) is not
    ours to test. A crash before that point still fails the test, and faulthandler then
    prints every thread's Python stack to the captured stderr. With ``result_path``, each
    rank writes its result's ``steps`` and ``stopped_by`` to ``<result_path>.<rank>``.
    """
    import faulthandler
    import gc
    import os
    import sys

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    faulthandler.enable(all_threads=True)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from bioscan_kmer.train import pretrain

    result = pretrain(**kwargs)
    if result_path is not None:
        import json

        with open(f"{result_path}.{rank}", "w") as f:
            json.dump({k: result[k] for k in ("steps", "stopped_by")}, f)
    assert not dist.is_initialized(), f"rank {rank}: pretrain() did not leave the process group"
    alive = [o for o in gc.get_objects() if isinstance(o, DistributedDataParallel)]
    assert not alive, f"rank {rank}: {len(alive)} DDP module(s) outlive pretrain()"
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@contextlib.contextmanager
def torch_threads(n: int):
    """Run with ``n`` torch threads, then restore the previous count (it is process-wide)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SignalAt:
    """``on_step`` hook that sends this process ``signum`` after optimizer step ``step``
    (on rank ``rank`` only, under DDP): a real signal at a known point of a run.
    A class, so that it pickles into spawned processes."""

    def __init__(self, step: int, signum: int, rank: int = 0) -> None:
        self.step, self.signum, self.rank = step, signum, rank

    def __call__(self, step: int, info: dict) -> None:
        import os

        if step == self.step and int(os.environ.get("RANK", "0")) == self.rank:
            os.kill(os.getpid(), self.signum)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One torch thread for a whole test module (import this fixture to use it): the tiny
    models gain nothing from more, and the count is process-wide."""
    with torch_threads(1):
        yield
