"""Progress output: a tqdm bar on a terminal only, plain lines in logs and pipes."""

import io
import subprocess
import sys

import pytest

from bioscan_kmer._progress import LineProgress, progress_bar


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_a_bar_and_a_file_gets_lines(monkeypatch):
    monkeypatch.delenv("BIOSCAN_KMER_PROGRESS", raising=False)
    from tqdm import tqdm

    bar = progress_bar(total=3, file=_Tty(), desc="x")
    assert isinstance(bar, tqdm)
    bar.close()
    lines = progress_bar(total=3, file=io.StringIO(), desc="x")
    assert isinstance(lines, LineProgress)


def test_lines_have_no_carriage_returns_and_end_with_the_total(monkeypatch):
    monkeypatch.delenv("BIOSCAN_KMER_PROGRESS", raising=False)
    out = io.StringIO()
    for _ in progress_bar(range(1000), file=out, desc="clean", unit="seq", every=0.0):
        pass
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    # At most about 20 lines for the run, the last one at 100%.
    assert 2 <= len(lines) <= 21
    assert lines[-1].startswith("clean: 1,000/1,000 seq (100%)")


def test_lines_are_throttled_in_time():
    out = io.StringIO()
    bar = LineProgress(total=10_000, file=out, every=3600.0, lines=10_000)
    for _ in range(10_000):
        bar.update()
    bar.close()
    # The first update writes, then nothing for an hour, then the closing line.
    assert len(out.getvalue().splitlines()) == 2


def test_postfix_and_disable():
    out = io.StringIO()
    bar = LineProgress(total=2, file=out, every=0.0, desc="pretrain", unit="step")
    bar.set_postfix(loss="1.25")
    bar.update(2)
    bar.close()
    assert out.getvalue().strip().endswith("[loss=1.25]")
    quiet = io.StringIO()
    off = LineProgress(total=2, file=quiet, every=0.0, disable=True)
    off.update(2)
    off.close()
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("mode, expected", [("bar", "tqdm"), ("lines", "LineProgress")])
def test_the_environment_chooses(monkeypatch, mode, expected):
    monkeypatch.setenv("BIOSCAN_KMER_PROGRESS", mode)
    bar = progress_bar(total=1, file=io.StringIO())
    assert type(bar).__name__ == expected
    bar.close()


def test_off_silences_and_a_bad_mode_is_named(monkeypatch):
    monkeypatch.setenv("BIOSCAN_KMER_PROGRESS", "off")
    out = io.StringIO()
    bar = progress_bar(total=1, file=out, every=0.0)
    bar.update()
    bar.close()
    assert out.getvalue() == ""
    monkeypatch.setenv("BIOSCAN_KMER_PROGRESS", "sometimes")
    with pytest.raises(ValueError, match="BIOSCAN_KMER_PROGRESS"):
        progress_bar(total=1)


def test_the_command_line_writes_no_bar_into_a_pipe(tmp_path):
    env_free = {k: v for k, v in __import__("os").environ.items() if k != "BIOSCAN_KMER_PROGRESS"}
    meta = tmp_path / "m.csv"
    subprocess.run([sys.executable, "-m", "bioscan_kmer.cli", "synth", "300", "-o", str(meta)],
                   check=True, capture_output=True, env=env_free)
    proc = subprocess.run([sys.executable, "-m", "bioscan_kmer.cli", "clean", str(meta), "-o",
                           str(tmp_path / "c.csv")], capture_output=True, text=True, env=env_free)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    assert "clean: 300/300 seq (100%)" in proc.stderr
