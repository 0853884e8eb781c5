"""Exercise every threaded path of the core, for ThreadSanitizer (tests/sanitize.sh tsan).

Each entry point runs at 1, 2, 4 and 8 threads on inputs large enough to start them
all, and must give the same result every time; then two Python threads call the core
at once, and a long call is cancelled by SIGINT. TSan reports (and halts on) any data
race in our own threads; the assertions catch any result that depends on timing.
"""
import os
import signal
import threading
import time

import numpy as np

import bioscan_kmer as bk


def make_inputs(n=6000):
    rng = np.random.default_rng(0)
    letters = np.frombuffer(b"ACGTACGTACGTNRacgt-", dtype=np.uint8)
    seqs = []
    for i in range(n):
        row = letters[rng.integers(0, len(letters), size=int(rng.integers(0, 700)))].tobytes().decode()
        seqs.append(row)
    seqs += seqs[: n // 3]  # duplicates for unique
    return seqs


def same(a, b):
    if isinstance(a, tuple):
        return all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    return a == b


def main():
    seqs = make_inputs()
    cleaned = bk.clean(seqs)
    groups = np.arange(len(seqs)) % 97
    items = bk.unique(cleaned)[1]
    calls = {
        "clean": lambda t: bk.clean(seqs, threads=t),
        "tokenize": lambda t: bk.tokenize(seqs, k=4, threads=t),
        "tokenize_offsets": lambda t: bk.tokenize(cleaned, k=3, stride=2, n_nucleotide=True,
                                                  offset=np.arange(len(cleaned)) % 3, threads=t),
        "unique": lambda t: bk.unique(cleaned, threads=t)[1:],
        "kmer_counts": lambda t: bk.kmer_counts(cleaned, k=3, threads=t),
        "kmer_total": lambda t: bk.kmer_counts(cleaned, k=6, per_sequence=False, threads=t),
        "grouped_shannon": lambda t: bk.grouped_shannon(groups, items, threads=t)[1],
    }
    for name, fn in calls.items():
        base = fn(1)
        for t in (2, 4, 8):
            assert same(fn(t), base), f"{name}: threads={t} differs from threads=1"
        print(f"tsan: {name} ok at 1/2/4/8 threads", flush=True)

    # Two Python threads in the core at once, sharing the input.
    errors = []

    def worker(name):
        try:
            for _ in range(3):
                assert same(calls[name](4), calls[name](1))
        except BaseException as e:  # reported below, on the main thread
            errors.append((name, e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("unique", "tokenize", "clean")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    print("tsan: concurrent calls ok", flush=True)

    # Cancellation: SIGINT while the workers run sets the flag they poll.
    big = cleaned * 60
    for delay in (0.05, 0.2):
        timer = threading.Timer(delay, os.kill, args=(os.getpid(), signal.SIGINT))
        timer.start()
        t0 = time.perf_counter()
        try:
            bk.kmer_counts(big, k=8, per_sequence=False, threads=4)
            bk.unique(big * 3, threads=4)
        except KeyboardInterrupt:
            print(f"tsan: cancelled after {time.perf_counter() - t0:.2f}s", flush=True)
        timer.join()
    print("tsan driver: OK")


if __name__ == "__main__":
    main()
