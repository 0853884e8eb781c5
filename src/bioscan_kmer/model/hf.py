"""Convert between our encoder and Hugging Face BERT state dicts, without ``transformers``.

BarcodeBERT checkpoints are published as the state dict of a ``transformers``
``BertForTokenClassification`` (its MLM head is the token classifier onto the 4^k k-mer
classes); other models use ``BertForMaskedLM`` or a bare ``BertModel``. All three load into
:class:`~bioscan_kmer.model.encoder.Encoder` / :class:`~bioscan_kmer.model.encoder.MaskedLM`
and export back key for key. The mapping is a table of names plus one transformation:
Hugging Face keeps Q, K and V as three linear layers, we fuse them into one.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch

from .config import EncoderConfig
from .encoder import Encoder, MaskedLM

__all__ = ["load_hf_bert_state_dict", "to_hf_bert_state_dict", "to_hf_bert_config"]

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


def _normalise_keys(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop wrapper prefixes (DDP's ``module.``) and TF-era LayerNorm names (gamma/beta)."""
    out = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"state dict entry {key!r} is a {type(value).__name__}, not a tensor")
        if key.startswith("module."):
            key = key[len("module."):]
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
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in sd else ""
    if f"{prefix}embeddings.word_embeddings.weight" not in sd:
        raise ValueError("not a BERT state dict: no embeddings.word_embeddings.weight")
    if kind != "base" and not prefix:
        raise ValueError(f"a {kind} state dict must hold its encoder under 'bert.'")
    if kind == "token_classification" and any(k.startswith("bert.pooler.") for k in sd):
        raise ValueError("this looks like BertForSequenceClassification (pooler + classifier); "
                         "only BertModel, BertForMaskedLM and BertForTokenClassification load")
    return kind, prefix


def _infer_vocab(vocab_size: int, num_kmers: int | None) -> dict[str, Any]:
    """Guess the tokenizer from the vocabulary size (both presets, with/without N)."""
    for k in range(1, 13):
        for preset, n_specials in (("barcodebert", 2), ("bert", 5)):
            for n_nucleotide, alphabet in ((False, 4), (True, 5)):
                if vocab_size != alphabet**k + n_specials:
                    continue
                if num_kmers is not None and num_kmers != 4**k:
                    continue
                return {
                    "vocab_size": vocab_size, "k": k, "tokenizer_preset": preset,
                    "n_nucleotide": n_nucleotide, "first_kmer_id": n_specials, "num_kmers": 4**k,
                    "pad_token_id": None if preset == "barcodebert" else 0,
                    "unk_token_id": 1, "mask_token_id": 0 if preset == "barcodebert" else 4,
                }
    raise ValueError(
        f"cannot tell the tokenizer from vocab_size {vocab_size}"
        + (f" and {num_kmers} output classes" if num_kmers is not None else "")
        + "; pass config= with the vocabulary"
    )


def _infer_config(sd: Mapping[str, torch.Tensor], kind: str, prefix: str, num_heads: int | None,
                  hf_config: Mapping[str, Any] | None) -> EncoderConfig:
    hf = dict(hf_config or {})
    act = hf.get("hidden_act", "gelu")
    if act != "gelu":
        raise ValueError(f"hidden_act {act!r} is not supported (only exact 'gelu', as in BERT)")
    heads = num_heads if num_heads is not None else hf.get("num_attention_heads")
    if heads is None:
        raise ValueError("the number of attention heads cannot be read off the weights; "
                         "pass num_heads= or hf_config= (the model's config.json)")
    words = sd[f"{prefix}embeddings.word_embeddings.weight"]
    layer_ids = {int(m.group(1)) for k in sd
                 if (m := re.match(rf"{re.escape(prefix)}encoder\.layer\.(\d+)\.", k))}
    if not layer_ids:
        raise ValueError("the state dict holds no encoder layers")
    num_kmers = sd["classifier.weight"].shape[0] if kind == "token_classification" else None
    vocab = _infer_vocab(words.shape[0], num_kmers)
    types = sd.get(f"{prefix}embeddings.token_type_embeddings.weight")
    dropout = float(hf.get("hidden_dropout_prob", 0.1))
    return EncoderConfig(
        hidden_size=words.shape[1],
        num_layers=max(layer_ids) + 1,
        num_heads=int(heads),
        intermediate_size=sd[f"{prefix}encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=sd[f"{prefix}embeddings.position_embeddings.weight"].shape[0],
        dropout=dropout,
        attention_dropout=float(hf.get("attention_probs_dropout_prob", 0.1)),
        layer_norm_eps=float(hf.get("layer_norm_eps", 1e-12)),
        type_vocab_size=0 if types is None else types.shape[0],
        pooler=f"{prefix}pooler.dense.weight" in sd,
        head="lm" if kind == "masked_lm" else "classifier",
        initializer_range=float(hf.get("initializer_range", 0.02)),
        **vocab,
    )


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
        carry DDP's ``module.`` prefix; old ``position_ids`` buffers are ignored).
    config : EncoderConfig, optional
        The architecture and vocabulary. Without it, sizes are read off the weights, the
        tokenizer is inferred from the vocabulary size, and the number of heads comes from
        ``num_heads`` or ``hf_config``. ``config.head`` and ``config.pooler`` are set to
        what the state dict holds.
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
    ValueError
        Unknown or missing keys, shapes that disagree with ``config``, untied LM decoder.
    """
    sd = _normalise_keys(state_dict)
    kind, prefix = _detect(sd)
    if config is None:
        config = _infer_config(sd, kind, prefix, num_heads, hf_config)
    else:
        if not isinstance(config, EncoderConfig):
            raise TypeError(f"config must be an EncoderConfig, got {type(config).__name__}")
        config = config.replace(
            head="lm" if kind == "masked_lm" else "classifier",
            pooler=f"{prefix}pooler.dense.weight" in sd,
        )
    model: Encoder | MaskedLM = Encoder(config) if kind == "base" else MaskedLM(config)
    ours = _hf_names(model, prefix)  # our key -> HF key(s)
    converted: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for our_key, hf_keys in ours.items():
        missing = [k for k in hf_keys if k not in sd]
        if missing:
            raise ValueError(f"state dict lacks {', '.join(missing)}")
        parts = [sd[k].detach().to("cpu", torch.float32) for k in hf_keys]
        converted[our_key] = torch.cat(parts, dim=0) if len(parts) > 1 else parts[0]
        used.update(hf_keys)
    if kind == "masked_lm":
        # BERT ties the decoder to the word embedding; we only store the embedding, so
        # refuse an untied decoder rather than dropping half of it.
        decoder = sd.get("cls.predictions.decoder.weight")
        if decoder is not None and not torch.equal(decoder, sd["bert.embeddings.word_embeddings.weight"]):
            raise ValueError("cls.predictions.decoder.weight is not tied to the word embedding")
        bias = sd.get("cls.predictions.decoder.bias")
        if bias is not None and not torch.equal(bias, sd["cls.predictions.bias"]):
            raise ValueError("cls.predictions.decoder.bias differs from cls.predictions.bias")
        used.update({"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"})
    unused = sorted(set(sd) - used)
    if unused:
        raise ValueError(f"unexpected keys in the state dict: {', '.join(unused[:8])}"
                         + (" ..." if len(unused) > 8 else ""))
    expected = model.state_dict()
    for key, value in converted.items():
        if value.shape != expected[key].shape:
            raise ValueError(f"{ours[key][0]} has shape {tuple(value.shape)}, the config "
                             f"expects {tuple(expected[key].shape)}")
    model.load_state_dict(converted, strict=True)
    return model.eval()


def to_hf_bert_state_dict(model: Encoder | MaskedLM) -> dict[str, torch.Tensor]:
    """Export our weights under Hugging Face names.

    An ``Encoder`` gives a ``BertModel`` state dict; a ``MaskedLM`` gives a
    ``BertForTokenClassification`` (``head="classifier"``) or ``BertForMaskedLM``
    (``head="lm"``, with the tied decoder written out as BERT does) state dict.

    Parameters
    ----------
    model : Encoder or MaskedLM
        Possibly wrapped by DDP or ``torch.compile`` (the wrapper is looked through).

    Returns
    -------
    dict of str to Tensor
        CPU float tensors, contiguous, not sharing storage with the model.
    """
    model = _unwrap(model)
    if not isinstance(model, (Encoder, MaskedLM)):
        raise TypeError(f"expected an Encoder or MaskedLM, got {type(model).__name__}")
    prefix = "" if isinstance(model, Encoder) else "bert."
    ours = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for our_key, hf_keys in _hf_names(model, prefix).items():
        value = ours[our_key].detach().to("cpu")
        parts = value.chunk(len(hf_keys), dim=0) if len(hf_keys) > 1 else [value]
        for hf_key, part in zip(hf_keys, parts):
            out[hf_key] = part.clone().contiguous()
    if isinstance(model, MaskedLM) and model.config.head == "lm":
        out["cls.predictions.decoder.weight"] = out["bert.embeddings.word_embeddings.weight"].clone()
        out["cls.predictions.decoder.bias"] = out["cls.predictions.bias"].clone()
    return out


def to_hf_bert_config(config: EncoderConfig) -> dict[str, Any]:
    """A Hugging Face ``BertConfig`` dict (``BertConfig(**d)``) for the same architecture.

    BERT always adds a token-type embedding, so a config with ``type_vocab_size=0`` (our
    ``tiny`` preset) has no exact BERT equivalent and is refused.
    """
    if config.type_vocab_size == 0:
        raise ValueError("BERT always has token-type embeddings; this config has type_vocab_size=0")
    return {
        "model_type": "bert",
        "vocab_size": config.vocab_size,
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
        "pad_token_id": config.pad_token_id if config.pad_token_id is not None else 0,
        "num_labels": config.num_kmers,
    }


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
