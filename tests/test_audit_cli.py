"""Hostile command lines and input files (issue 10 items 2, 10-13; issue 13 items 5, 6, 8).

Every user mistake ends with one line on stderr and exit code 2, found before any work
where the options alone show it; inputs that are merely unusual (a byte-order mark, R's
quoted TSV, gzip, a BOLD export without subfamily, BOLD FASTA headers) are read; a bug
keeps its traceback.
"""

import re
import bz2
import gzip
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bioscan_kmer import cli
from bioscan_kmer.data.reading import inspect_file, read_any, read_metadata, write_metadata_csv, write_table
from bioscan_kmer.data.synthetic import synthetic_bioscan
from bioscan_kmer.errors import DataError, UsageError, UserError, is_user_error, run_command


@pytest.fixture(scope="module")
def meta():
    return synthetic_bioscan(400, seed=3)


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _csv(tmp, meta, name="meta.csv"):
    return write_metadata_csv(meta, tmp / name)


def _dup_barcode(tmp, meta):
    # A synth file whose taxon column was renamed: two dna_barcode columns.
    text = _csv(tmp, meta).read_text()
    head, rest = text.split("\n", 1)
    (tmp / "dup.csv").write_text(head.replace('"taxon"', '"dna_barcode"') + "\n" + rest)


def _bold_dup(tmp, meta):
    # bin_uri becomes dna_bin, which the file also has.
    (tmp / "bold_dup.tsv").write_text("processid\tbin_uri\tdna_bin\tsequence\nP1\tBOLD:A\tBOLD:A\tACGT\n")


def _b1m_dup(tmp, meta):
    # BIOSCAN-1M's name becomes taxon, which the file also has.
    (tmp / "b1m_dup.tsv").write_text("processid\turi\tname\ttaxon\tnucraw\nP1\tBOLD:A\tAus\tAus\tACGT\n")


def _files(tmp, meta):
    _csv(tmp, meta)
    _dup_barcode(tmp, meta)
    _bold_dup(tmp, meta)
    _b1m_dup(tmp, meta)
    (tmp / "empty_header.fasta").write_text(">\nACGT\n")
    (tmp / "no_id.fasta").write_text(">|Aus bus|COI-5P\nACGT\n")
    (tmp / "a_file").write_text("not a directory\n")
    (tmp / "a_dir").mkdir()
    (tmp / "empty.csv").write_text("")
    (tmp / "binary.csv").write_bytes(bytes(range(128, 256)) * 4)
    (tmp / "meta.csv.bz2").write_bytes(bz2.compress(b"processid,dna_barcode\nP1,ACGT\n"))
    (tmp / "truncated.csv.gz").write_bytes(gzip.compress(b"processid,dna_barcode\n" + b"P1,ACGT\n" * 500)[:60])
    (tmp / "ragged.csv").write_text("processid,dna_barcode\nP1,ACGT,extra\n")
    (tmp / "weird.csv").write_text("processid,dna_barcode\nP1,ACGT\nP2,ACXGT\n")
    bad = meta.copy()
    bad["dna_barcode"] = bad["dna_barcode"].astype(object)
    bad.loc[7, "dna_barcode"] = "ACGTXACGT"
    write_metadata_csv(bad, tmp / "bad_base.csv")
    (tmp / "loss.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (tmp / "ascii.csv").write_text("processid,species,genus,dna_barcode\nP1,Aus bus,Aus,ACGT\nP2,Aus bus,Aus,ACGÉT\n")


HOSTILE = [
    # (argv, message in the one line)
    (["stats", "{tmp}/dup.csv"], "duplicate column name(s) 'dna_barcode'"),
    (["clean", "{tmp}/dup.csv", "-o", "{tmp}/o.csv"], "duplicate column name(s) 'dna_barcode'"),
    (["stats", "{tmp}/bold_dup.tsv"], "'dna_bin' (from 'bin_uri', 'dna_bin')"),
    (["split", "{tmp}/b1m_dup.tsv"], "'taxon' (from 'name', 'taxon')"),
    (["clean", "{tmp}/empty_header.fasta", "-o", "{tmp}/o.csv"], "line 1: empty FASTA header"),
    (["stats", "{tmp}/empty_header.fasta"], "line 1: empty FASTA header"),
    (["clean", "{tmp}/no_id.fasta", "-o", "{tmp}/o.csv"], "no id before its first '|'"),
    (["clean", "{tmp}/meta.csv", "-o", "{tmp}/a_file/out.csv"], "is a file, not a directory"),
    (["synth", "10", "-o", "{tmp}/a_file/deeper/out.csv"], "is a file, not a directory"),
    (["split", "{tmp}/meta.csv", "-o", "{tmp}/a_file/out.csv"], "is a file, not a directory"),
    (["synth", "10", "-o", "{tmp}/a_dir"], "is a directory"),
    (["prepare", "{tmp}/meta.csv", "-o", "{tmp}/a_file"], "-o '{tmp}/a_file' exists and is not a directory"),
    (["stats", "{tmp}/meta.csv", "--out-dir", "{tmp}/a_file"], "--out-dir '{tmp}/a_file' exists"),
    (["prepare", "{tmp}/meta.csv", "-o", "{tmp}/s", "--max-len", str(2**40)], "argument --max-len"),
    (["prepare", "{tmp}/meta.csv", "-o", "{tmp}/s", "--max-len", "0"], "argument --max-len"),
    (["prepare", "{tmp}/meta.csv", "-o", "{tmp}/s", "--k", "13"], "k must be between 1 and 12"),
    (["prepare", "{tmp}/meta.csv", "-o", "{tmp}/s", "--k", "0"], "argument --k"),
    (["prepare", "{tmp}/meta.csv", "-o", "{tmp}/s", "--splits", "trian"], "argument --splits"),
    (["clean", "{tmp}/meta.csv", "-o", "{tmp}/out.xlsx"], "unknown output type (.xlsx)"),
    (["synth", "100", "-o", "{tmp}/meta.json"], "unknown output type (.json)"),
    (["synth", "100", "-o", "{tmp}/meta.parquet.gz"], "unknown output type (.parquet.gz)"),
    (["synth", "100", "-o", "{tmp}/meta"], "unknown output type (no extension)"),
    (["split", "{tmp}/meta.csv", "--seed", "-3"], "argument --seed: must be a non-negative integer, got -3"),
    (["synth", "10", "-o", "{tmp}/x.csv", "--seed", "x"], "argument --seed"),
    (["clean", "{tmp}/meta.csv", "-o", "{tmp}/o.csv", "--max-length", "-1"], "argument --max-length"),
    (["clean", "{tmp}/meta.csv", "-o", "{tmp}/o.csv", "--column", "nope"], "--column 'nope'"),
    (["clean", "{tmp}/weird.csv", "-o", "{tmp}/o.csv", "-q"], "column 'dna_barcode', row 1"),
    (["demo", "--pretrain-steps", "0", "--out", "{tmp}/d"], "argument --pretrain-steps"),
    (["demo", "--n", "5", "--out", "{tmp}/d"], "argument --n"),
    (["demo", "--data-only", "--out", "{tmp}/a_file"], "exists and is not a directory"),
    (["stats", "{tmp}/empty.csv"], "is empty"),
    (["stats", "{tmp}/binary.csv"], "not UTF-8 text"),
    (["stats", "{tmp}/meta.csv.bz2"], "bzip2-compressed"),
    (["stats", "{tmp}/truncated.csv.gz"], "truncated"),
    (["clean", "{tmp}/ragged.csv", "-o", "{tmp}/o.csv"], "Expected 2 columns"),
    (["stats", "{tmp}/a_dir"], "is a directory"),
    (["stats", "{tmp}/ascii.csv"], "dna_barcode: row 1: non-ASCII"),
    (["split", "{tmp}/ascii.csv"], "dna_barcode: row 1: non-ASCII"),
    (["evaluate", "--data", "{tmp}/nope.csv", "--out", "{tmp}/e"], "no such file"),
    (["evaluate", "--data", "{tmp}/meta.csv", "--out", "{tmp}/a_file"], "--out '{tmp}/a_file' exists"),
    (["evaluate", "--data", "{tmp}/meta.csv", "--out", "{tmp}/e", "--seed", "-1"], "argument --seed"),
    (["evaluate", "--data", "{tmp}/dup.csv", "--out", "{tmp}/e"], "duplicate column name(s)"),
    (["prepare", "{tmp}/bad_base.csv", "-o", "{tmp}/s"], "row 7: "),
    (["evaluate", "--checkpoint", "{tmp}/loss.png", "--data", "{tmp}/meta.csv", "--out", "{tmp}/e"],
     "loss.png is not a checkpoint"),
    (["nonsense"], "invalid choice: 'nonsense'"),
]


@pytest.mark.parametrize("argv, message", HOSTILE, ids=[" ".join(a[:1] + [m[:30]]) for a, m in HOSTILE])
def test_hostile_command_lines_end_in_one_line_and_exit_2(tmp_path, capsys, meta, argv, message):
    _files(tmp_path, meta)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("bioscan-kmer") and message.format(tmp=tmp_path) in err, err
    # Nothing was written where the command failed (the checks come before the work).
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_bug_keeps_its_traceback(tmp_path, capsys, meta, monkeypatch):
    from bioscan_kmer.data import statistics

    def planted(*args, **kwargs):
        raise ValueError("a planted bug")

    monkeypatch.setattr(statistics, "dataset_statistics", planted)
    with pytest.raises(ValueError, match="a planted bug"):
        cli.main(["stats", str(_csv(tmp_path, meta))])
    monkeypatch.setattr(statistics, "dataset_statistics", lambda *a, **k: [][1])
    with pytest.raises(IndexError):
        cli.main(["stats", str(_csv(tmp_path, meta))])


def test_a_bug_in_a_subprocess_shows_a_traceback(tmp_path):
    # A plain TypeError from deep inside (here: a planted one) is not a user error.
    code = ("import sys; from bioscan_kmer import cli; from bioscan_kmer.data import synthetic\n"
            "def bad(*a, **k): raise TypeError('planted')\n"
            "synthetic.synthetic_bioscan = bad\n"
            f"sys.exit(cli.main(['synth', '10', '-o', {str(tmp_path / 'x.csv')!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "TypeError: planted" in proc.stderr


def test_user_error_types_and_run_command(capsys):
    from bioscan_kmer.data.reading import DataFileError
    from bioscan_kmer.data.shards import ShardError

    for cls in (UsageError, DataError, DataFileError, ShardError):
        assert issubclass(cls, UserError) and issubclass(cls, ValueError)
        assert is_user_error(cls("x"))
    assert is_user_error(PermissionError(13, "Permission denied", "/x"))
    assert is_user_error(OSError(28, "No space left on device"))
    assert not is_user_error(ValueError("x")) and not is_user_error(TypeError("x"))
    assert not is_user_error(OSError(5, "Input/output error"))

    def raises(exc):
        raise exc

    assert run_command("p", raises, PermissionError(13, "Permission denied", "/x")) == 2
    assert capsys.readouterr().err == "p: error: Permission denied: '/x'\n"
    assert run_command("p", raises, DataError("two\n  lines")) == 2
    assert capsys.readouterr().err == "p: error: two lines\n"
    assert run_command("p", raises, KeyboardInterrupt()) == 130
    with pytest.raises(ZeroDivisionError):
        run_command("p", raises, ZeroDivisionError())


# ---- unusual inputs that are read -----------------------------------------------------

def _bom(path, out):
    out.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    return out


def _r_tsv(df, out, row_names=False):
    # What R's write.table(df, sep="\t") writes: every field quoted, maybe row names.
    text = df.astype(object).where(df.notna(), None)
    lines = ["\t".join(f'"{c}"' for c in df.columns)]
    for i, row in enumerate(text.itertuples(index=False), 1):
        fields = ["NA" if v is None else (f'"{v}"' if isinstance(v, str) else repr(v)) for v in row]
        lines.append("\t".join(([f'"{i}"'] if row_names else []) + fields))
    out.write_text("\n".join(lines) + "\n")
    return out


@pytest.mark.parametrize("variant", ["bom", "r_tsv", "r_tsv_row_names", "csv_gz", "tsv_gz"])
def test_unusual_inputs_read_like_the_plain_csv_in_every_command(tmp_path, capsys, meta, variant):
    plain = _csv(tmp_path, meta)
    if variant == "bom":
        path = _bom(plain, tmp_path / "bom.csv")
    elif variant.startswith("r_tsv"):
        path = _r_tsv(read_metadata(plain), tmp_path / "r.tsv", row_names=variant.endswith("names"))
    elif variant == "csv_gz":
        path = tmp_path / "meta.csv.gz"
        path.write_bytes(gzip.compress(plain.read_bytes()))
    else:
        plain = write_table(meta, tmp_path / "m.tsv")
        path = tmp_path / "meta.tsv.gz"
        path.write_bytes(gzip.compress(plain.read_bytes()))
    pd.testing.assert_frame_equal(read_any(path), read_any(plain))
    for command in (["stats"], ["split", "-q"], ["clean", "-o", str(tmp_path / "c.csv"), "-q"],
                    ["prepare", "-o", str(tmp_path / "shards"), "-q", "--splits", "train"]):
        code, out_plain, _ = run(capsys, command[0], plain, *command[1:])
        assert code == 0
        code, out, err = run(capsys, command[0], path, *command[1:])
        assert code == 0, err
        if command[0] in ("stats", "split"):
            assert out == out_plain


def test_stats_on_a_bold_export_without_subfamily(tmp_path, capsys):
    bold = tmp_path / "bold.tsv"
    bold.write_text(
        "processid\tbin_uri\tphylum\tclass\torder\tfamily\tgenus\tspecies\tmarker_code\tsequence\n"
        "P1\tBOLD:A\tArthropoda\tInsecta\tDiptera\tAidae\tAus\tAus bus\tCOI-5P\tAC-GT\n"
        "P2\tBOLD:B\tArthropoda\tInsecta\tDiptera\tAidae\tAus\tAus cus\tCOI-5P\tACGA\n"
        "P3\tBOLD:B\tArthropoda\tInsecta\tDiptera\tAidae\t\t\tCOI-3P\tACGA\n"
    )
    code, out, err = run(capsys, "stats", bold, "--out-dir", tmp_path / "st")
    assert code == 0
    ranks = [line.split()[0] for line in out.splitlines()[2:] if line and not line.startswith("saved")]
    assert ranks == ["Phylum", "Class", "Order", "Family", "Genus", "Species"]
    assert "Subfamily" not in out and "has no subfamily column; that rank is left out" in err
    species = next(line for line in out.splitlines() if line.startswith("Species")).split()
    assert species[1:4] == ["2", "100.0%", "2"]  # the COI-3P row is not counted
    assert (tmp_path / "st" / "category_sizes.png").is_file()


def test_clean_keeps_the_output_format_of_the_extension(tmp_path, capsys, meta):
    tsv = tmp_path / "in.tsv"
    code, _, _ = run(capsys, "clean", _csv(tmp_path, meta), "-o", tsv, "-q")
    assert code == 0
    header = tsv.read_text().split("\n", 1)[0]
    assert header.split("\t")[:3] == ["processid", "sampleid", "taxon"] and "," not in header
    code, _, _ = run(capsys, "clean", tsv, "-o", tmp_path / "out.tsv", "-q")
    assert code == 0
    pd.testing.assert_frame_equal(read_any(tmp_path / "out.tsv"), read_any(tsv))


def test_bold_fasta_headers_survive_clean(tmp_path, capsys):
    fasta = tmp_path / "bold.fas"
    fasta.write_text(">ABCD123-19|Aus bus|COI-5P|BOLD:AAA0001\nac-gtnn\n>EFG-1 a description\nACGT\n")
    code, _, err = run(capsys, "clean", fasta, "-o", tmp_path / "clean.fasta", "-q")
    assert code == 0, err
    assert (tmp_path / "clean.fasta").read_text() == (
        ">ABCD123-19|Aus bus|COI-5P|BOLD:AAA0001\nACGT\n>EFG-1 a description\nACGT\n")
    code, _, _ = run(capsys, "clean", fasta, "-o", tmp_path / "clean.csv", "-q")
    table = read_any(tmp_path / "clean.csv")
    assert table["processid"].tolist() == ["ABCD123-19", "EFG-1"]  # not cut at the space in "Aus bus"
    assert table["fasta_header"].tolist() == ["ABCD123-19|Aus bus|COI-5P|BOLD:AAA0001", "EFG-1 a description"]


def test_one_reader_decides_for_clean_and_evaluate(tmp_path):
    # A BIOSCAN-1M metadata TSV (nucraw, uri) was routed to the BOLD reader by evaluate
    # and to the metadata reader by the other commands.
    from bioscan_kmer.eval.cli import _read_table

    b1m = tmp_path / "b1m.tsv"
    rows = ["processid\tsampleid\turi\tname\tphylum\tclass\torder\tfamily\tsubfamily\tgenus\tspecies\tnucraw"]
    rng = np.random.default_rng(0)
    for i in range(300):
        sp = f"Aus sp{i % 30}" if i % 3 else "not_classified"
        seq = "".join(rng.choice(list("ACGT"), 60))
        rows.append(f"P{i}\tS{i}\tBOLD:A{i % 40}\tx\tArthropoda\tInsecta\tDiptera\tAidae\tnot_classified"
                    f"\tAus\t{sp}\t{seq}")
    b1m.write_text("\n".join(rows) + "\n")
    assert inspect_file(b1m).kind == "bioscan1m"
    df, is_bold = _read_table(b1m, 0)
    assert not is_bold and {"dna_barcode", "dna_bin", "taxon", "split"} <= set(df.columns)
    assert df["species"].isna().sum() == 100  # "not_classified" is missing, as read_metadata reads it


def test_help_names_every_command_and_every_option_has_help(capsys):
    parser = cli.build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = capsys.readouterr().out
    sub = next(a for a in parser._actions if a.dest == "command")
    commands = ("synth", "clean", "stats", "split", "prepare", "demo", "pretrain", "evaluate", "embed", "benchmark")
    assert set(sub.choices) == set(commands)  # a new command must be named here, and in the help
    description = parser.description
    for name in commands:
        assert re.search(rf"^    {name}\s", text, re.M) and f"({name})" in description, name
    for name in commands:
        for action in sub.choices[name]._actions:
            assert action.help and action.help.strip(), f"{name} {action.option_strings or action.dest}"


def test_demo_checks_every_option_before_the_first_step(tmp_path, monkeypatch, capsys):
    from bioscan_kmer.demo import run_demo

    for kwargs, message in (({"pretrain_steps": 0}, "pretrain_steps"), ({"n_records": 50}, "n_records"),
                            ({"seed": -1}, "seed"), ({"n_records": 1000.5}, "n_records")):
        with pytest.raises(UsageError, match=message):
            run_demo(tmp_path / "d", progress=True, **kwargs)
    # Without the model extras, the demo stops before step 1, not after step 6.
    monkeypatch.setitem(sys.modules, "bioscan_kmer.train", None)
    with pytest.raises(UsageError, match="train and eval extras"):
        run_demo(tmp_path / "d", n_records=200, progress=True)
    assert not (tmp_path / "d").exists() and capsys.readouterr().out == ""
