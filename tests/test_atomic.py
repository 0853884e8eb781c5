"""The shared atomic-write helper: all or nothing, no stray temporary files."""
import pytest

from bioscan_kmer._atomic import replacing


def test_success_replaces_and_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old")
    with replacing(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".csv" and tmp != target
        tmp.write_text("new")
    assert target.read_text() == "new"
    with pytest.raises(KeyboardInterrupt):
        with replacing(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def _dead_pid():
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_killed_runs_are_removed_on_the_next_write(tmp_path):
    import os
    import time

    from bioscan_kmer import _atomic

    dead = _dead_pid()
    old = time.time() - 2 * _atomic.STALE_AFTER_S
    stale = [tmp_path / f".table.csv.tmp-{dead}.csv", tmp_path / f".checkpoint.pt.tmp-{dead}",
             tmp_path / f".part.ids.bin.tmp-{dead}.bin"]
    kept = [
        tmp_path / f".fresh.csv.tmp-{dead}.csv",          # too recent: a writer elsewhere may own it
        tmp_path / f".mine.csv.tmp-{os.getpid()}.csv",    # ours
        tmp_path / f".live.csv.tmp-{os.getppid()}.csv",   # a live process
        tmp_path / f".odd.csv.tmp-{dead}.txt",            # suffix does not match the name
        tmp_path / ".hidden",
        tmp_path / "data.tmp-1",
    ]
    for p in stale + kept:
        p.write_text("x")
        if p.name != f".fresh.csv.tmp-{dead}.csv":
            os.utime(p, (old, old))
    with replacing(tmp_path / "new.csv") as tmp:
        tmp.write_text("new")
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {p.name for p in kept} | {"new.csv"}
    # Once per directory and process: a later write does not scan again.
    (tmp_path / f".again.csv.tmp-{dead}.csv").write_text("x")
    os.utime(tmp_path / f".again.csv.tmp-{dead}.csv", (old, old))
    with replacing(tmp_path / "new.csv") as tmp:
        tmp.write_text("newer")
    assert (tmp_path / f".again.csv.tmp-{dead}.csv").exists()
    assert _atomic.remove_stale_temporaries(tmp_path) == [tmp_path / f".again.csv.tmp-{dead}.csv"]


def test_check_output_path(tmp_path):
    from bioscan_kmer._atomic import check_output_path
    from bioscan_kmer.errors import UsageError

    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    assert check_output_path(tmp_path / "new" / "deeper" / "x.csv") == tmp_path / "new" / "deeper" / "x.csv"
    assert check_output_path(tmp_path / "f") == tmp_path / "f"  # replaced
    check_output_path(tmp_path / "d", directory=True)
    with pytest.raises(UsageError, match="is a file, not a directory"):
        check_output_path(tmp_path / "f" / "x.csv", what="-o")
    with pytest.raises(UsageError, match="is a directory"):
        check_output_path(tmp_path / "d")
    with pytest.raises(UsageError, match="-o '.*f' exists and is not a directory"):
        check_output_path(tmp_path / "f", directory=True, what="-o")


def test_a_write_under_a_file_fails_cleanly(tmp_path):
    # The writer's own error comes out, not a second one from removing the temporary.
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError) as excinfo:
        with replacing(tmp_path / "f" / "x.csv") as tmp:
            tmp.write_text("y")
    assert excinfo.value.__context__ is None
