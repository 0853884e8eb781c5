"""bioscan-kmer: fast, exact k-mer tools for DNA barcodes.

The native functions release the GIL and run on several threads; their results do
not depend on the thread count.
"""
from ._threads import resolve_threads
from .cleaning import clean
from .dedup import unique
from .diversity import PAPER_EPSILON, grouped_shannon, paper_sdi, shannon
from .kmers import kmer_counts
from .tokenizer import PRESETS, KmerTokenizer, tokenize

__version__ = "0.1.0"

__all__ = [
    "KmerTokenizer",
    "PAPER_EPSILON",
    "PRESETS",
    "clean",
    "grouped_shannon",
    "kmer_counts",
    "paper_sdi",
    "resolve_threads",
    "shannon",
    "tokenize",
    "unique",
]
