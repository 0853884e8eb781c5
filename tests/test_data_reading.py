"""Readers (metadata CSV/TSV, BOLD TSV, FASTA) and the global label maps."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bioscan_kmer import clean
from bioscan_kmer.data.labels import encode_labels, label_maps, load_label_maps, save_label_maps
from bioscan_kmer.data.reading import (
    DataFileError,
    iter_fasta,
    read_bold_tsv,
    read_fasta,
    read_metadata,
    write_fasta,
    write_metadata_csv,
)
from bioscan_kmer.data.schema import COLUMNS, RANKS
from bioscan_kmer.data.synthetic import synthetic_bioscan

BOLD_SAMPLE = Path(__file__).parent / "data" / "bold_sample.tsv"


@pytest.fixture(scope="module")
def df():
    return synthetic_bioscan(3_000, seed=8)


def test_metadata_csv_round_trip(df, tmp_path):
    path = write_metadata_csv(df, tmp_path / "meta.csv")
    back = read_metadata(path)
    assert tuple(back.columns) == COLUMNS
    pd.testing.assert_frame_equal(back, df)
    some = read_metadata(path, columns=["species", "dna_barcode"])
    assert list(some.columns) == ["species", "dna_barcode"]


def test_bioscan1m_tsv_names_and_not_classified(tmp_path):
    path = tmp_path / "b1m.tsv"
    path.write_text(
        "sampleid\tprocessid\turi\tname\tphylum\tclass\torder\tfamily\tsubfamily\tgenus\tspecies\tnucraw\n"
        "S1\tP1\tBOLD:AAA0001\tDiptera\tArthropoda\tInsecta\tDiptera\tnot_classified\tnot_classified"
        "\tnot_classified\tnot_classified\tACGT-NN\n"
        "S2\tP2\tBOLD:AAA0002\tAus bus\tArthropoda\tInsecta\tDiptera\tAidae\t\tAus\tAus bus\tacgt\n"
    )
    df = read_metadata(path)
    assert {"dna_barcode", "dna_bin", "taxon"} <= set(df.columns)
    assert df["family"].isna().tolist() == [True, False]
    assert df["species"].tolist()[1] == "Aus bus" and pd.isna(df["species"].iloc[0])
    assert df["dna_barcode"].tolist() == ["ACGT-NN", "acgt"]


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "empty"),
        ("processid,dna_barcode\nP1,ACGT,extra\n", "Expected 2 columns"),
        ("processid,species\nP1,Aus bus\n", "missing column"),
    ],
)
def test_bad_metadata_files(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataFileError, match=match):
        read_metadata(path, columns=["processid", "dna_barcode"] if "species" in content else None)


def test_missing_and_directory_paths(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        read_metadata(tmp_path / "nope.csv")
    with pytest.raises(DataFileError, match="directory"):
        read_metadata(tmp_path)
    with pytest.raises(DataFileError, match="no such file"):
        list(iter_fasta(tmp_path / "nope.fasta"))


def test_bold_tsv_reads_real_barcodes_and_filters_marker(tmp_path):
    df = read_bold_tsv(BOLD_SAMPLE)
    assert len(df) > 300 and (df["marker_code"] == "COI-5P").all()
    assert {"processid", "dna_barcode", "dna_bin", "species"} <= set(df.columns)
    cleaned = clean(df["dna_barcode"])
    assert all(set(s) <= set("ACGTN") for s in cleaned)
    # A file with two markers: only COI-5P rows remain.
    text = BOLD_SAMPLE.read_text().splitlines()
    header = text[0].split("\t")
    row = text[1].split("\t")
    row[header.index("marker_code")] = "COI-3P"
    mixed = tmp_path / "mixed.tsv"
    mixed.write_text("\n".join([text[0], "\t".join(row), text[2]]) + "\n")
    assert len(read_bold_tsv(mixed)) == 1
    assert len(read_bold_tsv(mixed, marker=None)) == 2
    noseq = tmp_path / "noseq.tsv"
    noseq.write_text("processid\tbin_uri\nP1\tBOLD:AAA0001\n")
    with pytest.raises(DataFileError, match="no sequence column"):
        read_bold_tsv(noseq)


def test_fasta_round_trip_streaming_and_errors(df, tmp_path):
    path = write_fasta(tmp_path / "x.fasta", df.head(50), width=60)
    records = list(iter_fasta(path))
    assert len(records) == 50
    assert records[0][1] == df["dna_barcode"].iloc[0]
    back = read_fasta(path)
    assert back["processid"].tolist() == df["processid"].head(50).tolist()
    for rank in RANKS:
        a = back[rank].astype(object).where(back[rank].notna(), None).tolist()
        b = df[rank].head(50).astype(object).where(df[rank].head(50).notna(), None).tolist()
        assert a == b, rank
    plain = tmp_path / "plain.fa"
    plain.write_text(">seq1 some description\nACGT\nAC\n\n>seq2\nGG\n")
    got = read_fasta(plain)
    assert got["processid"].tolist() == ["seq1", "seq2"] and got["dna_barcode"].tolist() == ["ACGTAC", "GG"]
    bad = tmp_path / "bad.fa"
    bad.write_text("ACGT\n>x\nAC\n")
    with pytest.raises(DataFileError, match="line 1"):
        read_fasta(bad)
    empty_record = tmp_path / "empty.fa"
    empty_record.write_text(">x\n>y\nAC\n")
    with pytest.raises(DataFileError, match="no sequence"):
        read_fasta(empty_record)
    with pytest.raises(ValueError, match=r"row 1: .*'\|'"):
        write_fasta(tmp_path / "y.fa", pd.DataFrame({"processid": ["a", "b|c"], "dna_barcode": ["A", "C"]}))


def test_label_maps_are_global_and_sorted(df, tmp_path):
    maps = label_maps(df)
    assert set(maps) == set(RANKS)
    for rank, values in maps.items():
        assert values == sorted(values) and "" not in values
    codes = encode_labels(df, maps)
    # Ids equal the official loader's category codes over the full table.
    for rank in RANKS:
        np.testing.assert_array_equal(codes[f"{rank}_id"], df[rank].cat.codes.to_numpy())
    # A split encoded with the global map keeps the global ids.
    part = df[df["split"] == "test"]
    np.testing.assert_array_equal(encode_labels(part, maps)["species_id"], codes.loc[part.index, "species_id"])
    path = save_label_maps(maps, tmp_path / "maps.json")
    assert load_label_maps(path) == maps


def test_unknown_labels_raise_with_row(df):
    maps = label_maps(df.head(10))
    other = pd.DataFrame({"species": [None, "Zzz unknownus"]})
    with pytest.raises(ValueError, match=r"row 1: species label 'Zzz unknownus'"):
        encode_labels(other, {"species": maps["species"]})
    got = encode_labels(other, {"species": maps["species"]}, unknown="missing")
    assert got["species_id"].tolist() == [-1, -1]
    with pytest.raises(ValueError, match="missing from the table"):
        label_maps(pd.DataFrame({"species": []}))
