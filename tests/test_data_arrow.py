"""The Arrow code paths of the data layer give what the pandas paths gave."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from bioscan_kmer.data._arrow import STR_DTYPE, label_codes, take
from bioscan_kmer.data.labels import encode_labels, label_maps
from bioscan_kmer.data.prepare import prepare_shards
from bioscan_kmer.data.reading import _concat_large_strings, read_metadata, write_metadata_csv
from bioscan_kmer.data.schema import RANKS
from bioscan_kmer.data.splits import partition
from bioscan_kmer.data.statistics import dataset_statistics
from bioscan_kmer.data.synthetic import synthetic_bioscan


@pytest.fixture(scope="module")
def df():
    return synthetic_bioscan(5_000, seed=3)


def _as(df, kind):
    """The same table with its rank columns as Arrow strings, objects or shuffled categories."""
    out = df.copy()
    for rank in (*RANKS, "dna_bin"):
        col = df[rank]
        if kind == "arrow":
            out[rank] = col.astype(STR_DTYPE)
        elif kind == "object":
            out[rank] = col.astype(object).where(col.notna(), None)
        elif kind == "shuffled":  # unsorted and unused categories
            cats = list(col.cat.categories)[::-1] + ["zz unused"]
            out[rank] = col.cat.set_categories(cats)
    return out


@pytest.mark.parametrize("kind", ["arrow", "object", "shuffled"])
def test_statistics_identical_for_string_and_categorical_columns(df, kind):
    pd.testing.assert_frame_equal(dataset_statistics(_as(df, kind)), dataset_statistics(df), check_exact=True)


@pytest.mark.parametrize("kind", ["arrow", "object", "shuffled"])
def test_label_maps_ids_and_splits_identical(df, kind):
    other = _as(df, kind)
    maps = label_maps(df)
    assert label_maps(other) == maps
    pd.testing.assert_frame_equal(encode_labels(other, maps), encode_labels(df, maps))
    pd.testing.assert_series_equal(partition(other, seed=1), partition(df, seed=1))


def test_label_codes_missing_and_empty():
    for col in (pd.Series(["b", None, "", "a", "b"], dtype=STR_DTYPE),
                pd.Series(["b", None, "", "a", "b"], dtype=object),
                pd.Series(pd.Categorical(["b", None, "", "a", "b"], categories=["b", "", "a", "c"]))):
        codes, labels = label_codes(col)
        assert labels == ["a", "b"]
        assert codes.tolist() == [1, -1, -1, 0, 1]
    codes, labels = label_codes(pd.Series([], dtype=STR_DTYPE))
    assert codes.tolist() == [] and labels == []


# One table, every container, every coder: the same codes. Missing: None, NaN, "" and
# whitespace-only (the rule of data/labels.py); " Aedes" (a label with a space) and
# "aedes" are labels of their own, and so is a non-ASCII name.
MIXED_LABELS = ["Culex", "", " ", None, np.nan, "Aedes", "Culex", "\t", "Aedés", "aedes", " Aedes", "Culex"]
MIXED_WANT_LABELS = [" Aedes", "Aedes", "Aedés", "Culex", "aedes"]  # code-point order
MIXED_WANT_CODES = [3, -1, -1, -1, -1, 1, 3, -1, 2, 4, 0, 3]


def _label_containers():
    text = [v if isinstance(v, str) else None for v in MIXED_LABELS]
    return {
        "object": pd.Series(MIXED_LABELS, dtype=object),
        "arrow str (NaN)": pd.Series(MIXED_LABELS, dtype=STR_DTYPE),
        "string[pyarrow] (NA)": pd.Series(text, dtype="string[pyarrow]"),
        "string[python]": pd.Series(text, dtype="string[python]"),
        "categorical": pd.Series(pd.Categorical(text, categories=["Culex", "", " ", "\t", "Zz unused", "Aedes",
                                                                  "aedes", " Aedes", "Aedés"])),
        "pyarrow": pa.array(text, type=pa.large_string()),
        "list": list(MIXED_LABELS),
    }


@pytest.mark.parametrize("kind", list(_label_containers()))
def test_every_label_coder_codes_the_same_table_the_same_way(kind):
    import bioscan_kmer as bk
    from bioscan_kmer.data import labels as data_labels
    from bioscan_kmer.eval import labels as eval_labels

    col = _label_containers()[kind]
    want_codes = np.array(MIXED_WANT_CODES)
    for coder in (label_codes, data_labels.label_codes):  # the old import path, and the home
        codes, names = coder(col)
        assert names == MIXED_WANT_LABELS and codes.tolist() == MIXED_WANT_CODES
    assert data_labels.is_missing_label(col).tolist() == (want_codes < 0).tolist()
    assert eval_labels.is_missing(col).tolist() == (want_codes < 0).tolist()
    table = pd.DataFrame({"genus": col if not isinstance(col, pa.Array) else col.to_pandas()})
    maps = label_maps(table, ("genus",))
    assert maps == {"genus": MIXED_WANT_LABELS}
    assert encode_labels(table, maps)["genus_id"].tolist() == MIXED_WANT_CODES
    label_map = eval_labels.LabelMap.fit(col)
    assert label_map.names == tuple(MIXED_WANT_LABELS) and label_map.encode(col).tolist() == MIXED_WANT_CODES
    assert eval_labels.label_codes(table, ("genus",))["genus"].tolist() == MIXED_WANT_CODES
    # grouped_shannon with labels drops the same rows: with one distinct item per row a
    # group's index is log2 of its rows.
    keys, values = bk.grouped_shannon(col, np.arange(len(MIXED_LABELS)))
    got = {k: v for k, v in zip(list(keys), values) if not np.isnan(v)}
    rows = np.bincount(want_codes[want_codes >= 0])
    assert got == pytest.approx({name: np.log2(rows[i]) for i, name in enumerate(MIXED_WANT_LABELS)})
    assert not set(map(str, keys)) & {"", " ", "\t", "nan", "None"}


def test_take_on_chunked_arrays():
    rng = np.random.default_rng(0)
    values = [None if i % 7 == 0 else f"s{i}" * (i % 4) for i in range(500)]
    chunked = pa.chunked_array([pa.array(values[a:b], type=pa.large_string())
                                for a, b in [(0, 0), (0, 120), (120, 333), (333, 500)]])
    for rows in (np.arange(500), np.sort(rng.choice(500, 90)), rng.choice(500, 200), np.zeros(0, np.int64)):
        got = take(chunked, rows)
        assert isinstance(got, pa.Array)
        assert got.to_pylist() == [values[i] for i in rows]
    with pytest.raises(IndexError):
        take(chunked, [500])


def test_concat_large_strings_keeps_values_and_nulls():
    values = [None if i % 5 == 0 else "ACGT"[: i % 5] for i in range(300)]
    base = pa.array(values, type=pa.large_string())
    chunks = [base.slice(0, 0), base.slice(0, 77), base.slice(77, 150), base.slice(227)]
    out = _concat_large_strings(list(chunks))
    out.validate(full=True)
    assert out.to_pylist() == values and out.null_count == base.null_count


def test_read_metadata_gives_one_chunk_per_string_column(df, tmp_path):
    path = write_metadata_csv(df, tmp_path / "m.csv")
    back = read_metadata(path)
    for name in ("processid", "dna_barcode", "split"):
        assert back[name].array._pa_array.num_chunks == 1
    assert back["dna_barcode"].tolist() == df["dna_barcode"].tolist()


def _digests(out):
    manifest = json.loads((out / "manifest.json").read_text())
    return {(s, k): rec[k]["sha256"] for s, rec in manifest["splits"].items()
            for k in ("ids", "mask", "labels") if rec.get(k)}


def test_prepare_identical_for_chunked_object_and_string_inputs(df, tmp_path):
    ref = prepare_shards(df, tmp_path / "ref", force=True)
    want = _digests(tmp_path / "ref")
    # Barcodes in several Arrow chunks, as objects; ranks as strings.
    chunked = df.copy()
    arr = pa.array(df["dna_barcode"], from_pandas=True)
    pieces = [arr.slice(0, 1000), arr.slice(1000, 1500), arr.slice(2500)]
    chunked["dna_barcode"] = pd.Series(pd.array(pa.chunked_array(pieces), dtype=STR_DTYPE), index=df.index)
    assert chunked["dna_barcode"].array._pa_array.num_chunks == 3
    objects = df.copy()
    objects["dna_barcode"] = df["dna_barcode"].astype(object)
    for i, other in enumerate((chunked, objects, _as(df, "arrow"))):
        res = prepare_shards(other, tmp_path / f"o{i}", force=True)
        assert res["rows"] == ref["rows"]
        assert _digests(tmp_path / f"o{i}") == want


def test_prepare_names_the_table_row_of_a_bad_barcode(df, tmp_path):
    bad = df.copy()
    seqs = bad["dna_barcode"].tolist()
    row = int(np.flatnonzero(bad["split"].to_numpy() == "test")[3])
    seqs[row] = seqs[row][:10] + "!" + seqs[row][10:]
    bad["dna_barcode"] = pd.Series(seqs, dtype=STR_DTYPE, index=df.index)
    with pytest.raises(ValueError, match=rf"^row {row}: invalid character '!'"):
        prepare_shards(bad, tmp_path / "bad", force=True, splits=["test"])
    seqs[row] = None
    bad["dna_barcode"] = pd.Series(seqs, dtype=STR_DTYPE, index=df.index)
    with pytest.raises(ValueError, match=rf"row {row}: dna_barcode is missing"):
        prepare_shards(bad, tmp_path / "bad2", force=True)
