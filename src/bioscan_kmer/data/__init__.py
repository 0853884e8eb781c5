"""The data layer: reading BIOSCAN metadata, statistics, splits, synthetic data, shards.

Sub-modules are imported on first use so that ``import bioscan_kmer.data`` stays
cheap and does not need pandas, matplotlib or torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "write_shards": "shards",
    "open_shard": "shards",
    "read_manifest": "shards",
    "verify_shards": "shards",
    "Shard": "shards",
    "ShardError": "shards",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
