"""The data layer: reading BIOSCAN metadata, statistics, splits, synthetic data, shards.

Sub-modules are imported on first use so that ``import bioscan_kmer.data`` stays
cheap and does not need pandas, matplotlib or torch.
"""

from __future__ import annotations

from bioscan_kmer._lazy import lazy_exports

_EXPORTS = {
    "write_shards": "shards",
    "open_shard": "shards",
    "read_manifest": "shards",
    "verify_shards": "shards",
    "Shard": "shards",
    "ShardError": "shards",
    "prepare_shards": "prepare",
    "synthetic_bioscan": "synthetic",
    "partition": "splits",
    "check_partition": "splits",
    "split_summary": "splits",
    "is_placeholder_name": "splits",
    "dataset_statistics": "statistics",
    "format_statistics": "statistics",
    "save_statistics": "statistics",
    "read_any": "reading",
    "inspect_file": "reading",
    "write_table": "reading",
    "clean_column": "cleaning",
    "read_metadata": "reading",
    "read_bold_tsv": "reading",
    "read_fasta": "reading",
    "iter_fasta": "reading",
    "write_fasta": "reading",
    "write_metadata_csv": "reading",
    "DataFileError": "reading",
    "label_maps": "labels",
    "encode_labels": "labels",
    "RANKS": "schema",
    "SPLITS": "schema",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
