"""bioscan_kmer.distributed on a two-worker LocalCluster, against the single-machine path.

Every output (cleaned barcodes, the two-stage unique, the statistics table, the
pretraining shard) is computed both ways on synthetic BIOSCAN-like data and compared
exactly. The input is split into several partitions so that duplicates, labels and
errors cross partition boundaries.
"""
import sys

import numpy as np
import pandas as pd
import pytest

import bioscan_kmer as bk

distributed = pytest.importorskip("dask.distributed")
import dask  # noqa: E402
import dask.dataframe as dd  # noqa: E402

from bioscan_kmer import distributed as bkd  # noqa: E402
from bioscan_kmer.data.reading import read_metadata, write_metadata_csv  # noqa: E402
from bioscan_kmer.data.statistics import dataset_statistics  # noqa: E402
from bioscan_kmer.data.synthetic import synthetic_bioscan  # noqa: E402

N = 12_000


@pytest.fixture(scope="module")
def client():
    # Threads, not processes: the same code paths (tasks, pickling of results between
    # workers is skipped), started in well under a second.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("dist") / "meta.csv"
    write_metadata_csv(synthetic_bioscan(N, seed=3), path)
    return path


@pytest.fixture(scope="module")
def single(table):
    return read_metadata(table)


@pytest.fixture(scope="module")
def ddf(table, client):
    # About 6 partitions of ~2,000 rows.
    out = bkd.read_table(table, blocksize=table.stat().st_size // 6 + 1)
    assert out.npartitions >= 4
    return out


def test_read_table_matches_read_metadata(ddf, single):
    got = ddf.compute()
    assert list(got.columns) == list(single.columns)
    for col in ("processid", "dna_barcode", "species", "genus", "split"):
        want = single[col].astype(object).where(single[col].notna(), None).tolist()
        have = got[col].astype(object).where(got[col].notna(), None).tolist()
        assert have == want, col


def test_clean_matches_single_machine(ddf, single):
    got = bkd.clean(ddf["dna_barcode"], max_length=660).compute()
    assert got.tolist() == bk.clean(single["dna_barcode"], max_length=660)


@pytest.mark.parametrize("n_buckets", [None, 1, 3])
def test_two_stage_unique_matches_single_machine(ddf, single, n_buckets):
    cleaned = bkd.clean(ddf["dna_barcode"])
    uniques, inverse, counts = dask.compute(*bkd.unique(cleaned, n_buckets=n_buckets))
    want_u, want_inv, want_c = bk.unique(bk.clean(single["dna_barcode"]))
    assert uniques.tolist() == want_u
    np.testing.assert_array_equal(inverse.to_numpy(), want_inv)
    np.testing.assert_array_equal(counts.to_numpy(), want_c)
    assert counts.to_numpy().sum() == N and len(want_u) < N  # duplicates exist


def test_unique_across_odd_partitions(client):
    # Empty partitions, a value first seen in the last partition, all-duplicate ones.
    values = ["B", "A", "B", "", "C", "A", "D", "D", "D", "E", "A", ""]
    pdf = pd.Series(values, dtype="string[pyarrow]")
    parts = [pdf.iloc[0:3], pdf.iloc[3:3], pdf.iloc[3:6], pdf.iloc[6:9], pdf.iloc[9:9], pdf.iloc[9:]]
    series = dd.from_delayed([dask.delayed(p) for p in parts], meta=pdf.iloc[:0], verify_meta=False)
    uniques, inverse, counts = dask.compute(*bkd.unique(series, n_buckets=4))
    want_u, want_inv, want_c = bk.unique(values)
    assert uniques.tolist() == want_u
    assert inverse.tolist() == want_inv.tolist() and counts.tolist() == want_c.tolist()


def test_statistics_identical_to_single_machine(ddf, single):
    got = bkd.dataset_statistics(ddf)
    want = dataset_statistics(single)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert (got["labelled"] > 0).all()


def test_statistics_from_parquet(ddf, single, tmp_path):
    ddf.to_parquet(tmp_path / "pq", write_index=False)
    got = bkd.dataset_statistics(bkd.read_table(tmp_path / "pq"))
    pd.testing.assert_frame_equal(got, dataset_statistics(single), check_exact=True)


def test_pretrain_shard_identical_to_prepare_shards(ddf, single, tmp_path):
    from bioscan_kmer.data.prepare import prepare_shards
    from bioscan_kmer.data.shards import open_shard

    prepare_shards(single, tmp_path / "one", splits=["pretrain"], k=4)
    result = bkd.pretrain_shards(ddf, tmp_path / "many", k=4)
    want, got = open_shard(tmp_path / "one", "pretrain"), open_shard(tmp_path / "many", "pretrain")
    assert result["rows"] == len(want) > 0
    np.testing.assert_array_equal(np.asarray(got.ids), np.asarray(want.ids))
    np.testing.assert_array_equal(np.asarray(got.mask), np.asarray(want.mask))
    assert got.ids.dtype == want.ids.dtype and got.tokenizer.config == want.tokenizer.config


def test_bad_barcode_is_named_by_its_global_row(table, tmp_path, client):
    df = pd.read_csv(table, dtype=str, keep_default_na=False)
    bad_row = len(df) - 700  # in a late partition
    df.loc[bad_row, "dna_barcode"] = "ACGT!ACGT"
    df.to_csv(tmp_path / "bad.csv", index=False)
    ddf = bkd.read_table(tmp_path / "bad.csv", blocksize=(tmp_path / "bad.csv").stat().st_size // 5 + 1)
    with pytest.raises(bkd.PartitionRowError, match=r"partition \d+, row \d+ of it: invalid character '!'") as err:
        bkd.clean(ddf["dna_barcode"]).compute()
    lengths = ddf.map_partitions(len).compute().tolist()
    assert sum(lengths[: err.value.partition]) + err.value.row == bad_row  # the row we broke
    df.loc[bad_row, "dna_barcode"] = ""  # missing
    df.to_csv(tmp_path / "bad.csv", index=False)
    ddf = bkd.read_table(tmp_path / "bad.csv", blocksize=(tmp_path / "bad.csv").stat().st_size // 5 + 1)
    with pytest.raises(ValueError, match=rf"^row {bad_row}: dna_barcode is missing"):
        bkd.dataset_statistics(ddf)


def test_bioscan1m_tsv_names(tmp_path, client):
    (tmp_path / "m.tsv").write_text("processid\tnucraw\turi\tspecies\nP1\tACGTN\tBOLD:A\tnot_classified\n"
                                    "P2\tacgt\tBOLD:B\tApis mellifera\n")
    got = bkd.read_table(tmp_path / "m.tsv").compute()
    assert list(got.columns) == ["processid", "dna_barcode", "dna_bin", "species"]
    assert got["species"].isna().tolist() == [True, False]
    assert bkd.clean(bkd.read_table(tmp_path / "m.tsv")["dna_barcode"]).compute().tolist() == ["ACGT", "ACGT"]


def test_missing_dask_gives_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)
    with pytest.raises(ImportError, match=r"pip install 'bioscan-kmer\[dask\]'"):
        bkd.unique(None)
