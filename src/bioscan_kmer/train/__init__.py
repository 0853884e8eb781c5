"""Masked-language-model pretraining of the DNA encoder.

``pretrain`` is the Python API behind ``bioscan-kmer pretrain``; ``demo_pretrain`` is the
one-minute CPU run the demo shows. See ``docs/model.md``.
"""

from .config import TrainConfig
from .demo import demo_pretrain
from .loop import pretrain

__all__ = ["TrainConfig", "pretrain", "demo_pretrain"]
