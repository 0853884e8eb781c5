"""The bioscan-kmer command line: every sub-command, resume, and one-line errors."""

import subprocess
import sys
import types

import pytest

from bioscan_kmer import cli
from bioscan_kmer.data.reading import read_metadata
from bioscan_kmer.data.shards import open_shard, read_manifest


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_pipeline_synth_stats_split_clean_prepare(tmp_path, capsys):
    meta = tmp_path / "meta.csv"
    code, out, _ = run(capsys, "synth", "4000", "-o", str(meta), "--seed", "2")
    assert code == 0 and "4,000" in out
    df = read_metadata(meta)
    assert len(df) == 4000

    code, out, _ = run(capsys, "stats", str(meta), "--out-dir", str(tmp_path / "st"))
    assert code == 0 and out.splitlines()[0].startswith("Rank")
    assert (tmp_path / "st" / "statistics.md").exists() and (tmp_path / "st" / "category_sizes.png").exists()

    code, out, _ = run(capsys, "split", str(meta), "-o", str(tmp_path / "split.csv"), "--seed", "4", "-q")
    assert code == 0 and "key_unseen" in out
    assert read_metadata(tmp_path / "split.csv", columns=["split"])["split"].notna().all()

    code, out, _ = run(capsys, "clean", str(meta), "-o", str(tmp_path / "clean.csv"), "-q")
    assert code == 0
    cleaned = read_metadata(tmp_path / "clean.csv", columns=["dna_barcode"])["dna_barcode"]
    assert cleaned.str.fullmatch("[ACGTN]+").all()

    shards = tmp_path / "shards"
    code, out, _ = run(capsys, "prepare", str(meta), "-o", str(shards), "-q")
    assert code == 0 and "written" in out
    manifest = read_manifest(shards)
    assert set(manifest["splits"]) == {"pretrain", "train", "val", "test", "key_unseen", "val_unseen",
                                       "test_unseen", "other_heldout"}
    train = open_shard(shards, "train")
    assert len(train) == (df["split"] == "train").sum()
    assert train.labels["species_id"].min() >= 0
    # Pretrain shard = BarcodeBERT's pretraining set of the table (tests/test_pretraining_data.py).
    from bioscan_kmer.data.prepare import pretraining_barcodes

    assert open_shard(shards, "pretrain").barcodes.to_arrow().to_pylist() == pretraining_barcodes(df).to_pylist()
    # Re-running with the same input and options resumes (nothing redone).
    mtime = (shards / "manifest.json").stat().st_mtime_ns
    code, out, _ = run(capsys, "prepare", str(meta), "-o", str(shards), "-q")
    assert code == 0 and "up to date" in out
    assert (shards / "manifest.json").stat().st_mtime_ns == mtime
    # Other options -> redone.
    code, out, _ = run(capsys, "prepare", str(meta), "-o", str(shards), "--k", "6", "-q",
                       "--splits", "train", "test")
    assert code == 0 and "written" in out
    assert set(read_manifest(shards)["splits"]) == {"train", "test"}
    assert read_manifest(shards)["tokenizer"]["config"]["k"] == 6


def test_demo_runs_and_reports(tmp_path, capsys):
    result = cli.run_demo(tmp_path / "demo", n_records=3000, seed=1, progress=False, model=False)
    assert capsys.readouterr().out == ""
    assert result["n_records"] == 3000
    assert result["split_sizes"]["samples"].sum() == 3000
    assert (result["shards"] / "manifest.json").exists()
    assert set(result["timings"]) == {"synthesize", "clean", "unique", "statistics", "split", "prepare"}
    code, out, _ = run(capsys, "demo", "--out", str(tmp_path / "d2"), "--n", "2000", "-q", "--data-only")
    assert code == 0


def test_full_demo_pretrains_and_evaluates(tmp_path, capsys):
    code, out, _ = run(capsys, "demo", "--out", str(tmp_path / "full"), "--n", "6000", "--pretrain-steps", "40")
    assert code == 0
    assert "[8/8] evaluating" in out and "masked-LM loss" in out
    first, last = out.split("masked-LM loss ")[1].split(";")[0].split(" -> ")
    assert float(last) < float(first)  # the tiny encoder learned something
    assert (tmp_path / "full" / "pretrain").is_dir()
    reports = list((tmp_path / "full" / "eval").glob("*.md"))
    assert reports and "1-NN" in reports[0].read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["stats", "{tmp}/missing.csv"], "no such file"),
        (["synth", "0", "-o", "{tmp}/x.csv"], "at least 1"),
        (["demo", "--n", "5", "--out", "{tmp}/d"], "at least 100"),
        (["stats", "{tmp}/bad.csv"], "missing column"),
        (["prepare", "{tmp}/bad.csv", "-o", "{tmp}/s"], "needs column(s) 'dna_barcode'"),
        (["clean", "{tmp}/weird.csv", "-o", "{tmp}/c.csv", "-q"], "'X'"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "bad.csv").write_text("processid,species\nP1,Aus bus\n")
    (tmp_path / "weird.csv").write_text("processid,dna_barcode\nP1,ACGT\nP2,ACXGT\n")
    code, out, err = run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("bioscan-kmer ") and message in err


def test_help_on_every_command(capsys):
    for command in ("synth", "clean", "stats", "split", "prepare", "demo"):
        with pytest.raises(SystemExit) as exc:
            cli.main([command, "--help"])
        assert exc.value.code == 0
        assert "usage: bioscan-kmer " + command in capsys.readouterr().out


def test_plugins_are_optional_but_their_own_errors_surface(monkeypatch):
    real_import = cli.importlib.import_module
    registered = []

    def fake_import(name):
        if name == "bioscan_kmer.train.cli":
            return types.SimpleNamespace(register=lambda sub: registered.append(sub.add_parser("pretrain")))
        if name == "bioscan_kmer.eval.cli":
            err = ModuleNotFoundError("No module named 'bioscan_kmer.eval.cli'")
            err.name = name
            raise err
        return real_import(name)

    monkeypatch.setattr(cli.importlib, "import_module", fake_import)
    parser = cli.build_parser()
    assert registered and parser.parse_args(["pretrain"]).command == "pretrain"

    def broken(name):
        err = ModuleNotFoundError("No module named 'umap'")
        err.name = "umap"
        raise err

    monkeypatch.setattr(cli.importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="umap"):
        cli.build_parser()


def test_module_entry_point_runs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bioscan_kmer.cli", "synth", "50", "-o", str(tmp_path / "m.csv")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    bad = subprocess.run([sys.executable, "-m", "bioscan_kmer.cli", "stats", str(tmp_path / "nope.csv")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
