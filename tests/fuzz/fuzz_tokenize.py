#!/usr/bin/env python3
"""Coverage-guided differential fuzzing of bioscan_kmer.tokenize (both presets, strides, offsets, padding) against kmer_reference.tokenize_*.

    python tests/fuzz/fuzz_tokenize.py -max_total_time=60 tests/fuzz/corpus/tokenize

Any difference or crash stops the run and writes the input to crash-*; replay it with
``python -c "from fuzz.targets import check_tokenize; check_tokenize(open('crash-...','rb').read())"``
(from tests/). tests/fuzz/run.sh runs every target for a bounded time.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import main  # noqa: E402

if __name__ == "__main__":
    main("tokenize")
