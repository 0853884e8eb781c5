"""The whole table on a toy table and on real BOLD barcodes; report files; the CLI."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import bioscan_kmer
from bioscan_kmer.eval.demo import demo_settings, evaluate_checkpoint
from bioscan_kmer.eval.pipeline import (
    CNNModel,
    EditDistanceModel,
    EncoderModel,
    EvalSettings,
    KmerFrequencyModel,
    evaluate_models,
    prepare_splits,
)
from bioscan_kmer.eval.real import load_bold
from bioscan_kmer.eval.report import TABLE_COLUMNS, build_details, build_table, write_report
from eval_toy import toy_table
from bioscan_kmer.model import MaskedLM, get_preset, save_checkpoint

BOLD_SAMPLE = Path(__file__).parent / "data" / "bold_sample.tsv"

FAST = EvalSettings(finetune_epochs=2, finetune_lr=1e-3, finetune_head_lr=1e-2, cnn_epochs=2,
                    linear_max_iter=50, cluster_max_points=200, figure_points=200)


@pytest.fixture(scope="module")
def toy():
    return toy_table(seed=0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    tok = bioscan_kmer.KmerTokenizer(k=4, max_len=256, preset="bert")
    torch.manual_seed(0)
    mlm = MaskedLM(get_preset("tiny").with_tokenizer(tok))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, {"model": mlm.state_dict(), "config": mlm.config.to_dict(), "tokenizer": tok.config})
    return path


@pytest.fixture(scope="module")
def toy_run(toy, checkpoint):
    from bioscan_kmer.eval.embeddings import load_encoder

    enc, tok = load_encoder(checkpoint)
    models = [EncoderModel("tiny", enc, tok), CNNModel(), KmerFrequencyModel(4), EditDistanceModel()]
    return evaluate_models(toy, models, FAST)


def test_table_has_every_column_in_range(toy_run):
    table = build_table(toy_run)
    assert list(table.columns) == ["model", *TABLE_COLUMNS]
    assert table["model"].tolist() == ["tiny", "CNN (paper)", "4-mer frequency", "edit-distance 1-NN"]
    # Accuracies are percentages; only AMI may dip below zero (chance-adjusted).
    for col in TABLE_COLUMNS:
        values = table[col].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        low = -100 if "AMI" in col else 0
        assert ((finite >= low) & (finite <= 100)).all(), (col, values)
    row = table.set_index("model")
    # The toy taxonomy is easy for alignment-free and alignment baselines alike.
    assert row.loc["4-mer frequency", "linear probe species"] > 90
    assert row.loc["4-mer frequency", "1-NN genus unseen"] > 90
    assert row.loc["edit-distance 1-NN", "fine-tuned species"] > 95
    # Not run -> NaN, never a made-up number.
    assert np.isnan(row.loc["4-mer frequency", "fine-tuned species"])
    assert np.isnan(row.loc["CNN (paper)", "linear probe species"])
    assert np.isnan(row.loc["edit-distance 1-NN", "clustering AMI species"])
    # The untrained tiny encoder still has every protocol filled in.
    assert np.isfinite(row.loc["tiny"].to_numpy(dtype=float)).all()


def test_retrieval_keys_include_key_unseen(toy_run):
    # Unseen species are in key_unseen only, so species retrieval for unseen queries can
    # succeed only because key_unseen is part of the key set.
    row = build_table(toy_run).set_index("model")
    assert row.loc["4-mer frequency", "retrieval species top-1 unseen"] > 90


def test_report_files(toy_run, tmp_path):
    paths = write_report(toy_run, tmp_path, title="Toy")
    md = paths["markdown"].read_text()
    assert "| model | fine-tuned species |" in md and "Notes:" in md and "umap_order.png" in md
    csv = pd.read_csv(paths["csv"])
    assert len(csv) == 4
    details = pd.read_csv(paths["details"])
    assert {"clustering", "retrieval_seen", "retrieval_unseen", "timing"} <= set(details["probe"])
    assert paths["figure"].stat().st_size > 5000
    assert build_details(toy_run)["value"].notna().all()


def test_splits_are_validated(toy):
    with pytest.raises(ValueError, match="'split'"):
        prepare_splits(toy.drop(columns="split"))
    with pytest.raises(ValueError, match="'test' split is empty"):
        prepare_splits(toy.assign(split=toy["split"].replace("test", "other_heldout")))
    # No unseen species (small tables): allowed, the unseen probes are skipped with a note.
    no_unseen = prepare_splits(toy.assign(split=toy["split"].replace("test_unseen", "other_heldout")))
    assert no_unseen.size("test_unseen") == 0 and any("skipped" in n for n in no_unseen.notes)
    with pytest.warns(UserWarning, match="only 48 points"):  # clustering of test alone
        run = evaluate_models(no_unseen, [KmerFrequencyModel(3), EditDistanceModel()], FAST)
    table = build_table(run).set_index("model")
    assert np.isnan(table.loc["3-mer frequency", "1-NN genus unseen"])
    assert np.isnan(table.loc["3-mer frequency", "retrieval species top-1 unseen"])
    assert table.loc["3-mer frequency", "retrieval species top-1 seen"] > 90
    with pytest.raises(TypeError):
        prepare_splits(toy.to_dict())


def test_subsampling_is_seeded_and_noted(toy):
    s = EvalSettings(max_train=50, seed=3)
    a, b = prepare_splits(toy, s), prepare_splits(toy, s)
    assert a.size("train") == 50 and a.seqs["train"] == b.seqs["train"]
    assert any("train: 50 of" in n for n in a.notes)


def test_real_bold_split_and_baselines(tmp_path):
    df = load_bold(BOLD_SAMPLE, seed=0)
    assert {"train", "test", "key_unseen", "test_unseen"} <= set(df["split"])
    # Held-out species keep their real names and appear only in unseen splits.
    held = df[df["held_out_as_unseen"]]
    assert len(held) and set(held["split"]) <= {"key_unseen", "val_unseen", "test_unseen", "other_heldout"}
    assert not set(held["species"]) & set(df.loc[df.split == "train", "species"])
    assert df["dna_barcode"].str.fullmatch("[ACGTN]+").all()
    with pytest.warns(UserWarning, match="only 40 points: UMAP n_components lowered from 50 to 38"):
        out = evaluate_checkpoint(df, None, tmp_path, settings=FAST, baselines=("kmer", "edit"))
    assert any("UMAP n_components 38" in n for n in out["run"]["results"]["4-mer frequency"]["notes"])
    row = out["table"].set_index("model")
    assert row.loc["edit-distance 1-NN", "fine-tuned species"] > 80  # real barcodes: species are distinct
    assert (tmp_path / "report.md").is_file()


def test_cli_evaluate(tmp_path, toy, checkpoint, capsys):
    from bioscan_kmer.cli import main

    data = tmp_path / "toy.csv"
    toy.to_csv(data, index=False)
    rc = main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--out", str(tmp_path / "r"),
               "--baselines", "kmer", "--fast", "--finetune-epochs", "1", "-q"])
    assert rc == 0
    assert "| tiny.pt |" in capsys.readouterr().out
    assert (tmp_path / "r" / "report.csv").is_file()
    for args, message in (
        (["--data", str(tmp_path / "missing.csv")], "no such file"),
        (["--data", str(data), "--checkpoint", str(tmp_path / "nope.pt")], "no such file"),
        (["--data", str(data), "--baselines", "blast"], "unknown blast"),
        (["--data", str(data), "--baselines", "none"], "nothing to evaluate"),
    ):
        assert main(["evaluate", "--out", str(tmp_path / "x"), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("bioscan-kmer evaluate: error:") and message in err and "\n" not in err


def test_demo_settings_subsample():
    s = demo_settings()
    assert s.max_train is not None and s.cluster_max_points <= 2000 and s.finetune_max_train is not None
    with pytest.raises(ValueError, match="unknown"):
        demo_settings(not_a_setting=1)


def test_demo_evaluate_on_toy(toy, checkpoint, tmp_path):
    from bioscan_kmer.eval import demo_evaluate

    threads = torch.get_num_threads()
    out = demo_evaluate(toy, checkpoint, tmp_path, progress=False)
    assert torch.get_num_threads() == threads  # the demo's one-thread setting is undone
    assert out["table"]["model"].tolist()[0] == "demo encoder"
    assert (tmp_path / "report.md").read_text().startswith("## Benchmark on synthetic data")
    assert out["seconds"] > 0


def test_fine_tune_without_validation_warns_and_keeps_last_epoch(toy):
    from bioscan_kmer.eval.baselines import PaperCNN, nucleotide_codes
    from bioscan_kmer.eval.finetune import fine_tune
    from bioscan_kmer.eval.labels import label_codes

    y = label_codes(toy, ("species",))["species"]
    s = toy["split"].to_numpy()
    codes = nucleotide_codes(toy["dna_barcode"])
    empty = np.zeros((0, codes.shape[1]), dtype=codes.dtype)
    with pytest.warns(UserWarning, match="no labelled validation rows"):
        res = fine_tune(lambda c: PaperCNN(c), (codes[s == "train"],), y[s == "train"], (empty,),
                        np.zeros(0, np.int64), (codes[s == "test"],), y[s == "test"], epochs=2, batch_size=64)
    assert res["best_epoch"] == 2
    with pytest.raises(ValueError, match="optimizer"):
        fine_tune(lambda c: PaperCNN(c), (codes,), y, (codes,), y, (codes,), y, optimizer="sgd")


def test_cnn_can_train_on_fewer_rows_than_the_encoder():
    from types import SimpleNamespace

    from bioscan_kmer.eval.pipeline import EvalSettings, _train_subset

    data = SimpleNamespace(seqs={"train": [f"ACGT{i}" for i in range(50)]},
                           labels={"train": {"species": np.arange(50)}})
    s = EvalSettings(finetune_max_train=30, cnn_max_train=10)
    enc_seqs, enc_y = _train_subset(data, s)
    cnn_seqs, cnn_y = _train_subset(data, s, s.cnn_max_train)
    assert len(enc_seqs) == 30 and len(cnn_seqs) == 10
    assert [f"ACGT{i}" for i in cnn_y] == cnn_seqs  # rows and labels stay aligned
    assert len(_train_subset(data, EvalSettings(finetune_max_train=30), None)[0]) == 30


def test_every_lazy_export_resolves():
    # The package lists its names lazily; a name whose module lacks it (DEMO_SETTINGS once
    # pointed at nothing) only fails when someone asks for it.
    import bioscan_kmer.eval as ev

    for name in ev.__all__:
        assert getattr(ev, name) is not None, name
    assert not hasattr(ev, "toy_table")  # test-only data lives in tests/eval_toy.py


def test_progress_names_each_step_and_estimates_the_long_ones(toy, checkpoint, capsys, monkeypatch):
    from bioscan_kmer.eval.embeddings import load_encoder

    monkeypatch.setenv("BIOSCAN_KMER_PROGRESS", "lines")
    enc, tok = load_encoder(checkpoint)
    settings = FAST.replace(progress=True, finetune_epochs=1)
    # (The CNN's training goes through the same fine_tune: tests/test_eval_finetune.py.)
    run = evaluate_models(toy, [EncoderModel("tiny", enc, tok), EditDistanceModel()], settings)
    err = capsys.readouterr().err
    for line in (r"\[1/2\] tiny", r"\[2/2\] edit-distance 1-NN",
                 r"fine-tuning tiny: 216 records, 7 batches per epoch, about \d+ s per epoch",
                 r"linear probe: 216 x \d+ features, \d+ classes, \d L2 value\(s\): at most about \d+ s",
                 r"tiny: zero-shot clustering of \d+ points",
                 r"edit-distance 1-NN: \d+ distinct queries against \d+ distinct keys, about \d+ s"):
        assert re.search(line, err), (line, err)
    assert run["results"]["tiny"]["fine_tuned"]["epochs_run"] == 1


def test_cpu_runs_say_how_to_avoid_openmp_spin_waits(capsys, monkeypatch):
    from bioscan_kmer.eval.demo import _shared_cpu_hint

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    _shared_cpu_hint("cpu")
    assert "OMP_WAIT_POLICY=PASSIVE" in capsys.readouterr().err
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    _shared_cpu_hint("cpu")
    assert capsys.readouterr().err == ""
