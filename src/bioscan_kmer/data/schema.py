"""Column names and types of the BIOSCAN-5M metadata (SPEC section 1)."""

from __future__ import annotations

__all__ = ["RANKS", "COLUMNS", "DTYPES", "SPLITS", "SEEN_SPLITS", "UNSEEN_SPLITS",
           "EXCLUSIVE_SPLITS"]

RANKS = ("phylum", "class", "order", "family", "subfamily", "genus", "species")

# Column order of BIOSCAN_5M_Insect_Dataset_metadata.csv.
COLUMNS = (
    "processid", "sampleid", "taxon", *RANKS, "dna_bin", "dna_barcode", "country",
    "province_state", "coord-lat", "coord-lon", "image_measurement_value",
    "area_fraction", "scale_factor", "inferred_ranks", "split",
    "index_bioscan_1M_insect", "chunk",
)

# Types as the official loader reads them; "str" columns become pandas' string dtype.
DTYPES = {
    "processid": "str",
    "sampleid": "str",
    "taxon": "str",
    **{rank: "category" for rank in RANKS},
    "dna_bin": "category",
    "dna_barcode": "str",
    "country": "str",
    "province_state": "str",
    "coord-lat": "float64",
    "coord-lon": "float64",
    "image_measurement_value": "float64",
    "area_fraction": "float64",
    "scale_factor": "float64",
    "inferred_ranks": "uint8",
    "split": "str",
    "index_bioscan_1M_insect": "Int64",
    "chunk": "str",
}

SEEN_SPLITS = ("train", "val", "test")
UNSEEN_SPLITS = ("key_unseen", "val_unseen", "test_unseen")
# A stripped barcode may belong to only one of these (SPEC section 6).
EXCLUSIVE_SPLITS = SEEN_SPLITS + UNSEEN_SPLITS
SPLITS = ("pretrain", *SEEN_SPLITS, *UNSEEN_SPLITS, "other_heldout")
