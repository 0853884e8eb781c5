"""Batched, masked-mean-pooled sequence features from an encoder.

Every probe starts from one feature vector per barcode: the mean of the encoder's last
hidden layer over the *real* tokens. Padding positions are excluded from the mean;
averaging over padding (as the public BarcodeBERT code did) makes a barcode's embedding
depend on how much padding it got. Features are computed in batches under
``torch.inference_mode`` on the GPU when there is one.
"""

from __future__ import annotations

import numpy as np

from .knn import default_device

__all__ = ["masked_mean", "embed_tokens", "embed_sequences", "batched_apply", "load_encoder"]


def masked_mean(hidden, mask):
    """Mean of ``hidden`` over the positions where ``mask`` is nonzero.

    Parameters
    ----------
    hidden : torch.Tensor, shape (B, T, C)
    mask : torch.Tensor, shape (B, T)
        Nonzero for real tokens.

    Returns
    -------
    torch.Tensor, shape (B, C)
        Rows without any real token are zero.
    """
    if hidden.dim() != 3 or mask.shape != hidden.shape[:2]:
        raise ValueError(f"expected hidden (B, T, C) and mask (B, T), got {tuple(hidden.shape)} and {tuple(mask.shape)}")
    w = (mask != 0).to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
    return (hidden * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)  # (B, C)


def batched_apply(fn, arrays, *, batch_size: int = 256, device=None, progress: bool = False,
                  desc: str = "embedding", dtypes=None) -> np.ndarray:
    """Run ``fn(*batch_tensors) -> (B, C)`` over row batches of NumPy arrays.

    Parameters
    ----------
    fn : callable
        Takes one torch tensor per array (already on ``device``) and returns (B, C).
    arrays : sequence of numpy.ndarray
        Equal first dimension.
    batch_size : int
    device : optional
        Torch device; CUDA when present by default.
    progress : bool
        progress bar over rows.
    desc : str
        Bar label.
    dtypes : sequence of torch.dtype, optional
        Tensor dtype per array (default: int64 for integer arrays, float32 otherwise).

    Returns
    -------
    numpy.ndarray of float32, shape (n, C)
    """
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    arrays = [np.asarray(a) for a in arrays]
    n = arrays[0].shape[0]
    if any(a.shape[0] != n for a in arrays):
        raise ValueError(f"arrays have different numbers of rows: {[a.shape[0] for a in arrays]}")
    dev = default_device(device)
    if dtypes is None:
        dtypes = [torch.int64 if np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_
                  else torch.float32 for a in arrays]
    out = []
    bar = None
    if progress:
        from bioscan_kmer._progress import progress_bar

        bar = progress_bar(total=n, desc=desc, unit="seq")
    with torch.inference_mode():
        for s in range(0, n, batch_size):
            batch = [torch.as_tensor(a[s : s + batch_size]).to(dev, dt, non_blocking=True)
                     for a, dt in zip(arrays, dtypes)]
            out.append(fn(*batch).float().cpu().numpy())
            if bar is not None:
                bar.update(batch[0].shape[0])
    if bar is not None:
        bar.close()
    if not out:
        return np.empty((0, 0), dtype=np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


def embed_tokens(model, input_ids, attention_mask, *, batch_size: int = 256, device=None,
                 progress: bool = False, layer=-1):
    """Masked-mean features of pre-tokenized sequences.

    Parameters
    ----------
    model : torch.nn.Module
        ``model(input_ids, attention_mask)`` returns the last hidden layer (B, T, C)
        (our :class:`bioscan_kmer.model.Encoder`, or anything with that contract).
        It is moved to ``device`` and put in eval mode (dropout off).
    input_ids, attention_mask : array_like, shape (n, T)
    batch_size, device, progress
        See :func:`batched_apply`.
    layer : int or sequence of int, default -1
        The hidden state to pool: -1 the last layer (the papers' choice), 0 the embedding
        layer, i the output of block i (needs ``model(..., output_hidden_states=True)``,
        as :class:`~bioscan_kmer.model.Encoder` has). A sequence pools each of them from one
        forward pass.

    Returns
    -------
    numpy.ndarray of float32, shape (n, C)
        Or, for a sequence of layers, ``{layer: (n, C) array}``.
    """
    ids = np.asarray(input_ids)
    mask = np.asarray(attention_mask)
    if ids.ndim != 2 or mask.shape != ids.shape:
        raise ValueError(f"input_ids and attention_mask must be (n, T) of one shape, got {ids.shape} and {mask.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"input_ids must be integers, got {ids.dtype}")
    dev = default_device(device)
    model = model.to(dev).eval()

    layers = [layer] if isinstance(layer, (int, np.integer)) else [int(x) for x in layer]
    if not layers:
        raise ValueError("layer: give at least one layer")

    def pooled(i, m):
        if layers == [-1]:
            hidden = model(i, m)
            states = [hidden[0] if isinstance(hidden, tuple) else hidden]
        else:
            every = model(i, m, output_hidden_states=True)
            try:
                states = [every[j] for j in layers]
            except IndexError:
                raise ValueError(f"layer {layers} out of range for a model with {len(every)} hidden "
                                 f"states (0 = embeddings, -1 = last)") from None
        import torch

        return torch.cat([masked_mean(h, m) for h in states], dim=1)  # (B, C x layers)

    out = batched_apply(pooled, [ids, mask.astype(np.int64)], batch_size=batch_size,
                        device=dev, progress=progress)
    if isinstance(layer, (int, np.integer)):
        return out
    width = out.shape[1] // len(layers) if len(out) else 0
    return {j: out[:, n * width:(n + 1) * width] for n, j in enumerate(layers)}


def embed_sequences(model, tokenizer, seqs, *, batch_size: int = 256, device=None,
                    progress: bool = False, layer=-1):
    """Masked-mean features of raw barcodes, tokenized with the core tokenizer.

    Tokenization is done in chunks with the batches, so memory stays bounded for
    millions of sequences.

    Parameters
    ----------
    model : torch.nn.Module
        See :func:`embed_tokens`.
    tokenizer : bioscan_kmer.KmerTokenizer
        The tokenizer the model was trained with (offset 0, no augmentation).
    seqs : sequence of str
        Cleaned barcodes.
    layer : int or sequence of int
        See :func:`embed_tokens`.

    Returns
    -------
    numpy.ndarray of float32, shape (len(seqs), C)
        Or ``{layer: array}`` for a sequence of layers.
    """
    seqs = list(seqs)
    chunk = max(batch_size, 8192)
    parts = []
    bar = None
    if progress:
        from bioscan_kmer._progress import progress_bar

        bar = progress_bar(total=len(seqs), desc="embedding", unit="seq")
    for s in range(0, len(seqs), chunk):
        enc = tokenizer(seqs[s : s + chunk], return_tensors="np")
        parts.append(embed_tokens(model, enc["input_ids"], enc["attention_mask"],
                                  batch_size=batch_size, device=device, layer=layer))
        if bar is not None:
            bar.update(len(seqs[s : s + chunk]))
    if bar is not None:
        bar.close()
    if isinstance(layer, (int, np.integer)):
        return np.concatenate(parts) if parts else np.empty((0, 0), dtype=np.float32)
    return {j: (np.concatenate([p[j] for p in parts]) if parts else np.empty((0, 0), dtype=np.float32))
            for j in layer}


def load_encoder(path, *, tokenizer=None, config=None, device="cpu"):
    """Load an encoder and its tokenizer from any checkpoint :func:`bioscan_kmer.model.load_pretrained` reads.

    Parameters
    ----------
    path : str or os.PathLike
        One of our checkpoints (file or run directory), or Hugging Face BERT weights of
        either BarcodeBERT generation (a state dict as ``.bin``/``.pt``/``.safetensors``,
        BarcodeBERT's own training checkpoint, or a model directory with ``config.json``).
    tokenizer : bioscan_kmer.KmerTokenizer, optional
        Needed for Hugging Face weights with a non-default tokenizer: they do not record
        theirs (the default one of their vocabulary is used). Ours carry their own.
    config : EncoderConfig or str, optional
        Architecture for Hugging Face weights (a preset name such as ``"bioscan5m-8-4-4"``);
        default: read off the weights and ``config.json``.
    device : str

    Returns
    -------
    (torch.nn.Module, KmerTokenizer)
        The encoder in eval mode and the tokenizer its inputs must come from.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    CheckpointError, ConfigError (UserErrors)
        Not a checkpoint (in one line), damaged, or weights that do not fit their
        configuration; a tokenizer that does not fit the encoder.
    """
    from .. import KmerTokenizer
    from ..model import get_preset
    from ..model.hf import load_pretrained

    model, tok_cfg = load_pretrained(path, config=get_preset(config) if isinstance(config, str) else config)
    encoder = (model.encoder if hasattr(model, "encoder") else model).to(device).eval()
    if tokenizer is None and tok_cfg is not None:
        tokenizer = KmerTokenizer.from_config(tok_cfg)
    cfg = encoder.config
    if tokenizer is None:
        # Weights without a stored tokenizer: the default one of their vocabulary.
        tokenizer = KmerTokenizer(k=cfg.k, max_len=660, preset=cfg.tokenizer_preset,
                                  n_nucleotide=cfg.n_nucleotide)
    cfg.check_tokenizer(tokenizer, what="the tokenizer")
    return encoder, tokenizer
