"""The DNA encoder: a BERT-style transformer over k-mer token ids.

See ``docs/model.md``. Public names:

- :class:`EncoderConfig`, :data:`PRESETS`, :func:`get_preset`
- :class:`Encoder` (``forward`` -> (B, T, C), ``embed`` -> (B, C)), :class:`MaskedLM`
- masking recipes :func:`apply_masking`, :func:`mask_barcodebert`, :func:`mask_bert`
- :func:`save_checkpoint`, :func:`load_checkpoint`, :func:`load_model`
- :func:`load_pretrained` (ours or Hugging Face weights, both BarcodeBERT generations),
  :func:`read_hf_checkpoint`, :func:`load_hf_bert_state_dict`, :func:`to_hf_bert_state_dict`,
  :func:`to_hf_bert_config`
- :func:`estimate_mfu`, :func:`flops_per_token`, :func:`peak_flops`
"""

from .checkpoint import CheckpointError, DiskFullError, load_checkpoint, load_model, save_checkpoint
from .config import PRESETS, ConfigError, EncoderConfig, get_preset
from .encoder import IGNORE_INDEX, Encoder, MaskedLM
from .hf import (load_hf_bert_state_dict, load_pretrained, read_hf_checkpoint, to_hf_bert_config,
                 to_hf_bert_state_dict)
from .masking import RECIPES, apply_masking, mask_barcodebert, mask_bert
from .mfu import estimate_mfu, flops_per_token, peak_flops

__all__ = [
    "EncoderConfig", "ConfigError", "PRESETS", "get_preset",
    "Encoder", "MaskedLM", "IGNORE_INDEX",
    "RECIPES", "apply_masking", "mask_barcodebert", "mask_bert",
    "save_checkpoint", "load_checkpoint", "load_model", "CheckpointError", "DiskFullError",
    "load_pretrained", "read_hf_checkpoint",
    "load_hf_bert_state_dict", "to_hf_bert_state_dict", "to_hf_bert_config",
    "estimate_mfu", "flops_per_token", "peak_flops",
]
