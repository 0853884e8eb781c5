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
