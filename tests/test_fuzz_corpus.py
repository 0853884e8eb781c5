"""Replay the fuzz corpus (tests/fuzz/corpus) through native vs reference.

Every file is an input that once added coverage or reproduced a bug found by the
fuzzers of tests/fuzz/; each must still decode to a call whose result (or error,
and the row it names) matches the pure-Python reference.
"""
import os
import subprocess
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


@pytest.mark.parametrize("fails", [False, True])
def test_fuzz_run_removes_its_work_dir_unless_a_target_fails(tmp_path, fails):
    # .ci/run left a /tmp/bk-fuzz.* directory behind on every run. A stand-in python
    # plays the fuzzers: all pass (nothing may be left), or each reports a mismatch
    # (the directory stays, with the logs, and its path is printed).
    bin_dir, tmp = tmp_path / "bin", tmp_path / "tmp"
    bin_dir.mkdir()
    tmp.mkdir()
    fake = bin_dir / "python"
    fake.write_text("#!/bin/sh\n" + ("echo mismatch; exit 1\n" if fails else "echo '#9 DONE'\n"))
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "TMPDIR": str(tmp)}
    run_sh = Path(__file__).parent / "fuzz" / "run.sh"
    out = subprocess.run(["bash", str(run_sh), "1"], env=env, capture_output=True, text=True, timeout=60)
    left = list(tmp.iterdir())
    if fails:
        assert out.returncode == 1 and len(left) == 1 and left[0].name.startswith("bk-fuzz.")
        assert f"failures kept in {left[0]}" in out.stdout
        assert (left[0] / "unique.log").read_text() == "mismatch\n"
    else:
        assert out.returncode == 0, out.stdout + out.stderr
        assert "#9 DONE" in out.stdout and left == []
