"""atheris entry for the targets of targets.py; used by the fuzz_<target>.py scripts."""
from __future__ import annotations

import os
import sys

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(name: str) -> None:
    """Fuzz one target; command line as libFuzzer's (``-max_total_time=60 CORPUS_DIR``)."""
    import atheris

    sys.path.insert(0, TESTS)
    # Python-level coverage of our package and the references; the native code is
    # instrumented only in the clang build of tests/fuzz/run.sh --native.
    with atheris.instrument_imports(include=["bioscan_kmer", "kmer_reference", "fuzz"]):
        from fuzz import targets

    check = targets.TARGETS[name]
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()
