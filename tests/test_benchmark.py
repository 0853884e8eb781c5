"""`bioscan-kmer benchmark` end to end on a small real subset (288 BOLD records of
tests/data/bold_subset.tsv.gz, CC BY-SA 4.0): every step runs, every probe gives a
number, the report has its parts, and a rerun reuses what is done."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from bioscan_kmer.benchmark import BenchmarkConfig, curve_steps, parse_duration, run_benchmark
from bioscan_kmer.errors import UsageError

DATA = Path(__file__).parent / "data" / "bold_subset.tsv.gz"
SMALL_EVAL = {"finetune_epochs": 2, "cnn_epochs": 2, "linear_max_iter": 50}


def _config(**changes):
    kw = dict(preset="tiny", steps=12, curve_points=2, seeds=(0, 1), threads=1, device="cpu",
              eval_settings=SMALL_EVAL)
    kw.update(changes)
    return BenchmarkConfig(**kw)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    return out, run_benchmark(DATA, out, _config())


def test_every_step_and_probe_gives_numbers(first_run):
    out, res = first_run
    table = pd.read_parquet(out / "table.parquet")
    assert len(table) == res["table"]["records"] == 288
    assert {"train", "test", "test_unseen", "key_unseen"} <= set(table["split"])
    # Held-out species are whole species, absent from the seen splits.
    held = set(table.loc[table["held_out_as_unseen"], "species"])
    seen = set(table.loc[table["split"].isin(["train", "val", "test"]), "species"])
    assert held and not held & seen

    summary = pd.read_csv(out / "report.csv")
    models = list(dict.fromkeys(summary["model"]))
    assert models[0] == "tiny encoder" and {"CNN (paper)", "4-mer frequency", "edit-distance 1-NN"} <= set(models)
    expected = {
        "tiny encoder": ["fine-tuned species", "linear probe species", "1-NN genus unseen",
                         "clustering AMI species", "retrieval species top-1 seen", "retrieval species top-1 unseen"],
        "CNN (paper)": ["fine-tuned species", "1-NN genus unseen", "clustering AMI species"],
        "4-mer frequency": ["linear probe species", "1-NN genus unseen", "clustering AMI species"],
        "edit-distance 1-NN": ["fine-tuned species", "1-NN genus unseen"],
    }
    for model, metrics in expected.items():
        for metric in metrics:
            hit = summary[(summary.model == model) & (summary.metric == metric)]
            assert len(hit) == 1 and math.isfinite(hit["mean"].iloc[0]), (model, metric)
            # Two evaluation seeds, except the probes no seed changes (edit distance, linear probes: run once).
            once = model == "edit-distance 1-NN" or metric == "linear probe species"
            assert hit["n_seeds"].iloc[0] == (1 if once else 2), (model, metric)
            assert -100 <= hit["mean"].iloc[0] <= 100

    curve = pd.read_csv(out / "learning_curve.csv")
    assert curve["step"].tolist() == curve_steps(12, 2) == res["pretrain"]["snapshots"]
    assert curve["tokens_seen"].is_monotonic_increasing and curve["tokens_seen"].iloc[0] == 0
    assert curve.drop(columns=["step", "tokens_seen"]).notna().all().all()
    assert {"1-NN genus unseen (last layer, whitened)", "variance in 10 directions (last layer)"} <= set(curve.columns)
    assert curve["variance in 10 directions (last layer)"].between(0, 100).all()
    layers = pd.read_csv(out / "layers.csv")
    assert sorted(set(layers["layer"])) == [0, 1, 2]  # tiny: embeddings + 2 blocks
    assert layers[["1-NN genus test_unseen, whitened", "variance in 10 directions"]].notna().all().all()

    md = (out / "report.md").read_text()
    for part in ("## Results", "## Learning curve", "## 1-NN genus by layer", "## Notes",
                 "![learning curve](learning_curve.png)", "CC BY-SA 4.0"):
        assert part in md, part
    assert (out / "learning_curve.png").stat().st_size > 10_000
    assert (out / "eval" / "seed_0" / "report.md").is_file() and (out / "eval" / "seed_1" / "report.md").is_file()


def test_a_rerun_reuses_every_step_and_a_change_redoes_what_depends_on_it(first_run, tmp_path):
    out, res = first_run
    markers = {p.name: p.stat().st_mtime_ns for p in (out / "steps").iterdir()}
    again = run_benchmark(DATA, out, _config())
    assert {p.name: p.stat().st_mtime_ns for p in (out / "steps").iterdir()} == markers
    pd.testing.assert_frame_equal(pd.DataFrame(again["evaluate"][0]["table"]), pd.DataFrame(res["evaluate"][0]["table"]))
    # Another evaluation seed set: the table, shards, pretraining and curve stay; seed 2 is new.
    run_benchmark(DATA, out, _config(seeds=(0, 2), baselines=("kmer",)))
    now = {p.name: p.stat().st_mtime_ns for p in (out / "steps").iterdir()}
    for step in ("table", "shards", "pretrain", "curve_baseline"):
        assert now[f"{step}.json"] == markers[f"{step}.json"], step
    assert "evaluate_seed_2.json" in now and now["evaluate_seed_0.json"] != markers["evaluate_seed_0.json"]
    recorded = json.loads((out / "steps" / "pretrain.json").read_text())
    assert recorded["result"]["steps"] == 12


def test_settings_are_checked_before_any_work(tmp_path):
    with pytest.raises(UsageError, match="at most one of epochs, steps and time_budget"):
        BenchmarkConfig(preset="tiny", steps=5, epochs=2)
    with pytest.raises(UsageError, match="preset must be one of"):
        BenchmarkConfig(preset="huge")
    with pytest.raises(UsageError, match="unknown baseline"):
        BenchmarkConfig(preset="tiny", baselines=("blast",))
    with pytest.raises(UsageError, match="seeds"):
        BenchmarkConfig(preset="tiny", seeds=(1, 1))
    with pytest.raises(UsageError, match="precision must be one of"):
        BenchmarkConfig(preset="tiny", precision="fp16")
    with pytest.raises(UsageError, match="batch_size must be a positive int"):
        BenchmarkConfig(preset="tiny", batch_size=0)
    with pytest.raises(UsageError, match="unknown evaluation setting"):
        BenchmarkConfig(preset="tiny", eval_settings={"nonsense": 1})
    with pytest.raises(UsageError, match="no such file"):
        run_benchmark(tmp_path / "missing.tsv", tmp_path / "out", _config())
    assert parse_duration("45m") == 2700 and parse_duration("1h30m") == 5400 and parse_duration("90") == 90
    for bad in ("", "soon", "-5", "0m"):
        with pytest.raises(UsageError):
            parse_duration(bad)
    assert curve_steps(1000, 4) == [0, 10, 46, 215, 1000]
    assert curve_steps(3, 8) == [0, 1, 2, 3] and curve_steps(50, 0) == []


def test_the_command_line_runs_it(tmp_path, capsys):
    from bioscan_kmer.cli import main

    code = main(["benchmark", "--data", str(DATA), "--out", str(tmp_path / "b"), "--preset", "tiny",
                 "--steps", "4", "--curve-points", "0", "--seeds", "0", "--baselines", "kmer", "--threads", "1",
                 "-q"])
    out = capsys.readouterr().out
    assert code == 0 and "# Benchmark: tiny encoder on bold_subset.tsv.gz" in out
    assert json.loads((tmp_path / "b" / "run" / "config.json").read_text())["train"]["precision"] == "auto"
    # --precision replaces the recipe's (tiny's is auto) and is part of what the pretraining step was made from.
    assert main(["benchmark", "--data", str(DATA), "--out", str(tmp_path / "b"), "--preset", "tiny",
                 "--steps", "4", "--curve-points", "0", "--seeds", "0", "--baselines", "kmer", "--threads", "1",
                 "--precision", "fp32", "--batch-size", "8", "-q"]) == 0
    capsys.readouterr()
    train = json.loads((tmp_path / "b" / "run" / "config.json").read_text())["train"]
    assert train["precision"] == "fp32" and train["batch_size"] == 8
    inputs = json.loads((tmp_path / "b" / "steps" / "pretrain.json").read_text())["inputs"]
    assert inputs["precision"] == "fp32" and inputs["batch_size"] == 8
    assert main(["benchmark", "--data", str(DATA), "--out", str(tmp_path / "c"), "--steps", "3",
                 "--epochs", "2"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_the_feature_bank_gives_each_layer_as_the_encoder_does_and_embeds_once(first_run):
    """The seeds share one embedding of each split: the same vectors as EncoderModel's own
    features, for the last layer and the extra one, from one forward pass per barcode set."""
    import numpy as np

    from bioscan_kmer.benchmark import _eval_settings, _FeatureBank
    from bioscan_kmer.eval.pipeline import EncoderModel

    out, _ = first_run
    cfg = _config()
    settings = _eval_settings(cfg, 0)
    bank = _FeatureBank(out / "run" / "checkpoint.pt", 1, settings)
    assert bank.layers == [-1, 1]
    seqs = pd.read_parquet(out / "table.parquet")["dna_barcode"].astype(str).tolist()[:40]
    for layer in (-1, 1):
        own = EncoderModel("x", bank.encoder, bank.tokenizer, layer=layer).features(seqs, settings)
        np.testing.assert_allclose(bank.features(seqs, settings, layer), own, rtol=1e-5, atol=1e-6)
    assert bank.computed == 1
    bank.features(seqs[:39], settings, -1)  # another set of barcodes is embedded anew
    assert bank.computed == 2
    # The last layer is not asked for twice: layer 2 of tiny is the last one.
    assert _FeatureBank(out / "run" / "checkpoint.pt", 2, settings).layers == [-1]


def test_real_kmer_knn_features_and_neighbours():
    """benchmarks/real_kmer_knn.py: token counts equal a Python count of the tokens, and the
    sparse cosine 1-NN equals a dense brute force."""
    import itertools
    from collections import Counter

    import numpy as np

    from bioscan_kmer import clean

    mod = _load_benchmark_script("real_kmer_knn")

    seqs = [s for s in clean(pd.read_csv(DATA, sep="\t")["sequence"].astype(str).tolist()) if s][:60]
    seqs[0] = "ACGTNACGTACGTTTTT"  # an N k-mer is not counted; the partial last k-mer neither
    x = mod.non_overlapping(seqs, 4).toarray()
    index = {"".join(p): i for i, p in enumerate(itertools.product("ACGT", repeat=4))}
    for row, s in zip(x, seqs):
        kmers = [s[i:i + 4] for i in range(0, min(len(s), 660) - 3, 4)]
        want = Counter(m for m in kmers if set(m) <= set("ACGT"))
        got = {i: int(c) for i, c in enumerate(row) if c}
        assert got == {index[m]: c for m, c in want.items()}
    y = mod.overlapping(seqs, 3).toarray()
    assert y[0].sum() == sum(set(seqs[0][i:i + 3]) <= set("ACGT") for i in range(len(seqs[0]) - 2))
    keys, queries = y[:40], y[40:]
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    brute = (unit(queries) @ unit(keys).T).argmax(axis=1)
    from scipy import sparse

    assert (mod.cosine_1nn(sparse.csr_matrix(keys), sparse.csr_matrix(queries), chunk=7) == brute).all()


def _load_benchmark_script(name):
    import importlib.util

    path = Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_real_embedding_geometry_agrees_with_the_learning_curve(first_run, capsys):
    """benchmarks/real_embedding_geometry.py: its raw and whitened 1-NN of the final snapshot
    are the learning curve's numbers (same keys, same queries), and every table is complete."""
    out, res = first_run
    mod = _load_benchmark_script("real_embedding_geometry")
    # Only frame 2 of this one is free of TAA/TAG; each base put in front moves it by one.
    coding = "TAGCAGCAGCAGCTAA"
    assert [mod.reading_frame(p + coding) for p in ("", "C", "GC")] == [2, 0, 1]
    probe = mod.Probe(out)
    final = out / "run" / "snapshots" / f"step_{res['pretrain']['snapshots'][-1]:08d}.pt"
    mod.cmd_probe(probe, [final])
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines()]
    header = [c.strip() for c in rows[0]]
    table = {int(r[1]): dict(zip(header, (c.strip() for c in r))) for r in rows[2:]}
    assert sorted(table) == [0, 1, 2]
    curve = pd.read_csv(out / "learning_curve.csv").iloc[-1]
    assert float(table[2]["raw"]) == pytest.approx(curve["1-NN genus unseen (last layer)"], abs=0.01)
    assert float(table[2]["whitened"]) == pytest.approx(curve["1-NN genus unseen (last layer, whitened)"], abs=0.01)
    assert float(table[2]["top 10 share"]) == pytest.approx(curve["variance in 10 directions (last layer)"], abs=0.01)
    mod.cmd_directions(probe, [final])
    lines = capsys.readouterr().out.splitlines()
    assert len([x for x in lines if x.startswith(f"| {final.name}")]) == 12  # 6 directions x 2 layers
    mod.cmd_frames(probe, [final])
    cells = [x.split("|")[3:-1] for x in capsys.readouterr().out.splitlines() if x.startswith(f"| {final.name}")]
    assert len(cells) == 2 and all(0 <= float(c) <= 100 for row in cells for c in row)
