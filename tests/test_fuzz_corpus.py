"""Replay the fuzz corpus (tests/fuzz/corpus) through native vs reference.

Every file is an input that once added coverage or reproduced a bug found by the
fuzzers of tests/fuzz/; each must still decode to a call whose result (or error,
and the row it names) matches the pure-Python reference.
"""
from pathlib import Path

import pytest

from fuzz import targets

CORPUS = Path(__file__).parent / "fuzz" / "corpus"


@pytest.mark.parametrize("target", sorted(targets.TARGETS))
def test_corpus_replays_against_the_reference(target):
    files = sorted(p for p in (CORPUS / target).iterdir() if p.is_file())
    # An empty corpus would make this test pass without checking anything.
    assert len(files) >= 5, f"corpus of {target} is missing"
    check = targets.TARGETS[target]
    failures = []
    for path in files:
        try:
            check(path.read_bytes())
        except AssertionError as e:
            failures.append(f"{path.name}: {str(e)[:300]}")
    assert not failures, f"{len(failures)} of {len(files)} corpus inputs differ:\n" + "\n".join(failures[:10])


def test_a_known_difference_is_caught():
    # The oracle must be able to fail: a NumPy bytes array whose row holds a NUL was
    # once cut at that NUL by the bindings (NumPy keeps it). Check that the decoder
    # produces that input and the target compares it byte for byte.
    reader_bytes = bytes([1, targets.CONTAINERS.index("numpy_S"), 1]) + bytes(
        [targets.ALPHABET.index(c) for c in "AC\x00GT"])
    kind_seqs, rows = targets.as_container(["AC\x00GT"], "numpy_S")
    assert rows == ["AC\x00GT"]
    targets.check_unique(reader_bytes)
    with pytest.raises(AssertionError):
        targets._expect_non_ascii(lambda: None, ["ok", "\xe9"])
