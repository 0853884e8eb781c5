"""A BERT encoder for k-mer token ids, and its masked-language-model wrapper.

Shapes: B batch, T tokens per sequence, C hidden size, H heads, D = C // H head size,
K = ``num_kmers`` output classes, V = ``vocab_size``.

The layout follows Hugging Face's ``BertModel`` closely enough that its weights map one to
one (see :mod:`bioscan_kmer.model.hf`): post-LN blocks, exact (erf) GELU, LayerNorm eps
from the config, token + learned position (+ optional token type) embeddings. Q, K and V are
one fused linear layer because one matmul is faster than three.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import EncoderConfig
from .losses import linear_cross_entropy

__all__ = ["Encoder", "MaskedLM", "IGNORE_INDEX"]

#: Label value that the loss ignores (PyTorch's ``cross_entropy`` default).
IGNORE_INDEX = -100


class Embeddings(nn.Module):
    """Token + position (+ token type 0) embeddings, then LayerNorm and dropout."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.tokens = nn.Embedding(config.vocab_size, config.hidden_size,
                                   padding_idx=config.pad_token_id)
        self.positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_types = (nn.Embedding(config.type_vocab_size, config.hidden_size)
                            if config.type_vocab_size else None)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        T = input_ids.shape[1]
        pos = torch.arange(T, device=input_ids.device)  # (T,)
        x = self.tokens(input_ids) + self.positions(pos)  # (B, T, C)
        if self.token_types is not None:
            if token_type_ids is None:
                # Single-segment input: every token gets row 0, as BERT does by default.
                x = x + self.token_types.weight[0]
            else:
                x = x + self.token_types(token_type_ids)
        elif token_type_ids is not None:
            raise ValueError("token_type_ids given but the config has type_vocab_size=0")
        return self.drop(self.norm(x))


class SelfAttention(nn.Module):
    """Multi-head self-attention through ``F.scaled_dot_product_attention``."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)
        self.attention_dropout = config.attention_dropout

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.num_heads, -1).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, self.num_heads, -1).transpose(1, 2)  # (B, H, T, D)
        v = v.view(B, T, self.num_heads, -1).transpose(1, 2)  # (B, H, T, D)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask,
            dropout_p=self.attention_dropout if self.training else 0.0,
        )  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.out(y)


class Block(nn.Module):
    """One post-LN BERT layer: x = LN(x + attn(x)); x = LN(x + ffn(x))."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.attn = SelfAttention(config)
        self.attn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn_in = nn.Linear(config.hidden_size, config.intermediate_size)
        self.ffn_out = nn.Linear(config.intermediate_size, config.hidden_size)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        x = self.attn_norm(x + self.drop(self.attn(x, attn_mask)))  # (B, T, C)
        h = F.gelu(self.ffn_in(x))  # (B, T, 4C)
        return self.ffn_norm(x + self.drop(self.ffn_out(h)))  # (B, T, C)


def _check_inputs(input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                  config: EncoderConfig) -> None:
    if not isinstance(input_ids, torch.Tensor):
        raise TypeError(f"input_ids must be a torch.Tensor, got {type(input_ids).__name__}")
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must have shape (B, T), got {tuple(input_ids.shape)}")
    if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
        raise TypeError(f"input_ids must be an integer tensor, got {input_ids.dtype}")
    if input_ids.shape[1] > config.max_position_embeddings:
        raise ValueError(
            f"sequences have {input_ids.shape[1]} tokens but the model has only "
            f"{config.max_position_embeddings} positions"
        )
    if attention_mask is not None and attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"attention_mask shape {tuple(attention_mask.shape)} differs from input_ids "
            f"shape {tuple(input_ids.shape)}"
        )


def _attention_bias(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """Boolean SDPA mask (B, 1, 1, T), True where a key may be attended to."""
    if attention_mask is None:
        return None
    keep = attention_mask.bool()  # (B, T)
    # A row without any real token would give softmax over nothing (NaN); let it attend
    # everywhere instead. Its output is meaningless but finite and pooled to zero anyway.
    keep = keep | ~keep.any(dim=1, keepdim=True)
    return keep[:, None, None, :]  # (B, 1, 1, T)


class Encoder(nn.Module):
    """BERT encoder: embeddings, ``num_layers`` post-LN blocks.

    Parameters
    ----------
    config : EncoderConfig
        Architecture and vocabulary.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        if not isinstance(config, EncoderConfig):
            raise TypeError(f"config must be an EncoderConfig, got {type(config).__name__}")
        self.config = config
        self.embeddings = Embeddings(config)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size) if config.pooler else None
        self.apply(lambda m: _init_weights(m, config))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        *,
        output_hidden_states: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Encode token ids.

        Parameters
        ----------
        input_ids : LongTensor (B, T)
        attention_mask : Tensor (B, T), optional
            Nonzero for real tokens; keys at zero positions are never attended to.
        token_type_ids : LongTensor (B, T), optional
            Segment ids (only with ``type_vocab_size > 0``); default all zero.
        output_hidden_states : bool
            Return all ``num_layers + 1`` hidden states (embeddings first) instead of the last.

        Returns
        -------
        Tensor (B, T, C), or a tuple of them when ``output_hidden_states``.
        """
        _check_inputs(input_ids, attention_mask, self.config)
        attn_mask = _attention_bias(attention_mask)  # (B, 1, 1, T) or None
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, C)
        states = [x]
        for block in self.blocks:
            x = block(x, attn_mask)  # (B, T, C)
            if output_hidden_states:
                states.append(x)
        return tuple(states) if output_hidden_states else x

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
              *, layer: int = -1) -> torch.Tensor:
        """Sequence embeddings: the mean of a layer's hidden states over real tokens.

        Padding never enters the mean (averaging over padding is a known BarcodeBERT fault).
        A row without real tokens gives a zero vector.

        Parameters
        ----------
        input_ids : LongTensor (B, T)
        attention_mask : Tensor (B, T), optional
            Nonzero for real tokens; None means all tokens are real.
        layer : int
            Which hidden state to pool: -1 the last layer, 0 the embeddings.

        Returns
        -------
        Tensor (B, C)
        """
        if layer == -1:
            hidden = self.forward(input_ids, attention_mask)  # (B, T, C)
        else:
            hidden = self.forward(input_ids, attention_mask, output_hidden_states=True)[layer]
        if attention_mask is None:
            return hidden.mean(dim=1)
        weights = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
        total = (hidden * weights).sum(dim=1)  # (B, C)
        return total / weights.sum(dim=1).clamp_min(1.0)  # (B, C)

    def pooled(self, hidden: torch.Tensor) -> torch.Tensor:
        """BERT's pooler output ``tanh(W h[:, 0] + b)`` (B, C); needs ``config.pooler``."""
        if self.pooler is None:
            raise ValueError("this encoder has no pooler (EncoderConfig.pooler=False)")
        return torch.tanh(self.pooler(hidden[:, 0]))


class ClassifierHead(nn.Module):
    """BarcodeBERT's head: dropout + Linear(C, K) (a ``BertForTokenClassification``)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.drop = nn.Dropout(config.dropout)
        self.proj = nn.Linear(config.hidden_size, config.num_kmers)

    def forward(self, hidden: torch.Tensor, decoder_weight: torch.Tensor | None = None) -> torch.Tensor:
        # decoder_weight is unused: this head owns its weights (kept for one call signature).
        return self.proj(self.drop(hidden))  # (B, T, K)

    def output_layer(self, hidden: torch.Tensor, decoder_weight: torch.Tensor | None = None):
        """(features (B, T, C), weight (K, C), bias (K,)) with ``forward = features W^T + b``."""
        return self.drop(hidden), self.proj.weight, self.proj.bias


class LMHead(nn.Module):
    """``BertForMaskedLM``'s head; the decoder is tied to the token embedding.

    The full vocabulary is scored as in BERT and then cut to the k-mer rows, so that labels
    are ``id - first_kmer_id`` for both heads.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.kmers = slice(config.first_kmer_id, config.first_kmer_id + config.num_kmers)

    def forward(self, hidden: torch.Tensor, decoder_weight: torch.Tensor) -> torch.Tensor:
        h = self.norm(F.gelu(self.dense(hidden)))  # (B, T, C)
        logits = F.linear(h, decoder_weight, self.bias)  # (B, T, V)
        return logits[..., self.kmers]  # (B, T, K)

    def output_layer(self, hidden: torch.Tensor, decoder_weight: torch.Tensor):
        """(features (B, T, C), weight (K, C), bias (K,)) with ``forward = features W^T + b``."""
        return self.norm(F.gelu(self.dense(hidden))), decoder_weight[self.kmers], self.bias[self.kmers]


class MaskedLM(nn.Module):
    """Encoder plus masked-LM head.

    Parameters
    ----------
    config : EncoderConfig
        Architecture and vocabulary; ``config.head`` picks the head.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        if config.head == "classifier":
            self.head: nn.Module = ClassifierHead(config)
        else:
            self.head = LMHead(config)
        self.head.apply(lambda m: _init_weights(m, config))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        *,
        reduction: str = "mean",
        loss_chunk_rows: int | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Score every position over the k-mer classes.

        Parameters
        ----------
        input_ids : LongTensor (B, T)
            Ids after masking.
        attention_mask : Tensor (B, T), optional
        labels : LongTensor (B, T), optional
            ``id - first_kmer_id`` where the loss applies, ``IGNORE_INDEX`` elsewhere.
        reduction : {"mean", "sum"}
            Cross-entropy reduction over labelled positions. The training loop uses "sum"
            and divides by the labelled count of the whole (distributed) step itself.
        loss_chunk_rows : int, optional
            With labels: compute the loss with
            :func:`bioscan_kmer.model.losses.linear_cross_entropy`, this many positions at a
            time, never holding the (B, T, K) logits (for large K such as 8-4-4's 65,536);
            the logits are then not returned (None).

        Returns
        -------
        logits : Tensor (B, T, K), or None with ``loss_chunk_rows``
        loss : Tensor () or None
            Computed in float32 even under autocast; None without labels.
        """
        hidden = self.encoder(input_ids, attention_mask)  # (B, T, C)
        # The LM head's decoder is the token embedding (weight tying, as in BERT).
        decoder = self.encoder.embeddings.tokens.weight
        if labels is not None:
            if labels.shape != input_ids.shape:
                raise ValueError(f"labels shape {tuple(labels.shape)} differs from input_ids "
                                 f"shape {tuple(input_ids.shape)}")
            if reduction not in ("mean", "sum"):
                raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        if labels is not None and loss_chunk_rows is not None:
            features, weight, bias = self.head.output_layer(hidden, decoder)  # (B, T, C), (K, C), (K,)
            flat = labels.reshape(-1)  # (B*T,)
            loss = linear_cross_entropy(features.reshape(-1, features.shape[-1]), weight, bias, flat,
                                        ignore_index=IGNORE_INDEX, chunk_rows=loss_chunk_rows)
            if reduction == "mean":
                loss = loss / (flat != IGNORE_INDEX).sum().clamp_min(1)
            return None, loss
        logits = self.head(hidden, decoder)  # (B, T, K)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits.float().view(-1, logits.shape[-1]),  # (B*T, K)
                labels.reshape(-1),  # (B*T,)
                ignore_index=IGNORE_INDEX,
                reduction=reduction,
            )
        return logits, loss


def _init_weights(module: nn.Module, config: EncoderConfig) -> None:
    """BERT initialisation: N(0, 0.02) weights, zero biases, unit LayerNorm, zero pad row."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=config.initializer_range)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=config.initializer_range)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
