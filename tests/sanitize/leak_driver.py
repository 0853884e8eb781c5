"""Every entry point, its error paths and its cancellation, for LeakSanitizer.

Run by tests/sanitize.sh leaks under the ASan build with leak detection on; any
leaked block allocated under bioscan_kmer._core is reported at exit.
"""
import os
import signal
import threading

import numpy as np
import pyarrow as pa

import bioscan_kmer as bk


def main():
    rng = np.random.default_rng(1)
    seqs = ["".join(rng.choice(list("ACGTNRY-acgt"), size=int(rng.integers(0, 300)))) for _ in range(3000)]
    for container in (seqs, np.array(seqs), np.array([s.encode() for s in seqs]), pa.array(seqs)):
        cleaned = bk.clean(container)
        bk.tokenize(container, k=4, threads=3)
        bk.tokenize(cleaned, k=5, preset="bert", padding=False, offset=np.arange(len(seqs)) % 5, threads=2)
        bk.unique(container, threads=3)
        bk.kmer_counts(container, k=3, threads=2)
        bk.kmer_counts(container, k=7, per_sequence=False, threads=2)
    bk.grouped_shannon(np.arange(3000) % 7, np.arange(3000) % 11, threads=2)
    bk.shannon([1, 2, 3, 0])
    tok = bk.KmerTokenizer(k=4)
    tok(seqs[:10], return_tensors="np")
    # Error paths: exceptions thrown from worker threads and from the glue.
    for bad in (seqs[:100] + ["ACGT!"], ["ACGT", None], ["ACGT", "é"]):
        for fn in (bk.clean, bk.unique, lambda s: bk.tokenize(s, k=4)):
            try:
                fn(bad)
            except (ValueError, TypeError):
                pass
    for kwargs in ({"iupac": "error"},):
        try:
            bk.clean(seqs, **kwargs, threads=3)
        except ValueError:
            pass
    # Cancellation: the outputs allocated before the interrupt must be freed.
    big = seqs * 200
    for delay in (0.05, 0.3):
        timer = threading.Timer(delay, os.kill, args=(os.getpid(), signal.SIGINT))
        timer.start()
        try:
            bk.kmer_counts(big, k=3, threads=2)
            bk.clean(big, threads=2)
        except KeyboardInterrupt:
            pass
        timer.join()
    print("leak driver: done")


if __name__ == "__main__":
    main()
