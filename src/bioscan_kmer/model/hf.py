"""Convert between our encoder and Hugging Face BERT checkpoints, without ``transformers``.

Two generations of BarcodeBERT checkpoints load, from a ``.bin``/``.pt`` file, a
``.safetensors`` file or a Hugging Face model directory (``config.json`` + weights):

- **BIOSCAN-5M / BarcodeBERT 2** (``barcodebert/pretraining.py``): a
  ``BertForTokenClassification`` whose token classifier is the MLM head onto the 4^k
  k-mer classes, vocabulary ``[MASK], [UNK], k-mers`` (4^k + 2 rows: our ``barcodebert``
  tokenizer preset exactly). Its training checkpoints (``{"model": ..., "bert_config": ...}``)
  load too.
- **The first BarcodeBERT paper** (``scripts/BarcodeBERT/MGPU_MLM_train.py``; the original's
  ``barcodebert/io.py`` calls it "the published format"): a ``BertForMaskedLM`` over
  4^k + 3 rows built by torchtext as ``<MASK>, <CLS>, <UNK>``, then the k-mers in
  lexicographic (ACGT) order. Its training masked with id 1 (``<CLS>``) and never used
  row 0 (a zero row: ``BertConfig``'s ``pad_token_id=0``). Loading drops row 0, which makes
  the rows exactly our ``barcodebert`` layout (``[MASK]`` = their id 1, ``[UNK]`` = their 2,
  k-mer ids one lower); ``layout="barcodebert-v1"`` on export puts a zero row back.

Other BERTs load as ``BertModel`` (-> :class:`~bioscan_kmer.model.encoder.Encoder`),
``BertForMaskedLM`` or ``BertForTokenClassification`` (-> :class:`~bioscan_kmer.model.encoder.MaskedLM`),
and export back key for key. The mapping is a table of names plus one transformation:
Hugging Face keeps Q, K and V as three linear layers, we fuse them into one.
Configurations are checked against the weights before any model is allocated.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

import torch

from .checkpoint import FORMAT, CheckpointError, check_state_dict, load_model, read_torch_file
from .config import ConfigError, EncoderConfig
from .encoder import Encoder, MaskedLM

__all__ = ["load_hf_bert_state_dict", "to_hf_bert_state_dict", "to_hf_bert_config", "read_hf_checkpoint",
           "load_pretrained", "LAYOUTS"]

#: Vocabulary layouts of Hugging Face weights: ours (the tokenizer's ids), or the first
#: BarcodeBERT paper's 4^k + 3 rows.
LAYOUTS = ("ours", "barcodebert-v1")

# Ours -> Hugging Face, for the parts that are a plain rename. Per-layer names use {i}.
_EMBEDDING_NAMES = {
    "embeddings.tokens.weight": "embeddings.word_embeddings.weight",
    "embeddings.positions.weight": "embeddings.position_embeddings.weight",
    "embeddings.token_types.weight": "embeddings.token_type_embeddings.weight",
    "embeddings.norm.weight": "embeddings.LayerNorm.weight",
    "embeddings.norm.bias": "embeddings.LayerNorm.bias",
    "pooler.weight": "pooler.dense.weight",
    "pooler.bias": "pooler.dense.bias",
}
_LAYER_NAMES = {
    "attn.out": "attention.output.dense",
    "attn_norm": "attention.output.LayerNorm",
    "ffn_in": "intermediate.dense",
    "ffn_out": "output.dense",
    "ffn_norm": "output.LayerNorm",
}
_QKV = ("query", "key", "value")
_CLASSIFIER_NAMES = {"head.proj.weight": "classifier.weight", "head.proj.bias": "classifier.bias"}
_LM_NAMES = {
    "head.dense.weight": "cls.predictions.transform.dense.weight",
    "head.dense.bias": "cls.predictions.transform.dense.bias",
    "head.norm.weight": "cls.predictions.transform.LayerNorm.weight",
    "head.norm.bias": "cls.predictions.transform.LayerNorm.bias",
    "head.bias": "cls.predictions.bias",
}
# Buffers that old `transformers` versions saved; they carry no learned state.
_IGNORED = re.compile(r"(^|\.)embeddings\.(position_ids|token_type_ids)$")


# Every tensor indexed by token id; the first paper's layout has one row more at the top.
_VOCAB_ROWS = ("embeddings.word_embeddings.weight", "cls.predictions.bias",
               "cls.predictions.decoder.weight", "cls.predictions.decoder.bias")
_WORDS = "embeddings.word_embeddings.weight"


def _normalise_keys(state_dict: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Drop wrapper prefixes (DDP's ``module.``, a wrapping module's name) and TF-era
    LayerNorm names (gamma/beta)."""
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"expected a state dict (a mapping of names to tensors), got {type(state_dict).__name__}")
    words = [k for k in state_dict if isinstance(k, str) and k.endswith(_WORDS)]
    if not words:
        raise CheckpointError("not a BERT state dict: no embeddings.word_embeddings.weight")
    # "module.bert.embeddings..." -> wrapper "module."; BERT's own "bert." prefix stays.
    wrapper = min(words, key=len)[: -len(_WORDS)]
    wrapper = wrapper[: -len("bert.")] if wrapper.endswith("bert.") else wrapper
    out = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"state dict entry {key!r} is a {type(value).__name__}, not a tensor")
        if wrapper and key.startswith(wrapper):
            key = key[len(wrapper):]
        key = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", key)
        key = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", key)
        if _IGNORED.search(key):
            continue
        out[key] = value
    return out


def _detect(sd: Mapping[str, torch.Tensor]) -> tuple[str, str]:
    """Return (kind, prefix): kind in {"base", "masked_lm", "token_classification"}."""
    if any(k.startswith("cls.predictions.") for k in sd):
        kind = "masked_lm"
    elif "classifier.weight" in sd:
        kind = "token_classification"
    else:
        kind = "base"
    prefix = "bert." if f"bert.{_WORDS}" in sd else ""
    if f"{prefix}{_WORDS}" not in sd:
        raise CheckpointError(f"not a BERT state dict: no {_WORDS}")
    if kind != "base" and not prefix:
        raise CheckpointError(f"a {kind} state dict must hold its encoder under 'bert.'")
    if kind == "token_classification" and any(k.startswith("bert.pooler.") for k in sd):
        raise CheckpointError("this looks like BertForSequenceClassification (pooler + classifier); "
                              "only BertModel, BertForMaskedLM and BertForTokenClassification load")
    return kind, prefix


def _vocab(k: int, preset: str, n_nucleotide: bool) -> dict[str, Any]:
    n_specials = 2 if preset == "barcodebert" else 5
    return {
        "vocab_size": (5 if n_nucleotide else 4) ** k + n_specials, "k": k, "tokenizer_preset": preset,
        "n_nucleotide": n_nucleotide, "first_kmer_id": n_specials, "num_kmers": 4**k,
        "pad_token_id": None if preset == "barcodebert" else 0,
        "unk_token_id": 1, "mask_token_id": 0 if preset == "barcodebert" else 4,
    }


def _infer_vocab(vocab_size: int, num_kmers: int | None) -> tuple[dict[str, Any], str]:
    """Guess the tokenizer (and the layout) from the vocabulary size."""
    for k in range(1, 13):
        if num_kmers is not None and num_kmers != 4**k:
            continue
        for preset in ("barcodebert", "bert"):
            for n_nucleotide in (False, True):
                vocab = _vocab(k, preset, n_nucleotide)
                if vocab["vocab_size"] == vocab_size:
                    return vocab, "ours"
        if vocab_size == 4**k + 3:
            return _vocab(k, "barcodebert", False), "barcodebert-v1"
    raise ConfigError(
        f"cannot tell the tokenizer from vocab_size {vocab_size}"
        + (f" and {num_kmers} output classes" if num_kmers is not None else "")
        + "; pass config= with the vocabulary"
    )


def _layout_for(config: EncoderConfig, rows: int) -> str:
    """The layout of weights with ``rows`` token rows for ``config``'s vocabulary."""
    if rows == config.vocab_size + 1 and config.tokenizer_preset == "barcodebert" and not config.n_nucleotide:
        return "barcodebert-v1"
    return "ours"


def _from_v1(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # Row 0 (<MASK>) was never used; rows 1.. are [MASK] (their <CLS>), [UNK], the k-mers.
    return {k: (v[1:] if k.removeprefix("bert.") in _VOCAB_ROWS else v) for k, v in sd.items()}


def _to_v1(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: (torch.cat([torch.zeros_like(v[:1]), v]) if k.removeprefix("bert.") in _VOCAB_ROWS else v)
            for k, v in sd.items()}


def _infer_config(sd: Mapping[str, torch.Tensor], kind: str, prefix: str, num_heads: int | None,
                  hf_config: Mapping[str, Any] | None) -> tuple[EncoderConfig, str]:
    hf = dict(hf_config or {})
    act = hf.get("hidden_act", "gelu")
    if act != "gelu":
        raise ConfigError(f"hidden_act {act!r} is not supported (only exact 'gelu', as in BERT)")
    words = sd[f"{prefix}{_WORDS}"]
    num_kmers = sd["classifier.weight"].shape[0] if kind == "token_classification" else None
    vocab, layout = _infer_vocab(words.shape[0], num_kmers)
    heads = num_heads if num_heads is not None else hf.get("num_attention_heads")
    if heads is None and layout == "barcodebert-v1" and words.shape[1] == 768:
        # The first paper built every model from BertConfig's defaults (12 heads).
        heads = 12
    if heads is None:
        raise ConfigError("the number of attention heads cannot be read off the weights; "
                          "pass num_heads= or hf_config= (the model's config.json)")
    layer_ids = {int(m.group(1)) for k in sd
                 if (m := re.match(rf"{re.escape(prefix)}encoder\.layer\.(\d+)\.", k))}
    if not layer_ids:
        raise CheckpointError("the state dict holds no encoder layers")
    ffn = sd.get(f"{prefix}encoder.layer.0.intermediate.dense.weight")
    positions = sd.get(f"{prefix}embeddings.position_embeddings.weight")
    if ffn is None or positions is None:
        raise CheckpointError("the state dict lacks encoder.layer.0.intermediate.dense.weight or the "
                              "position embeddings")
    types = sd.get(f"{prefix}embeddings.token_type_embeddings.weight")
    config = EncoderConfig(
        hidden_size=words.shape[1],
        num_layers=max(layer_ids) + 1,
        num_heads=int(heads),
        intermediate_size=ffn.shape[0],
        max_position_embeddings=positions.shape[0],
        dropout=float(hf.get("hidden_dropout_prob", 0.1)),
        attention_dropout=float(hf.get("attention_probs_dropout_prob", 0.1)),
        layer_norm_eps=float(hf.get("layer_norm_eps", 1e-12)),
        type_vocab_size=0 if types is None else types.shape[0],
        pooler=f"{prefix}pooler.dense.weight" in sd,
        head="lm" if kind == "masked_lm" else "classifier",
        initializer_range=float(hf.get("initializer_range", 0.02)),
        **vocab,
    )
    return config, layout


def load_hf_bert_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    config: EncoderConfig | None = None,
    *,
    num_heads: int | None = None,
    hf_config: Mapping[str, Any] | None = None,
) -> Encoder | MaskedLM:
    """Build our model from a Hugging Face BERT state dict.

    Parameters
    ----------
    state_dict : mapping of str to Tensor
        From ``BertModel``, ``BertForMaskedLM`` or ``BertForTokenClassification`` (keys may
        carry a wrapper prefix such as DDP's ``module.``; old ``position_ids`` buffers are
        ignored), in our vocabulary layout or the first BarcodeBERT paper's 4^k + 3 rows
        (detected from the row count; see the module docstring).
    config : EncoderConfig, optional
        The architecture and vocabulary. Without it, sizes are read off the weights, the
        tokenizer is inferred from the vocabulary size, and the number of heads comes from
        ``num_heads`` or ``hf_config`` (12 for the first paper's models, which all used
        BERT's defaults). ``config.head`` and ``config.pooler`` are set to what the state
        dict holds.
    num_heads : int, optional
        Attention heads, when ``config`` is not given.
    hf_config : mapping, optional
        The model's Hugging Face ``config.json`` as a dict (heads, eps, dropout).

    Returns
    -------
    Encoder or MaskedLM
        ``Encoder`` for a ``BertModel`` state dict, ``MaskedLM`` for the two others; in eval
        mode, on the CPU, float32.

    Raises
    ------
    CheckpointError (a ValueError)
        Unknown or missing keys, shapes that disagree with ``config`` (checked before the
        model is allocated), untied LM decoder.
    ConfigError (a ValueError)
        A vocabulary or activation that cannot be inferred or is not supported.
    """
    sd = _normalise_keys(state_dict)
    kind, prefix = _detect(sd)
    if config is None:
        config, layout = _infer_config(sd, kind, prefix, num_heads, hf_config)
    else:
        if not isinstance(config, EncoderConfig):
            raise TypeError(f"config must be an EncoderConfig, got {type(config).__name__}")
        config = config.replace(
            head="lm" if kind == "masked_lm" else "classifier",
            pooler=f"{prefix}pooler.dense.weight" in sd,
        )
        layout = _layout_for(config, sd[f"{prefix}{_WORDS}"].shape[0])
    if kind == "masked_lm":
        # BERT ties the decoder to the word embedding; we only store the embedding, so
        # refuse an untied decoder rather than dropping half of it.
        decoder = sd.get("cls.predictions.decoder.weight")
        if decoder is not None and not torch.equal(decoder, sd[f"bert.{_WORDS}"]):
            raise CheckpointError("cls.predictions.decoder.weight is not tied to the word embedding")
        bias = sd.get("cls.predictions.decoder.bias")
        if bias is not None and "cls.predictions.bias" in sd and not torch.equal(bias, sd["cls.predictions.bias"]):
            raise CheckpointError("cls.predictions.decoder.bias differs from cls.predictions.bias")
    if layout == "barcodebert-v1":
        sd = _from_v1(sd)
    with torch.device("meta"):
        skeleton: Encoder | MaskedLM = Encoder(config) if kind == "base" else MaskedLM(config)
    ours = _hf_names(skeleton, prefix)  # our key -> HF key(s)
    converted: dict[str, torch.Tensor] = {}
    used = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"} if kind == "masked_lm" else set()
    for our_key, hf_keys in ours.items():
        missing = [k for k in hf_keys if k not in sd]
        if missing:
            raise CheckpointError(f"state dict lacks {', '.join(missing)}")
        parts = [sd[k].detach() for k in hf_keys]
        shapes = {tuple(p.shape[1:]) for p in parts}
        if len(shapes) > 1:
            raise CheckpointError(f"{', '.join(hf_keys)} have different shapes")
        converted[our_key] = torch.cat(parts, dim=0) if len(parts) > 1 else parts[0]
        used.update(hf_keys)
    unused = sorted(set(sd) - used)
    if unused:
        raise CheckpointError(f"unexpected keys in the state dict: {', '.join(unused[:8])}"
                              + (" ..." if len(unused) > 8 else ""))
    try:
        check_state_dict(skeleton, converted, what="the Hugging Face weights")
    except CheckpointError as exc:
        # Name the Hugging Face keys, which are what the user has in hand.
        text = str(exc)
        for our_key, hf_keys in ours.items():
            text = text.replace(f"{our_key} has", f"{hf_keys[0]} has")
        raise CheckpointError(text) from None
    model = Encoder(config) if kind == "base" else MaskedLM(config)
    model.load_state_dict({k: v.to("cpu", torch.float32) for k, v in converted.items()}, strict=True)
    return model.eval()


def to_hf_bert_state_dict(model: Encoder | MaskedLM, *, layout: str = "ours",
                          pooler: bool = True) -> dict[str, torch.Tensor]:
    """Export our weights under Hugging Face names.

    An ``Encoder`` gives a ``BertModel`` state dict (pooler included, so that the default
    ``BertModel`` loads it strictly); a ``MaskedLM`` gives a ``BertForTokenClassification``
    (``head="classifier"``) or ``BertForMaskedLM`` (``head="lm"``, with the tied decoder
    written out as BERT does) state dict.

    Parameters
    ----------
    model : Encoder or MaskedLM
        Possibly wrapped by DDP or ``torch.compile`` (the wrapper is looked through).
    layout : {"ours", "barcodebert-v1"}
        "barcodebert-v1" writes the first BarcodeBERT paper's 4^k + 3 token rows (a zero
        row 0 above ours), for its ``BertForMaskedLM(BertConfig(vocab_size=4**k + 3))``; it
        needs our ``barcodebert`` vocabulary without N.
    pooler : bool
        For an ``Encoder`` without a pooler of its own: write BERT's pooler as the identity
        (weight I, bias 0, so ``pooler_output = tanh(h[:, 0])``) rather than leave it out.
        MLM pretraining never trains a pooler; use mean pooling (``Encoder.embed``) for
        sequence embeddings either way. False gives the state dict of
        ``BertModel(add_pooling_layer=False)``.

    Returns
    -------
    dict of str to Tensor
        CPU float tensors, contiguous, not sharing storage with the model.
    """
    model = _unwrap(model)
    if not isinstance(model, (Encoder, MaskedLM)):
        raise TypeError(f"expected an Encoder or MaskedLM, got {type(model).__name__}")
    _check_layout(model.config, layout)
    prefix = "" if isinstance(model, Encoder) else "bert."
    ours = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for our_key, hf_keys in _hf_names(model, prefix).items():
        value = ours[our_key].detach().to("cpu")
        parts = value.chunk(len(hf_keys), dim=0) if len(hf_keys) > 1 else [value]
        for hf_key, part in zip(hf_keys, parts):
            out[hf_key] = part.clone().contiguous()
    if isinstance(model, Encoder) and not model.config.pooler and pooler:
        C = model.config.hidden_size
        out["pooler.dense.weight"] = torch.eye(C, dtype=out[_WORDS].dtype)
        out["pooler.dense.bias"] = torch.zeros(C, dtype=out[_WORDS].dtype)
    if isinstance(model, MaskedLM) and model.config.head == "lm":
        out["cls.predictions.decoder.weight"] = out[f"bert.{_WORDS}"].clone()
        out["cls.predictions.decoder.bias"] = out["cls.predictions.bias"].clone()
    return _to_v1(out) if layout == "barcodebert-v1" else out


def _check_layout(config: EncoderConfig, layout: str) -> None:
    if layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "barcodebert-v1" and (config.tokenizer_preset != "barcodebert" or config.n_nucleotide):
        raise ConfigError("the barcodebert-v1 layout needs the barcodebert vocabulary without N")


def to_hf_bert_config(config: EncoderConfig, *, layout: str = "ours") -> dict[str, Any]:
    """A Hugging Face ``BertConfig`` dict (``BertConfig(**d)``) for the same architecture.

    BERT always adds a token-type embedding, so a config with ``type_vocab_size=0`` (our
    ``tiny`` preset) has no exact BERT equivalent and is refused. ``layout`` as for
    :func:`to_hf_bert_state_dict`.
    """
    if config.type_vocab_size == 0:
        raise ConfigError("BERT always has token-type embeddings; this config has type_vocab_size=0")
    _check_layout(config, layout)
    v1 = layout == "barcodebert-v1"
    return {
        "model_type": "bert",
        "vocab_size": config.vocab_size + (1 if v1 else 0),
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "intermediate_size": config.intermediate_size,
        "hidden_act": "gelu",
        "hidden_dropout_prob": config.dropout,
        "attention_probs_dropout_prob": config.attention_dropout,
        "max_position_embeddings": config.max_position_embeddings,
        "type_vocab_size": config.type_vocab_size,
        "initializer_range": config.initializer_range,
        "layer_norm_eps": config.layer_norm_eps,
        "pad_token_id": 0 if v1 or config.pad_token_id is None else config.pad_token_id,
        "num_labels": config.num_kmers,
    }


# Weight files of a Hugging Face model directory, in the order transformers prefers them.
_HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def read_hf_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """Read Hugging Face BERT weights and, where there is one, their ``config.json``.

    Parameters
    ----------
    path : path-like
        A ``.safetensors`` file; a ``.bin``/``.pt``/``.pth`` file holding a state dict (or
        BarcodeBERT's training checkpoint ``{"model": ..., "bert_config": ...}``, or
        ``{"state_dict": ...}``); or a model directory with ``config.json`` and
        ``model.safetensors`` / ``pytorch_model.bin`` (sharded ones with their
        ``*.index.json``).

    Returns
    -------
    (state_dict, hf_config or None)

    Raises
    ------
    FileNotFoundError
        No such file, or a directory without weights.
    CheckpointError (a ValueError)
        A file that cannot be read safely, or holds no state dict.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    hf_config = None
    if path.is_dir():
        config_file = path / "config.json"
        if config_file.is_file():
            try:
                hf_config = json.loads(config_file.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise CheckpointError(f"{config_file} is not valid JSON ({exc})") from None
            if not isinstance(hf_config, dict):
                raise CheckpointError(f"{config_file} does not hold a JSON object")
        files = _weight_files(path)
    else:
        files = [path]
    sd: dict[str, Any] = {}
    for file in files:
        part, bert_config = _state_dict_of(_read_weights(file), file)
        sd.update(part)
        hf_config = hf_config if hf_config is not None else bert_config
    return sd, hf_config


def _state_dict_of(content: Any, file: Path) -> tuple[Mapping[str, Any], dict[str, Any] | None]:
    """The state dict in a weight file's content, and the ``bert_config`` stored beside it."""
    bert_config = None
    if isinstance(content, Mapping):
        if isinstance(content.get("bert_config"), Mapping):
            bert_config = dict(content["bert_config"])
        for key in ("model", "state_dict"):
            if isinstance(content.get(key), Mapping):
                content = content[key]
                break
    if not isinstance(content, Mapping):
        raise CheckpointError(f"{file} holds a {type(content).__name__}, not a state dict")
    return content, bert_config


def _weight_files(directory: Path) -> list[Path]:
    for name in _HF_WEIGHTS:
        if (directory / name).is_file():
            return [directory / name]
        index = directory / f"{name}.index.json"
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise CheckpointError(f"{index} is not a weight index ({exc})") from None
            files = [directory / shard for shard in shards]
            for file in files:
                if file.parent != directory or not file.is_file():
                    raise CheckpointError(f"{index} names a missing or outside file: {file.name}")
            return files
    raise FileNotFoundError(f"{directory} holds none of {', '.join(_HF_WEIGHTS)} (a Hugging Face "
                            "model directory) nor a checkpoint.pt")


def _read_weights(file: Path) -> Any:
    if file.suffix == ".safetensors":
        try:
            from safetensors import SafetensorError
            from safetensors.torch import load_file
        except ImportError:
            raise ImportError(f"reading {file} needs the safetensors package: "
                              "pip install 'bioscan-kmer[train]'") from None
        try:
            return load_file(str(file))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{file} is not a readable .safetensors file ({' '.join(str(exc).split())})") from None
    return read_torch_file(file)


def load_pretrained(path: str | os.PathLike, *, config: EncoderConfig | None = None,
                    num_heads: int | None = None) -> tuple[Encoder | MaskedLM, dict[str, Any] | None]:
    """Load any encoder checkpoint: ours, or Hugging Face BERT weights of either BarcodeBERT
    generation (see the module docstring).

    Parameters
    ----------
    path : path-like
        Our checkpoint (file or run directory), or what :func:`read_hf_checkpoint` reads.
    config : EncoderConfig, optional
        Architecture for Hugging Face weights (e.g. ``get_preset("bioscan5m-8-4-4")``);
        ignored for ours, which carry their own.
    num_heads : int, optional
        Attention heads of Hugging Face weights without ``config`` or ``config.json``.

    Returns
    -------
    (model, tokenizer_config)
        The model in eval mode on the CPU (``MaskedLM``, or ``Encoder`` for ``BertModel``
        weights), and the tokenizer configuration our checkpoints store (None for Hugging
        Face weights, which do not record theirs).

    Raises
    ------
    FileNotFoundError
        No such file or directory.
    CheckpointError (a ValueError)
        Not a checkpoint (one line, whatever the file is), damaged, or weights that do not
        fit their configuration.
    ConfigError (a ValueError)
        A vocabulary or architecture that cannot be inferred.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    file = path / "checkpoint.pt" if path.is_dir() and (path / "checkpoint.pt").is_file() else path
    if file.is_file() and file.suffix != ".safetensors":
        content = read_torch_file(file)
        if isinstance(content, Mapping) and content.get("format") == FORMAT:
            return load_model(content, name=str(file)), _tokenizer_config(content.get("tokenizer"))
        sd, hf_config = _state_dict_of(content, file)
    else:
        sd, hf_config = read_hf_checkpoint(path)
    return load_hf_bert_state_dict(sd, config, num_heads=num_heads, hf_config=hf_config), None


def _tokenizer_config(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    return json.loads(value) if isinstance(value, str) else dict(value)


def _hf_names(model: Encoder | MaskedLM, prefix: str) -> dict[str, list[str]]:
    """Map each of our state-dict keys to the HF key(s) it is made of."""
    config = model.config
    enc = "" if isinstance(model, Encoder) else "encoder."
    names: dict[str, list[str]] = {}
    for ours, theirs in _EMBEDDING_NAMES.items():
        if ours.startswith("embeddings.token_types") and not config.type_vocab_size:
            continue
        if ours.startswith("pooler") and not config.pooler:
            continue
        names[enc + ours] = [prefix + theirs]
    for i in range(config.num_layers):
        hf_layer = f"{prefix}encoder.layer.{i}."
        for p in ("weight", "bias"):
            names[f"{enc}blocks.{i}.attn.qkv.{p}"] = [f"{hf_layer}attention.self.{n}.{p}" for n in _QKV]
            for ours, theirs in _LAYER_NAMES.items():
                names[f"{enc}blocks.{i}.{ours}.{p}"] = [f"{hf_layer}{theirs}.{p}"]
    if isinstance(model, MaskedLM):
        table = _CLASSIFIER_NAMES if config.head == "classifier" else _LM_NAMES
        names.update({ours: [theirs] for ours, theirs in table.items()})
    return names


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """Look through DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model
