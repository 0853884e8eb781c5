"""The README's quick-start runs as written (so that it stays true)."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def test_quick_start_snippet_runs():
    if not README.exists():  # the tests were copied without the checkout
        pytest.fail(f"{README} not found")
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)
    assert scope["ids"].shape == (2, 165) and scope["batch"]["input_ids"].shape == (2, 82)
    assert scope["seqs"][1] == "ACTTTATATTTTNTTTTTGGAGC"


def _command_line_session() -> list[str]:
    """The ``$ bioscan-kmer ...`` lines of the README's command-line session."""
    block = re.search(r"## Command line.*?```console\n(.*?)```", README.read_text(), re.S).group(1)
    return [line[2:].split("#")[0].strip() for line in block.splitlines() if line.startswith("$ ")]


def test_session_outputs_are_ignored_by_git():
    # Run in the checkout, the session must not leave untracked files behind (issue 13).
    import shlex
    import subprocess

    outputs = []
    for command in _command_line_session():
        words = shlex.split(command)
        outputs += [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-o", "--output", "--out", "--out-dir")]
    assert {"meta.csv", "shards/", "run/", "eval/"} <= set(outputs), outputs
    root = README.parent
    if not (root / ".git").exists():
        pytest.fail(f"{root} is not a git checkout; this test checks its .gitignore")
    for path in outputs:
        probe = path.rstrip("/") + ("/x" if path.endswith("/") else "")
        done = subprocess.run(["git", "check-ignore", "-q", "--no-index", probe], cwd=root)
        assert done.returncode == 0, f"{path} (an output of the README session) is not in .gitignore"
