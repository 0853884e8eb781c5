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


# ---- issue 10 items 2, 10, 13; issue 13 item 5: one reader, one writer ---------------------

@pytest.mark.parametrize("name", ["t.csv", "t.tsv", "t.parquet", "t.csv.gz", "t.tsv.gz", "t.CSV", "t.TSV.GZ"])
def test_write_table_writes_what_the_extension_names_and_read_any_reads_it_back(df, tmp_path, name):
    from bioscan_kmer.data.reading import inspect_file, read_any, write_table

    part = df.head(200).copy()
    part.loc[part.index[0], "taxon"] = 'say "hi", twice'  # quotes and commas in a value
    path = write_table(part, tmp_path / "sub" / name)
    info = inspect_file(path)
    lower = name.lower()
    assert info.kind == ("parquet" if lower.endswith(".parquet") else "metadata")
    assert info.compression == ("gzip" if lower.endswith(".gz") else None)
    if ".tsv" in lower:
        assert info.delimiter == "\t" and not info.quoted
    elif ".csv" in lower:
        assert info.delimiter == ","
    back = read_any(path)
    if lower.endswith(".parquet"):
        expected = part.reset_index(drop=True)  # Parquet keeps the categories and dtypes
    else:  # what the CSV writer and reader give (categories: those that occur)
        expected = read_metadata(write_metadata_csv(part, tmp_path / "ref.csv"))
    pd.testing.assert_frame_equal(back, expected)


@pytest.mark.parametrize("name", ["t.fasta", "t.fa", "t.fna", "t.fas", "t.fasta.gz"])
def test_write_table_fasta_round_trip(df, tmp_path, name):
    from bioscan_kmer.data.reading import read_any, write_table

    path = write_table(df.head(30), tmp_path / name)
    back = read_any(path)
    assert back["processid"].tolist() == df["processid"].head(30).tolist()
    assert back["dna_barcode"].tolist() == df["dna_barcode"].head(30).tolist()
    assert back["fasta_header"].isna().all()


@pytest.mark.parametrize("name", ["t.xlsx", "t.json", "t", "t.parquet.gz", "t.gz", "t.txt"])
def test_write_table_refuses_unknown_extensions(df, tmp_path, name):
    from bioscan_kmer.data.reading import write_table
    from bioscan_kmer.errors import UsageError

    with pytest.raises(UsageError, match="unknown output type"):
        write_table(df.head(3), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_delimited_writers_refuse_what_their_readers_cannot_read_back(tmp_path):
    from bioscan_kmer.data.reading import write_table

    table = pd.DataFrame({"processid": ["a", "b"], "note": ["ok", "tab\there"]})
    with pytest.raises(DataFileError, match=r"column 'note', row 1: .*a tab"):
        write_table(table, tmp_path / "x.tsv")
    write_table(table, tmp_path / "x.csv")  # a tab is fine in a CSV
    table["note"] = ["line\nbreak", "ok"]
    with pytest.raises(DataFileError, match=r"column 'note', row 0: .*line break"):
        write_table(table, tmp_path / "y.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


def test_inspect_file_tells_kinds_from_content_not_extension(df, tmp_path):
    import gzip

    from bioscan_kmer.data.reading import inspect_file, read_any, write_table

    fasta = write_table(df.head(5), tmp_path / "x.fasta")
    disguised = tmp_path / "records.txt"
    disguised.write_bytes(gzip.compress(fasta.read_bytes()))
    assert inspect_file(disguised).kind == "fasta" and inspect_file(disguised).compression == "gzip"
    assert read_any(disguised)["processid"].tolist() == df["processid"].head(5).tolist()
    pq = write_table(df.head(5), tmp_path / "x.parquet")
    renamed = tmp_path / "x.csv"
    renamed.write_bytes(pq.read_bytes())
    assert inspect_file(renamed).kind == "parquet"
    assert inspect_file(BOLD_SAMPLE).kind == "bold"
    with pytest.raises(DataFileError, match="missing column.*'nope'"):
        read_any(pq, columns=["processid", "nope"])
    with pytest.raises(DataFileError, match="missing column.*'nope'"):
        read_any(fasta, columns=["nope"])
    with pytest.raises(DataFileError, match="is a Fasta file"):
        read_metadata(fasta)


def test_duplicate_columns_are_refused_also_after_renames(tmp_path):
    from bioscan_kmer.data.reading import read_any

    cases = {
        "plain.csv": ("processid,dna_barcode,dna_barcode\nP1,ACGT,ACGT\n", "'dna_barcode';"),
        "bold2.tsv": ("processid\tnuc\tbin_uri\tdna_bin\nP1\tACGT\tB\tB\n", "'dna_bin' (from 'bin_uri', 'dna_bin')"),
        "b1m.tsv": ("processid\turi\tdna_bin\tnucraw\nP1\tB\tB\tACGT\n", "'dna_bin' (from 'uri', 'dna_bin')"),
    }
    for name, (text, match) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DataFileError, match="duplicate column name") as excinfo:
            read_any(tmp_path / name)
        assert match in str(excinfo.value), name
    # read_bold_tsv and read_metadata refuse them too. A table with dna_barcode is not a
    # BOLD export for read_any (its "sequence" is just another column); read as one, it is.
    with pytest.raises(DataFileError, match="duplicate"):
        read_bold_tsv(tmp_path / "bold2.tsv")
    (tmp_path / "both.tsv").write_text("processid\tsequence\tdna_barcode\nP1\tAC\tGT\n")
    assert read_any(tmp_path / "both.tsv")["dna_barcode"].tolist() == ["GT"]
    with pytest.raises(DataFileError, match="duplicate column name.*'dna_barcode' .from 'sequence', 'dna_barcode'"):
        read_bold_tsv(tmp_path / "both.tsv")
    with pytest.raises(DataFileError, match="duplicate"):
        read_metadata(tmp_path / "plain.csv", columns=["processid"])


def test_fasta_headers_bom_gzip_and_empty_headers(tmp_path):
    import gzip

    path = tmp_path / "x.fa.gz"
    path.write_bytes(gzip.compress("\ufeff>P1|Aus bus|COI-5P\nACGT\n>P2 desc\nGG\n".encode()))
    got = read_fasta(path)
    assert got["processid"].tolist() == ["P1", "P2"]
    assert got["fasta_header"].tolist() == ["P1|Aus bus|COI-5P", "P2 desc"]
    written = write_fasta(tmp_path / "y.fa", got)
    assert written.read_text() == ">P1|Aus bus|COI-5P\nACGT\n>P2 desc\nGG\n"
    for text, match in ((">\nACGT\n", "line 1: empty FASTA header"),
                        (">a\nAC\n>  \nGG\n", "line 3: empty FASTA header"),
                        (">|x\nAC\n", "record 1 header '|x' has no id")):
        (tmp_path / "bad.fa").write_text(text)
        with pytest.raises(DataFileError, match=match):
            read_fasta(tmp_path / "bad.fa")
    with pytest.raises(DataFileError, match="processid is missing"):
        write_fasta(tmp_path / "z.fa", pd.DataFrame({"processid": [None], "dna_barcode": ["AC"]}))


def test_bom_and_r_quoted_headers(df, tmp_path):
    from bioscan_kmer.data.reading import inspect_file, read_any

    csv_path = write_metadata_csv(df.head(50), tmp_path / "m.csv")
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + csv_path.read_bytes())
    pd.testing.assert_frame_equal(read_metadata(bom, columns=["processid", "species"]),
                                  read_metadata(csv_path, columns=["processid", "species"]))
    r = tmp_path / "r.tsv"
    r.write_text('"processid"\t"species"\t"dna_barcode"\n"1"\t"P1"\t"Aus \\"x\\" bus"\t"ACGT"\n'.replace('\\"', '""')
                 + '"2"\t"P2"\tNA\t"GG"\n')
    info = inspect_file(r)
    assert info.quoted and info.row_names and info.columns == ["processid", "species", "dna_barcode"]
    got = read_any(r)
    assert got["processid"].tolist() == ["P1", "P2"]
    assert got["species"].tolist()[0] == 'Aus "x" bus' and pd.isna(got["species"].iloc[1])
    # An unquoted TSV keeps quotes as text (BOLD data have stray ones).
    plain = tmp_path / "p.tsv"
    plain.write_text('processid\tspecies\tdna_barcode\nP1\tAus "x\tACGT\n')
    assert read_any(plain)["species"].tolist() == ['Aus "x']
