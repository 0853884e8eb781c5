"""``bioscan-kmer benchmark``: the paper's whole protocol on one table, in one resumable run.

Steps, each writing what it made under the output directory and a marker
``steps/<step>.json`` that records what went into it::

    table     read the file (FASTA / BOLD TSV / BIOSCAN CSV, gzip or not), clean the
              barcodes, and give the records the eight BIOSCAN-5M splits: a table that
              has them keeps them; one of really named species gets a seeded share of its
              species held out as unseen (:func:`bioscan_kmer.eval.real.hold_out_unseen`)
    shards    the pretraining set (BarcodeBERT's rule) and ``val`` as sequence shards
    pretrain  masked-LM pretraining of the preset (its recipe, every k-mer frame), with
              snapshots of the weights along the run
    curve     the learning curve: 1-NN genus on unseen species (every layer), a linear
              probe of species, at each snapshot, beside the 4-mer-frequency baseline
    evaluate  every probe of the paper for the final encoder and the baselines (CNN,
              4-mer frequency, edit distance), once per evaluation seed
    report    ``report.md`` / ``report.csv`` (mean and spread over seeds),
              ``learning_curve.csv`` / ``.png``, ``layers.csv``

A rerun with the same inputs and settings reuses every finished step (and continues an
interrupted pretraining from its checkpoint); a changed setting redoes the steps that
depend on it. The Python entry point is :func:`run_benchmark`; :func:`register` adds the
command to the ``bioscan-kmer`` parser.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bioscan_kmer.errors import UsageError

__all__ = ["BenchmarkConfig", "run_benchmark", "curve_steps", "parse_duration", "register"]

#: Splits pretrained on when the table has (almost) no ``pretrain`` records, as a BOLD export
#: of named species: ``train`` joins BarcodeBERT's two (its labels are never used there).
PRETRAIN_WITH_TRAIN = ("pretrain", "other_heldout", "train")
_EVAL_SPLITS = ("train", "test", "test_unseen", "key_unseen")


@dataclass(frozen=True)
class BenchmarkConfig:
    """Settings of :func:`run_benchmark`.

    Parameters
    ----------
    preset : str
        Encoder preset (:data:`bioscan_kmer.model.PRESETS`); it brings its training recipe.
    epochs, steps : int, optional
        Length of the pretraining (at most one of them and ``time_budget``); default: the
        recipe's (35 epochs for the published presets).
    time_budget : float, optional
        Seconds of pretraining: a short timed run measures this machine's speed and the
        run gets as many steps as fit (the schedule then ends on time).
    pretrain_seed, split_seed : int
        Seed of the pretraining run; seed of the unseen species and of the partition.
    seeds : tuple of int
        Evaluation seeds: fine-tuning, the CNN, the linear probe's subsample, UMAP. The
        report gives the mean and spread over them.
    unseen_fraction, min_unseen_records : float, int
        See :func:`bioscan_kmer.eval.real.hold_out_unseen`.
    pretrain_on_train : bool, optional
        Add ``train`` to the pretraining splits; default: when ``pretrain`` +
        ``other_heldout`` hold fewer records than ``train`` (a table of named species).
    curve_points : int
        Snapshots along the run (log-spaced, plus the initialisation); 0: no curve.
    curve_max_train : int, optional
        Train records of the curve's probes, as 1-NN keys and linear-probe training set (a
        seeded subsample keeps the curve cheap: every snapshot embeds them).
    baselines : tuple of str
        Among ``cnn``, ``kmer``, ``edit``.
    eval_settings : dict
        Overrides of :class:`bioscan_kmer.eval.EvalSettings` (``cnn_max_train``, ...).
    device : str, optional
        Torch device (CUDA when present).
    threads : int, optional
        CPU threads for torch.
    precision : {"fp32", "tf32", "bf16", "auto"}, optional
        Pretraining precision instead of the recipe's (BarcodeBERT's is fp32): the speed
        switch of ``bioscan-kmer pretrain`` (``bf16`` for a GPU run).
    compile : bool
        Pretrain under ``torch.compile``.
    batch_size : int, optional
        Pretraining batch instead of the recipe's (BarcodeBERT's is 16, whose lr rule,
        1e-4 per 64 sequences, then scales the rate); larger batches keep a GPU busy.
    progress : bool
        Say what each step does and show progress.
    """

    preset: str = "small"
    epochs: int | None = None
    steps: int | None = None
    time_budget: float | None = None
    pretrain_seed: int = 0
    split_seed: int = 0
    seeds: tuple = (0, 1)
    unseen_fraction: float = 0.3
    min_unseen_records: int = 8
    pretrain_on_train: bool | None = None
    curve_points: int = 8
    curve_max_train: int | None = 10_000
    baselines: tuple = ("cnn", "kmer", "edit")
    eval_settings: dict = field(default_factory=dict)
    device: str | None = None
    threads: int | None = None
    precision: str | None = None
    compile: bool = False
    batch_size: int | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        from bioscan_kmer.eval.demo import BASELINES
        from bioscan_kmer.model.config import PRESETS

        if self.preset not in PRESETS:
            raise UsageError(f"preset must be one of {', '.join(sorted(PRESETS))}, got {self.preset!r}")
        given = [n for n in ("epochs", "steps", "time_budget") if getattr(self, n) is not None]
        if len(given) > 1:
            raise UsageError(f"give at most one of epochs, steps and time_budget, not {' and '.join(given)}")
        for name in ("epochs", "steps"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UsageError(f"{name} must be a positive int, got {value!r}")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise UsageError(f"batch_size must be a positive int, got {self.batch_size!r}")
        if self.precision is not None and self.precision not in ("fp32", "tf32", "bf16", "auto"):
            raise UsageError(f"precision must be one of fp32, tf32, bf16, auto, got {self.precision!r}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise UsageError(f"time_budget must be positive seconds, got {self.time_budget!r}")
        seeds = tuple(int(s) for s in self.seeds)
        if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
            raise UsageError(f"seeds must be distinct ints >= 0, at least one, got {self.seeds!r}")
        object.__setattr__(self, "seeds", seeds)
        bad = sorted(set(self.baselines) - set(BASELINES))
        if bad:
            raise UsageError(f"unknown baseline(s) {', '.join(bad)}; choose from {', '.join(BASELINES)}")
        object.__setattr__(self, "baselines", tuple(self.baselines))
        if not isinstance(self.curve_points, int) or self.curve_points < 0:
            raise UsageError(f"curve_points must be an int >= 0, got {self.curve_points!r}")
        if self.curve_max_train is not None and self.curve_max_train < 100:
            raise UsageError(f"curve_max_train must be at least 100, got {self.curve_max_train}")
        if not 0.0 <= self.unseen_fraction <= 1.0:
            raise UsageError(f"unseen_fraction must be in [0, 1], got {self.unseen_fraction}")
        from bioscan_kmer.eval.pipeline import EvalSettings

        names = {f.name for f in dataclasses.fields(EvalSettings)}
        unknown = sorted(set(self.eval_settings) - names)
        if unknown:
            raise UsageError(f"unknown evaluation setting(s) {', '.join(unknown)}")
        reserved = sorted(set(self.eval_settings) & {"seed", "device", "progress"})
        if reserved:
            raise UsageError(f"{', '.join(reserved)}: set these on the benchmark, not in eval_settings")


def parse_duration(text: str) -> float:
    """Seconds from ``"45m"``, ``"1h"``, ``"1h30m"``, ``"90s"`` or a plain number of seconds.

    Raises
    ------
    UsageError
        Anything else, or a duration that is not positive.
    """
    t = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        seconds = float(t)
    else:
        parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?:in)?)?(?:(\d+(?:\.\d+)?)s)?", t)
        if not t or parts is None or not any(parts.groups()):
            raise UsageError(f"expected a duration such as 45m, 1h30m, 90s or 3600, got {text!r}")
        h, m, s = (float(g) if g else 0.0 for g in parts.groups())
        seconds = 3600 * h + 60 * m + s
    if not seconds > 0:
        raise UsageError(f"a duration must be positive, got {text!r}")
    return seconds


def curve_steps(total: int, points: int) -> list[int]:
    """The snapshot steps of a learning curve: 0, then ``points`` steps log-spaced from
    about 1% of the run to its end (duplicates of short runs merged)."""
    if points <= 0 or total < 1:
        return []
    import numpy as np

    first = max(1.0, total / 100)
    raw = np.geomspace(first, total, points) if points > 1 else np.array([total])
    return [0] + sorted({int(round(x)) for x in raw} | {total})


# ---- step bookkeeping ---------------------------------------------------------------------

def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _write_json(path: Path, obj: Any) -> None:
    from bioscan_kmer._atomic import replacing

    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=1, default=str) + "\n", encoding="utf-8")


class _Steps:
    """Markers under ``out/steps``: a step whose recorded inputs match is not redone."""

    def __init__(self, out: Path, say: Callable[[str], None]) -> None:
        self.dir = out / "steps"
        self.say = say

    def run(self, name: str, inputs: dict, fn: Callable[[], dict]) -> dict:
        key = _digest(inputs)
        marker = self.dir / f"{name}.json"
        if marker.is_file():
            try:
                done = json.loads(marker.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                done = None
            if done and done.get("key") == key:
                self.say(f"{name}: done before (steps/{name}.json), reused")
                return done["result"]
            marker.unlink()
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
        _write_json(marker, {"key": key, "inputs": inputs, "result": result, "seconds": seconds})
        return result


def _fingerprint(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


# ---- the steps ------------------------------------------------------------------------------

def _make_table(data: Path, out: Path, cfg: BenchmarkConfig, say) -> dict:
    import numpy as np
    import pandas as pd

    from bioscan_kmer import clean
    from bioscan_kmer.data.reading import read_any
    from bioscan_kmer.errors import DataError
    from bioscan_kmer.eval.real import hold_out_unseen

    df = read_any(data)
    if "dna_barcode" not in df.columns:
        raise DataError(f"{data}: no barcode column (dna_barcode, nucraw, nuc or sequence)")
    has_splits = "split" in df.columns and set(_EVAL_SPLITS) <= set(df["split"].dropna().astype(str))
    if has_splits:
        notes = ["splits: the table's own"]
        raw = df["dna_barcode"].astype(object).where(df["dna_barcode"].notna(), "").astype(str).tolist()
        df["dna_barcode"] = clean(raw)
        empty = (df["dna_barcode"].str.len() == 0).to_numpy()
        if empty.any():
            notes.append(f"{int(empty.sum())} records with a missing barcode or one empty after cleaning removed "
                         f"(first: row {int(np.flatnonzero(empty)[0])})")
            df = df[~empty].reset_index(drop=True)
    else:
        say(f"table: holding out {cfg.unseen_fraction:.0%} of the eligible species as unseen (seed {cfg.split_seed})")
        df = hold_out_unseen(df, seed=cfg.split_seed, unseen_fraction=cfg.unseen_fraction,
                             min_unseen_records=cfg.min_unseen_records, source=str(data))
        notes = ["splits: BIOSCAN-5M partition rules, with a seeded share of the species held out as unseen "
                 "(bioscan_kmer.eval.real.hold_out_unseen)", *df.attrs.get("notes", [])]
    keep = [c for c in df.columns if c not in ("fasta_header", "source", "marker_code")]
    table = df[keep].copy()
    for col in table.columns:
        if isinstance(table[col].dtype, pd.CategoricalDtype) or table[col].dtype == object:
            table[col] = table[col].astype("string")
    from bioscan_kmer._atomic import replacing

    path = out / "table.parquet"
    with replacing(path) as tmp:
        table.to_parquet(tmp, index=False)
    sizes = table["split"].value_counts().to_dict()
    return {"path": str(path), "records": len(table), "sizes": {str(k): int(v) for k, v in sizes.items()},
            "species": int(table["species"].nunique()) if "species" in table else 0, "notes": notes}


def _read_table(out: Path):
    import pandas as pd

    return pd.read_parquet(out / "table.parquet")


def _pretrain_splits(table, cfg: BenchmarkConfig) -> tuple[str, ...]:
    from bioscan_kmer.data.prepare import PRETRAINING_SPLITS

    if cfg.pretrain_on_train is True:
        return PRETRAIN_WITH_TRAIN
    if cfg.pretrain_on_train is False:
        return PRETRAINING_SPLITS
    split = table["split"].astype(str)
    few = split.isin(PRETRAINING_SPLITS).sum() < (split == "train").sum()
    return PRETRAIN_WITH_TRAIN if few else PRETRAINING_SPLITS


def _make_shards(out: Path, cfg: BenchmarkConfig, say) -> dict:
    from bioscan_kmer.data.prepare import prepare_shards
    from bioscan_kmer.model.config import get_preset

    table = _read_table(out)
    mcfg = get_preset(cfg.preset)
    splits = _pretrain_splits(table, cfg)
    res = prepare_shards(table, out / "shards", k=mcfg.k, preset=mcfg.tokenizer_preset, splits=["pretrain", "val"],
                         pretrain_splits=splits, force=True, progress=cfg.progress)
    say(f"shards: {res['rows']['pretrain']:,} distinct barcodes to pretrain on (splits {', '.join(splits)})")
    return {"rows": res["rows"], "pretrain_splits": list(splits)}


def _train_config(cfg: BenchmarkConfig, **changes):
    from bioscan_kmer.train import TrainConfig

    kw = dict(preset=cfg.preset, seed=cfg.pretrain_seed, device=cfg.device, progress=cfg.progress,
              val_split="val", ckpt_every=200)
    if cfg.threads is not None:
        kw["threads"] = cfg.threads
    if cfg.precision is not None:
        kw["precision"] = cfg.precision
    if cfg.compile:
        kw["compile"] = True
    if cfg.batch_size is not None:
        kw["batch_size"] = cfg.batch_size
    kw.update(changes)
    return TrainConfig(**kw)


def _pretrain_steps(out: Path, cfg: BenchmarkConfig, rows: int, steps_done: _Steps, say) -> dict:
    """Optimizer steps of the run: given, from epochs, or what fits the time budget."""
    base = _train_config(cfg, steps=1)
    per_epoch = rows // base.batch_size
    if per_epoch < 1:
        raise UsageError(f"the pretraining set has {rows} barcodes, fewer than one batch of {base.batch_size}")
    if cfg.steps is not None:
        return {"steps": cfg.steps, "how": "given"}
    if cfg.time_budget is None:
        epochs = cfg.epochs if cfg.epochs is not None else _train_config(cfg).epochs
        if epochs is None:  # a recipe given in steps (the demo's)
            return {"steps": _train_config(cfg).steps, "how": "the recipe's"}
        return {"steps": max(1, epochs * per_epoch // base.grad_accum), "how": f"{epochs} epochs"}

    def calibrate():
        from bioscan_kmer.train import pretrain

        probe = out / "calibration"
        shutil.rmtree(probe, ignore_errors=True)
        n = 40
        say(f"pretrain: timing {n} steps to fit the run into {cfg.time_budget / 60:.0f} minutes")
        res = pretrain(out / "shards", probe, train_config=_train_config(
            cfg, steps=n, log_every=n // 2, val_split=None, ckpt_every=0, progress=False))
        shutil.rmtree(probe, ignore_errors=True)
        # The second log window (steps 21-40) is past the first steps' warm-up costs.
        seconds_per_step = base.batch_size * base.grad_accum * _seq_len(out) / res["tokens_per_s"]
        return {"seconds_per_step": seconds_per_step}

    calibration_in = {"shards": _digest(_shard_key(out)), "preset": cfg.preset, "device": cfg.device,
                      "threads": cfg.threads, "budget": cfg.time_budget}
    if cfg.precision is not None or cfg.compile or cfg.batch_size is not None:  # these time differently
        calibration_in.update(precision=cfg.precision, compile=cfg.compile, batch_size=cfg.batch_size)
    timing = steps_done.run("calibration", calibration_in, calibrate)
    steps = max(1, int(cfg.time_budget / timing["seconds_per_step"]))
    return {"steps": steps, "how": f"{cfg.time_budget / 60:.0f}-minute budget at "
                                   f"{timing['seconds_per_step']:.3f} s/step"}


def _seq_len(out: Path) -> int:
    from bioscan_kmer.data.shards import open_shard

    return open_shard(out / "shards", "pretrain", labels=False).tokenizer.seq_len


def _shard_key(out: Path) -> dict:
    from bioscan_kmer.data.shards import read_manifest

    manifest = read_manifest(out / "shards")
    return {s: r["sequences"]["sha256"] for s, r in manifest["splits"].items()}


def _run_pretraining(out: Path, cfg: BenchmarkConfig, length: dict, say) -> dict:
    from bioscan_kmer.train import pretrain

    steps = length["steps"]
    snaps = tuple(curve_steps(steps, cfg.curve_points))
    tcfg = _train_config(cfg, steps=steps, snapshot_steps=snaps)
    run = out / "run"
    intent = {"train": tcfg.to_dict(), "shards": _shard_key(out)}
    intent_path = run / "benchmark_run.json"
    if run.exists():
        try:
            same = json.loads(intent_path.read_text(encoding="utf-8")) == json.loads(json.dumps(intent, default=str))
        except (OSError, json.JSONDecodeError):
            same = False
        if not same:
            say("pretrain: the settings or data changed since the last run: starting over")
            shutil.rmtree(run)
    run.mkdir(parents=True, exist_ok=True)
    _write_json(intent_path, intent)
    say(f"pretrain: {cfg.preset}, {steps:,} steps ({length['how']}); snapshots at {', '.join(map(str, snaps))}")
    res = pretrain(out / "shards", run, train_config=tcfg, resume=True)
    if res.get("stopped_by"):
        raise KeyboardInterrupt(f"pretraining stopped by {res['stopped_by']}; rerun to continue")
    return {"steps": res["steps"], "first_loss": res["first_loss"], "last_loss": res["last_loss"],
            "val_loss": res["val_loss"], "checkpoint": res["checkpoint"], "snapshots": list(snaps),
            "how": length["how"], "tokens_per_s": res["tokens_per_s"], "elapsed_s": res["elapsed_s"],
            "settings": res.get("settings")}


def _genus_codes(table):
    from bioscan_kmer.eval.labels import label_codes

    return label_codes(table, ("genus", "species"))


def _curve_data(out: Path, cfg: BenchmarkConfig):
    """Barcodes and labels of the curve's probes: train (a seeded subsample of at most
    ``curve_max_train`` records: the 1-NN keys and the linear probe's training set), val,
    test, val_unseen and test_unseen; the distinct barcodes are embedded once."""
    import numpy as np

    from bioscan_kmer import unique

    table = _read_table(out)
    codes = _genus_codes(table)
    split = table["split"].astype(str).to_numpy()
    seqs = table["dna_barcode"].astype(str).to_numpy(dtype=object)
    parts = {}
    for name in ("train", "val", "test", "val_unseen", "test_unseen"):
        idx = np.flatnonzero(split == name)
        parts[name] = {"seqs": seqs[idx].tolist(), "genus": codes["genus"][idx], "species": codes["species"][idx]}
    n = len(parts["train"]["seqs"])
    sub = np.arange(n)
    if cfg.curve_max_train is not None and n > cfg.curve_max_train:
        sub = np.sort(np.random.default_rng(cfg.seeds[0]).choice(n, cfg.curve_max_train, replace=False))
    parts["train_lp"] = {k: (np.asarray(v, dtype=object)[sub].tolist() if k == "seqs" else v[sub])
                         for k, v in parts["train"].items()}
    used = ("train_lp", "val", "test", "val_unseen", "test_unseen")
    everything = [s for p in used for s in parts[p]["seqs"]]
    uniq, inverse, _ = unique(everything)
    offsets, start = {}, 0
    for p in used:
        offsets[p] = np.asarray(inverse[start:start + len(parts[p]["seqs"])])
        start += len(parts[p]["seqs"])
    return list(uniq), offsets, parts


def _probe_features(feats, offsets, parts, settings, *, layers_knn: bool) -> dict:
    """1-NN genus (val_unseen and test_unseen queries, the train subsample as keys) for each layer of
    ``feats`` ({layer: features of the distinct barcodes}), and the linear probe of the
    last one (train subsample -> test, l2 chosen on val)."""
    from bioscan_kmer.eval.probes import knn_probe, linear_probe
    from bioscan_kmer.eval.whiten import Whitening

    out = {"knn_test_unseen": {}, "knn_val_unseen": {}, "knn_test_unseen_whitened": {}, "top10_variance": {}}
    for layer, x in feats.items():
        keys = x[offsets["train_lp"]]
        for q in ("val_unseen", "test_unseen"):
            if len(parts[q]["seqs"]):
                r = knn_probe(keys, parts["train_lp"]["genus"], x[offsets[q]], parts[q]["genus"], device=settings.device)
                out[f"knn_{q}"][str(layer)] = 100.0 * r["accuracy_micro"]
        # The diagnostic beside the paper's probe: the same 1-NN on features whitened with the
        # keys' own statistics (no labels), and how much of the keys' variance 10 directions hold.
        white = Whitening.fit(keys)
        out["top10_variance"][str(layer)] = 100.0 * white.top_share(10)
        if len(parts["test_unseen"]["seqs"]):
            r = knn_probe(white(keys), parts["train_lp"]["genus"], white(x[offsets["test_unseen"]]),
                          parts["test_unseen"]["genus"], device=settings.device)
            out["knn_test_unseen_whitened"][str(layer)] = 100.0 * r["accuracy_micro"]
        if not layers_knn:
            break
    last = feats[max(feats)] if -1 not in feats else feats[-1]
    lp = linear_probe(last[offsets["train_lp"]], parts["train_lp"]["species"], last[offsets["test"]],
                      parts["test"]["species"], val_x=last[offsets["val"]], val_y=parts["val"]["species"],
                      l2=settings.linear_l2, max_iter=settings.linear_max_iter, backend=settings.linear_backend,
                      device=settings.device)
    out["linear_probe_species"] = 100.0 * lp["accuracy_micro"]
    return out


def _curve_point(path: Path, data, cfg: BenchmarkConfig, settings) -> dict:
    import torch

    from bioscan_kmer.eval.embeddings import embed_sequences, load_encoder

    uniq, offsets, parts = data
    encoder, tok = load_encoder(path, device=settings.device or "cpu")
    layers = list(range(encoder.config.num_layers + 1))
    feats = embed_sequences(encoder, tok, uniq, batch_size=settings.batch_size, device=settings.device, layer=layers)
    state = torch.load(path, map_location="cpu", weights_only=True)
    res = _probe_features(feats, offsets, parts, settings, layers_knn=True)
    res.update(step=int(state["step"]), tokens_seen=int(state["tokens_seen"]))
    return res


def _curve_baseline(data, cfg: BenchmarkConfig, settings) -> dict:
    from bioscan_kmer.eval.baselines import kmer_frequencies

    uniq, offsets, parts = data
    feats = {0: kmer_frequencies(uniq, k=settings.kmer_k).astype("float32")}
    res = _probe_features(feats, offsets, parts, settings, layers_knn=False)
    return {"knn_test_unseen": res["knn_test_unseen"]["0"], "knn_val_unseen": res["knn_val_unseen"].get("0"),
            "knn_test_unseen_whitened": res["knn_test_unseen_whitened"].get("0"),
            "top10_variance": res["top10_variance"]["0"], "linear_probe_species": res["linear_probe_species"]}


def _eval_settings(cfg: BenchmarkConfig, seed: int):
    from bioscan_kmer.eval.pipeline import EvalSettings

    return EvalSettings(seed=seed, device=cfg.device, progress=cfg.progress, **cfg.eval_settings)


class _FeatureBank:
    """Frozen features of the final encoder, shared by the evaluation seeds.

    The encoder in eval mode is deterministic, so every seed would embed the same barcodes
    to the same vectors: the bank embeds each set of barcodes once, for all the layers the
    report uses in one forward pass (the last one, and the layer chosen on val_unseen).
    On 2 CPU cores that is most of an evaluation's time at real scale."""

    def __init__(self, path: Path, layer: int | None, settings):
        from bioscan_kmer.eval.embeddings import load_encoder

        self.encoder, self.tokenizer = load_encoder(path, device=settings.device or "cpu")
        self.layers = [-1] + ([layer] if layer is not None and layer != self.encoder.config.num_layers else [])
        self.computed = 0  # forward passes over a set of barcodes (one per split and run)
        self._memo: dict[str, dict] = {}

    def features(self, seqs, settings, layer: int = -1):
        from bioscan_kmer.eval.embeddings import embed_sequences

        h = hashlib.sha256()
        for s in seqs:
            h.update(s.encode())
            h.update(b"\n")
        key = h.hexdigest()
        if key not in self._memo:
            self._memo[key] = embed_sequences(self.encoder, self.tokenizer, seqs, batch_size=settings.batch_size,
                                              device=settings.device, progress=settings.progress,
                                              layer=self.layers)
            self.computed += 1
        return self._memo[key][layer]


def _evaluate_seed(out: Path, cfg: BenchmarkConfig, seed: int, layer: int | None, say,
                   bank: _FeatureBank) -> dict:
    from bioscan_kmer.eval.demo import _models
    from bioscan_kmer.eval.pipeline import EncoderModel, evaluate_models
    from bioscan_kmer.eval.report import build_table, write_report

    settings = _eval_settings(cfg, seed)
    table = _read_table(out)
    encoder, tok = bank.encoder, bank.tokenizer
    name = f"{cfg.preset} encoder"
    # Probes that no seed changes run for the first seed only: the edit distance (no training,
    # no sampling) and the linear probes (full-batch L-BFGS from zero on frozen features).
    first = seed == cfg.seeds[0]
    baselines = tuple(b for b in cfg.baselines if first or b != "edit")
    models = _models((name, encoder, tok), baselines, settings)
    models[0].features = lambda seqs, settings: bank.features(seqs, settings, -1)
    if layer is not None and layer != encoder.config.num_layers:
        extra = EncoderModel(f"{name}, layer {layer}", encoder, tok, layer=layer)
        extra.fine_tune = None  # fine-tuning pools the last layer: the row above has it
        extra.linear_probe = False  # the learning curve's question is 1-NN; the row above has the probe
        extra.features = lambda seqs, settings: bank.features(seqs, settings, layer)
        models.insert(1, extra)
    if not first:
        for m in models:
            m.linear_probe = False
    t0 = time.perf_counter()
    run = evaluate_models(table, models, settings)
    run["notes"].append(f"evaluation seed {seed}; total evaluation time {time.perf_counter() - t0:.1f} s")
    folder = out / "eval" / f"seed_{seed}"
    write_report(run, folder, title=f"Benchmark, evaluation seed {seed}")
    return {"table": build_table(run).to_dict(orient="records"), "folder": str(folder),
            "notes": run["notes"], "model_notes": {m: r.get("notes", []) for m, r in run["results"].items()},
            "timings": {m: r.get("timings", {}) for m, r in run["results"].items()}}


# ---- the report -----------------------------------------------------------------------------

def _seed_summary(evals: dict):
    """Mean, spread (half the range) and n of every model x metric over the seeds."""
    import pandas as pd

    frames = [pd.DataFrame(e["table"]).assign(seed=int(s)) for s, e in evals.items()]
    order = list(dict.fromkeys(m for f in frames for m in f["model"]))  # as the first seed lists them
    long = pd.concat(frames).melt(id_vars=["model", "seed"], var_name="metric", value_name="value").dropna()
    g = long.groupby(["model", "metric"], sort=False)["value"]
    summary = pd.DataFrame({"mean": g.mean(), "min": g.min(), "max": g.max(), "n_seeds": g.size()}).reset_index()
    summary["spread"] = (summary["max"] - summary["min"]) / 2
    summary["model"] = pd.Categorical(summary["model"], categories=order, ordered=True)
    return summary.sort_values("model", kind="stable").assign(model=lambda d: d["model"].astype(str))


def _fmt(mean: float, spread: float, n: int) -> str:
    if n < 2:
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {spread:.2f}"


def _curve_figure(curve, baseline: dict, cnn_knn: float | None, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bioscan_kmer._atomic import replacing

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    # A log axis has no 0: the initialisation is drawn at half the first snapshot's tokens.
    first = min((r["tokens_seen"] for r in curve if r["tokens_seen"] > 0), default=2)
    x = [r["tokens_seen"] if r["tokens_seen"] > 0 else first / 2 for r in curve]
    panels = (("1-NN genus, unseen species (%)", "knn_test_unseen", "knn_test_unseen"),
              ("linear probe, species (%)", "linear_probe_species", "linear_probe_species"))
    for ax, (label, key, base_key) in zip(axes, panels):
        if key == "knn_test_unseen":
            last = str(max(int(k) for k in curve[0][key]))
            ax.plot(x, [r[key][last] for r in curve], "o-", color="#1f77b4", label="encoder, last layer (paper)")
            ax.plot(x, [r[key]["0"] for r in curve], "s--", color="#2ca02c", label="encoder, embedding layer")
            white = [r.get("knn_test_unseen_whitened", {}).get(last) for r in curve]
            if all(w is not None for w in white):
                ax.plot(x, white, "^-.", color="#9467bd", label="encoder, last layer whitened (diagnostic)")
            if cnn_knn is not None:
                ax.axhline(cnn_knn, color="#d62728", ls=":", label="CNN (paper)")
        else:
            ax.plot(x, [r[key] for r in curve], "o-", color="#1f77b4", label="encoder, last layer")
        ax.axhline(baseline[base_key], color="#7f7f7f", ls="--", label="4-mer frequency")
        ax.set_xscale("log")
        ax.set_xlabel("pretraining tokens seen (leftmost point: the untrained model)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def _write_report(out: Path, data: Path, cfg: BenchmarkConfig, results: dict) -> dict:
    import pandas as pd

    from bioscan_kmer._atomic import replacing
    from bioscan_kmer.eval.report import markdown_table

    summary = _seed_summary(results["evaluate"])
    metrics = list(dict.fromkeys(summary["metric"]))
    models = list(dict.fromkeys(summary["model"]))
    rows = []
    for m in models:
        row = {"model": m}
        for metric in metrics:
            hit = summary[(summary.model == m) & (summary.metric == metric)]
            row[metric] = "-" if hit.empty else _fmt(hit["mean"].iloc[0], hit["spread"].iloc[0], int(hit["n_seeds"].iloc[0]))
        rows.append(row)
    main = pd.DataFrame(rows)
    with replacing(out / "report.csv") as tmp:
        summary.to_csv(tmp, index=False, float_format="%.4f")

    curve = results.get("curve") or []
    baseline = results.get("curve_baseline")
    lines = [f"# Benchmark: {cfg.preset} encoder on {data.name}", "",
             f"{results['table']['records']:,} records, {results['table']['species']:,} species; "
             f"pretraining set {results['shards']['rows']['pretrain']:,} distinct barcodes "
             f"(splits {', '.join(results['shards']['pretrain_splits'])}).", "",
             "## Results", "",
             f"Percent; mean ± half the range over evaluation seeds {', '.join(map(str, cfg.seeds))} "
             "(one number: one seed, or a probe that no seed changes, run for the first seed only: the "
             "edit distance and the linear probes, full-batch L-BFGS from zero on frozen features). "
             "AMI x 100.", "",
             markdown_table(main), ""]
    paths = {"markdown": out / "report.md", "csv": out / "report.csv"}
    if curve:
        def last(r, key):
            return r.get(key, {}).get(str(max(int(k) for k in r["knn_test_unseen"])))

        cdf = pd.DataFrame([{
            "step": r["step"], "tokens_seen": r["tokens_seen"],
            "1-NN genus unseen (last layer)": last(r, "knn_test_unseen"),
            "1-NN genus unseen (embedding layer)": r["knn_test_unseen"]["0"],
            "1-NN genus unseen (last layer, whitened)": last(r, "knn_test_unseen_whitened"),
            "variance in 10 directions (last layer)": last(r, "top10_variance"),
            "linear probe species": r["linear_probe_species"]} for r in curve])
        with replacing(out / "learning_curve.csv") as tmp:
            cdf.to_csv(tmp, index=False, float_format="%.2f")
        cnn = summary[(summary.model == "CNN (paper)") & (summary.metric == "1-NN genus unseen")]
        cnn_knn = float(cnn["mean"].iloc[0]) if not cnn.empty else None
        _curve_figure(curve, baseline, cnn_knn, out / "learning_curve.png",
                      f"{cfg.preset} encoder on {data.name}: probes along pretraining")
        layer_rows = []
        for r in curve:
            for layer in sorted(r["knn_test_unseen"], key=int):
                layer_rows.append({"step": r["step"], "layer": int(layer),
                                   "1-NN genus val_unseen": r["knn_val_unseen"].get(layer),
                                   "1-NN genus test_unseen": r["knn_test_unseen"][layer],
                                   "1-NN genus test_unseen, whitened": r.get("knn_test_unseen_whitened", {}).get(layer),
                                   "variance in 10 directions": r.get("top10_variance", {}).get(layer)})
        layers = pd.DataFrame(layer_rows)
        with replacing(out / "layers.csv") as tmp:
            layers.to_csv(tmp, index=False, float_format="%.2f")
        paths.update(curve=out / "learning_curve.csv", figure=out / "learning_curve.png", layers=out / "layers.csv")
        lines += ["## Learning curve", "",
                  f"Probes of the snapshots (`run/snapshots/`) with "
                  f"{'at most ' + format(cfg.curve_max_train, ',') + ' train records (a seeded subsample)' if cfg.curve_max_train else 'all train records'}"
                  f" as the 1-NN keys and the linear probe's training set, for the 4-mer-frequency line too "
                  f"(so the curve's numbers are below the full evaluation's when train is larger). "
                  f"4-mer frequency: 1-NN genus unseen {baseline['knn_test_unseen']:.2f}, "
                  f"linear probe species {baseline['linear_probe_species']:.2f}"
                  + (f" (whitened 1-NN {baseline['knn_test_unseen_whitened']:.2f})"
                     if baseline.get("knn_test_unseen_whitened") is not None else "") + ". "
                  "The whitened column is a diagnostic, not the paper's protocol: the same 1-NN after "
                  "PCA whitening fitted on the keys (no labels), so that every direction counts alike; "
                  "beside it, the share of the keys' variance in their 10 largest directions "
                  "(`bioscan_kmer.eval.whiten`).", "",
                  markdown_table(cdf), "",
                  "![learning curve](learning_curve.png)", "",
                  "## 1-NN genus by layer (final weights)", "",
                  "Masked mean of each hidden state (0 = the embedding layer); the layer chosen for the "
                  "extra row of the results table is the best on `val_unseen` queries, never on `test_unseen`.", ""]
        final = layers[layers.step == layers.step.max()].drop(columns="step")
        lines += [markdown_table(final), ""]
    pre = results["pretrain"]
    notes = [f"data: {data} (BOLD public records: CC BY-SA 4.0, boldsystems.org)" if "bold" in data.name.lower()
             else f"data: {data}", *results["table"]["notes"],
             "split sizes: " + ", ".join(f"{k} {v:,}" for k, v in sorted(results["table"]["sizes"].items())),
             f"pretraining: {pre['steps']:,} steps ({pre['how']}), masked-LM loss {pre['first_loss']:.3f} -> "
             f"{pre['last_loss']:.3f}" + (f", validation {pre['val_loss']:.3f}" if pre.get("val_loss") else "")
             + f", {pre['elapsed_s'] / 60:.1f} min; {pre.get('settings') or ''}",
             f"evaluation reports per seed: {', '.join(e['folder'] for e in results['evaluate'].values())}"]
    for e in results["evaluate"].values():
        for model, ts in e["timings"].items():
            notes.append(f"seed {Path(e['folder']).name[5:]}: {model} timings (s): "
                         + ", ".join(f"{k} {v:.0f}" for k, v in ts.items()))
    lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    with replacing(out / "report.md") as tmp:
        Path(tmp).write_text("\n".join(lines), encoding="utf-8")
    return {k: str(v) for k, v in paths.items()}


# ---- the entry point ------------------------------------------------------------------------

def run_benchmark(data, out_dir, config: BenchmarkConfig | None = None, **settings: Any) -> dict:
    """Run (or resume) the whole benchmark on a table of barcodes.

    Parameters
    ----------
    data : path-like
        FASTA, BOLD TSV or BIOSCAN metadata CSV/TSV (gzip-compressed or not), or Parquet.
    out_dir : path-like
        Created; holds every step's output (see the module's docstring) and the report.
    config : BenchmarkConfig, optional
        Or its fields as keyword arguments.

    Returns
    -------
    dict
        Every step's result (``table``, ``shards``, ``pretrain``, ``curve``,
        ``curve_baseline``, ``evaluate`` per seed) and ``report`` (paths).

    Raises
    ------
    UsageError, DataError, DataFileError (UserErrors)
        Bad settings, an unreadable file, a table without species labels.
    """
    if config is None:
        config = BenchmarkConfig(**settings)
    elif settings:
        raise TypeError("give either config or keyword settings, not both")
    cfg = config
    data = Path(os.fspath(data))
    out = Path(os.fspath(out_dir))
    from bioscan_kmer._atomic import check_output_path

    check_output_path(out, directory=True, what="--out")
    out.mkdir(parents=True, exist_ok=True)
    if not data.is_file():
        raise UsageError(f"--data {str(data)!r}: no such file")

    def say(text: str) -> None:
        if cfg.progress:
            from bioscan_kmer.eval.estimate import announce

            announce(text)

    steps = _Steps(out, say)
    results: dict[str, Any] = {}
    table_in = {"data": _fingerprint(data), "split_seed": cfg.split_seed, "unseen_fraction": cfg.unseen_fraction,
                "min_unseen_records": cfg.min_unseen_records}
    say("[1/6] table")
    results["table"] = steps.run("table", table_in, lambda: _make_table(data, out, cfg, say))
    say("[2/6] shards")
    shards_in = {"table": _digest(table_in), "preset": cfg.preset, "pretrain_on_train": cfg.pretrain_on_train}
    results["shards"] = steps.run("shards", shards_in, lambda: _make_shards(out, cfg, say))
    say("[3/6] pretraining")
    length = _pretrain_steps(out, cfg, results["shards"]["rows"]["pretrain"], steps, say)
    pretrain_in = {"shards": _digest(shards_in), "length": length["steps"], "seed": cfg.pretrain_seed,
                   "points": cfg.curve_points, "device": cfg.device}
    for name in ("precision", "batch_size"):  # only when asked for, so that earlier runs' markers still match
        if getattr(cfg, name) is not None:
            pretrain_in[name] = getattr(cfg, name)
    results["pretrain"] = steps.run("pretrain", pretrain_in, lambda: _run_pretraining(out, cfg, length, say))

    say("[4/6] learning curve")
    curve, layer = [], None
    if cfg.curve_points:
        settings0 = _eval_settings(cfg, cfg.seeds[0])
        cached = {}

        def data_once():
            if "d" not in cached:
                cached["d"] = _curve_data(out, cfg)
            return cached["d"]

        curve_in = {"pretrain": _digest(pretrain_in), "max_train": cfg.curve_max_train, "seed": cfg.seeds[0]}
        results["curve_baseline"] = steps.run("curve_baseline", curve_in,
                                              lambda: _curve_baseline(data_once(), cfg, settings0))
        for step in results["pretrain"]["snapshots"]:
            path = out / "run" / "snapshots" / f"step_{step:08d}.pt"
            say(f"learning curve: step {step:,}")
            curve.append(steps.run(f"curve_{step:08d}", {**curve_in, "step": step},
                                   lambda: _curve_point(path, data_once(), cfg, settings0)))
        final = curve[-1]["knn_val_unseen"]
        if final:
            layer = int(max(final, key=lambda k: (final[k], int(k))))
    results["curve"] = curve
    say("[5/6] evaluation" + (f" (extra row: layer {layer}, best on val_unseen)" if layer is not None else ""))
    results["evaluate"] = {}
    # Made when a seed has to run (not when every seed is reused), then shared by the others.
    bank = functools.cache(
        lambda: _FeatureBank(out / "run" / "checkpoint.pt", layer, _eval_settings(cfg, cfg.seeds[0])))

    for seed in cfg.seeds:
        eval_in = {"pretrain": _digest(pretrain_in), "seed": seed, "layer": layer, "baselines": cfg.baselines,
                   "settings": cfg.eval_settings, "first_seed": cfg.seeds[0]}
        results["evaluate"][seed] = steps.run(f"evaluate_seed_{seed}", eval_in,
                                              lambda: _evaluate_seed(out, cfg, seed, layer, say, bank()))
    say("[6/6] report")
    results["report"] = _write_report(out, data, cfg, results)
    say(f"report: {results['report']['markdown']}")
    return results


# ---- the command line -----------------------------------------------------------------------

def register(subparsers) -> argparse.ArgumentParser:
    """Add ``benchmark`` to the ``bioscan-kmer`` parser."""
    from bioscan_kmer._options import int_option

    p = subparsers.add_parser(
        "benchmark", help="the paper's whole protocol on one table: pretrain, learning curve, every probe",
        description="Clean a table of barcodes, hold out unseen species, pretrain an encoder (the preset's "
                    "recipe, every k-mer frame), probe snapshots along the run, evaluate every probe against "
                    "the CNN, 4-mer-frequency and edit-distance baselines, and write one report. A rerun "
                    "reuses finished steps.")
    p.add_argument("--data", required=True, help="FASTA, BOLD TSV or BIOSCAN CSV (gzip or not) of barcodes "
                   "with genus and species")
    p.add_argument("--out", required=True, help="output directory (created; a rerun resumes it)")
    p.add_argument("--preset", default="small", help="encoder preset (default: %(default)s)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int_option(1), help="pretraining epochs (default: the preset recipe's)")
    length.add_argument("--steps", type=int_option(1), help="pretraining steps")
    length.add_argument("--time-budget", type=parse_duration, metavar="DURATION",
                        help="pretraining time, e.g. 45m or 1h: the steps that fit, from a short timed run")
    p.add_argument("--seeds", default="0,1", help="evaluation seeds, comma-separated (default: %(default)s)")
    p.add_argument("--pretrain-seed", type=int_option(0), default=0, help="seed of the pretraining run")
    p.add_argument("--split-seed", type=int_option(0), default=0, help="seed of the unseen species and the partition")
    p.add_argument("--unseen-fraction", type=float, default=0.3, help="share of the eligible species held out "
                   "as unseen (default: %(default)s)")
    p.add_argument("--curve-points", type=int_option(0), default=8, help="snapshots on the learning curve "
                   "(default: %(default)s; 0: none)")
    p.add_argument("--baselines", default="cnn,kmer,edit", help="comma-separated subset of cnn,kmer,edit, or none")
    p.add_argument("--cnn-max-train", type=int_option(1), help="train records of the CNN (seeded subsample)")
    p.add_argument("--finetune-max-train", type=int_option(1), help="train records of encoder fine-tuning")
    p.add_argument("--edit-max-queries", type=int_option(1), help="queries of each edit-distance probe "
                   "(seeded subsample)")
    p.add_argument("--curve-max-train", type=int_option(100), default=10_000, help="train records of the "
                   "learning curve's probes (default: %(default)s)")
    p.add_argument("--device", help="torch device (default: cuda when available)")
    p.add_argument("--threads", type=int_option(1), help="CPU threads for torch")
    p.add_argument("--precision", choices=("fp32", "tf32", "bf16", "auto"),
                   help="pretraining precision instead of the recipe's (BarcodeBERT's: fp32); bf16 on a GPU")
    p.add_argument("--compile", action="store_true", help="pretrain under torch.compile")
    p.add_argument("--batch-size", type=int_option(1), help="pretraining batch instead of the recipe's "
                   "(BarcodeBERT's lr rule scales the rate with it)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd)
    return p


def _cmd(args) -> int:
    from bioscan_kmer.model.config import PRESETS

    if args.preset not in PRESETS:
        raise UsageError(f"--preset: choose from {', '.join(sorted(PRESETS))}, got {args.preset!r}")
    try:
        seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    except ValueError:
        raise UsageError(f"--seeds: expected integers separated by commas, got {args.seeds!r}") from None
    baselines = () if args.baselines.strip().lower() == "none" else tuple(
        b.strip().lower() for b in args.baselines.split(",") if b.strip())
    overrides = {k: v for k, v in (("cnn_max_train", args.cnn_max_train),
                                   ("finetune_max_train", args.finetune_max_train),
                                   ("edit_max_queries", args.edit_max_queries)) if v is not None}
    cfg = BenchmarkConfig(preset=args.preset, epochs=args.epochs, steps=args.steps, time_budget=args.time_budget,
                          seeds=seeds, pretrain_seed=args.pretrain_seed, split_seed=args.split_seed,
                          unseen_fraction=args.unseen_fraction, curve_points=args.curve_points,
                          curve_max_train=args.curve_max_train,
                          baselines=baselines, eval_settings=overrides, device=args.device, threads=args.threads,
                          precision=args.precision, compile=args.compile, batch_size=args.batch_size,
                          progress=not args.quiet)
    result = run_benchmark(args.data, args.out, cfg)
    print(Path(result["report"]["markdown"]).read_text(encoding="utf-8"))
    print("wrote " + ", ".join(result["report"].values()))
    return 0
