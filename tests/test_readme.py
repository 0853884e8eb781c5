"""The README's quick-start and docs/data.md's example session run as written (so that they stay true)."""
import re
import shlex
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


def _example_session_script():
    import importlib.util

    path = README.parent / "docs" / "example_session.py"
    spec = importlib.util.spec_from_file_location("example_session", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_data_doc_session_is_what_the_generator_runs():
    gen = _example_session_script()
    documented = gen.documented_commands(gen.DOC.read_text())
    assert documented == [command for command, _ in gen.COMMANDS], (
        "docs/data.md's example session is stale: run `python docs/example_session.py`")
    block = gen.render([{"command": "bioscan-kmer x", "comment": "why", "output": "a\nb\n", "returncode": 0,
                         "seconds": 0.0}])
    assert gen.documented_commands(gen.replace_block(f"{gen.START}\nold\n{gen.END}\n", block)) == ["bioscan-kmer x"]


def test_data_doc_session_commands_run(tmp_path, monkeypatch, capsys):
    # Every documented command runs, on small inputs: fewer records, the demo without its
    # model (tests/test_data_cli.py runs that part), the shipped BOLD sample for the real file.
    from bioscan_kmer.cli import main

    gen = _example_session_script()
    sample = README.parent / "tests" / "data" / "bold_sample.tsv"
    monkeypatch.setenv("BIOSCAN_KMER_PROGRESS", "off")
    monkeypatch.chdir(tmp_path)
    for command in gen.documented_commands(gen.DOC.read_text()):
        small = re.sub(r"\bsynth \d+", "synth 3000", command)
        small = small.replace("../shared/data/bold_coi5p_insecta.tsv", str(sample))
        if " demo" in small:
            small += " --n 2000 --data-only"
        words = shlex.split(small)
        assert words[0] == "bioscan-kmer"
        assert main(words[1:]) == 0, (command, capsys.readouterr().err)
        assert capsys.readouterr().out.strip(), f"`{command}` printed nothing"
    assert (tmp_path / "shards").is_dir() and (tmp_path / "bold_clean.fasta").stat().st_size > 0


def test_two_commands_say_how_to_take_the_cpu_build_of_torch():
    section = re.search(r"## Two commands\n(.*?)\n## ", README.read_text(), re.S).group(1)
    # The two commands stay as they are; the CPU build is explained beside them (issue 13).
    assert 'pip install torch==2.13.0 && pip install ".[train,eval]" && bioscan-kmer demo --out demo_out' in section
    assert "    bash .ci/run" in section
    assert "--index-url https://download.pytorch.org/whl/cpu" in section and "CUDA" in section
