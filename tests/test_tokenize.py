"""tokenize and KmerTokenizer against the pure-Python reference of SPEC section 3."""
import json

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import bioscan_kmer as bk
import kmer_reference as ref

# Letters that exercise every rule: the alphabet, N, IUPAC, lowercase, gaps.
LETTERS = "ACGTACGTACGTNNRYacgt-"
seqs_st = st.lists(st.text(alphabet=LETTERS, max_size=40), max_size=6)


def check_barcodebert(seqs, k, stride, max_len, offsets, n_nucleotide):
    ids, mask = bk.tokenize(seqs, k=k, stride=stride, max_len=max_len, offset=np.asarray(offsets, dtype=np.int64),
                            n_nucleotide=n_nucleotide, threads=1)
    for row, (s, off) in enumerate(zip(seqs, offsets)):
        want_ids, want_mask = ref.tokenize_barcodebert(s, k, stride or k, max_len, off, n_nucleotide)
        assert ids[row].tolist() == want_ids, (s, off)
        assert mask[row].astype(int).tolist() == want_mask, (s, off)


@settings(max_examples=300, deadline=None)
@given(
    seqs=seqs_st,
    k=st.integers(1, 8),
    stride=st.one_of(st.none(), st.integers(1, 9)),
    max_len=st.integers(1, 45),
    n_nucleotide=st.booleans(),
    data=st.data(),
)
@example(seqs=[""], k=4, stride=None, max_len=660, n_nucleotide=False, data=None)
@example(seqs=["ACG"], k=4, stride=None, max_len=8, n_nucleotide=False, data=None)  # shorter than k
@example(seqs=["ACGT"], k=4, stride=None, max_len=4, n_nucleotide=True, data=None)  # exactly k
@example(seqs=["NNNNNNNN"], k=2, stride=None, max_len=8, n_nucleotide=True, data=None)  # all N
@example(seqs=["ACGTACGTACGT"], k=4, stride=None, max_len=6, n_nucleotide=False, data=None)  # truncated
def test_barcodebert_matches_reference(seqs, k, stride, max_len, n_nucleotide, data):
    if data is None:
        offsets = [0] * len(seqs)
    else:
        offsets = data.draw(st.lists(st.integers(0, 12), min_size=len(seqs), max_size=len(seqs)))
    check_barcodebert(seqs, k, stride, max_len, offsets, n_nucleotide)


@settings(max_examples=200, deadline=None)
@given(seqs=seqs_st, k=st.integers(1, 6), stride=st.integers(1, 7), max_len=st.integers(1, 45),
       offset=st.integers(0, 10), n_nucleotide=st.booleans(), add_special=st.booleans())
def test_bert_preset_matches_reference(seqs, k, stride, max_len, offset, n_nucleotide, add_special):
    ids, mask = bk.tokenize(seqs, k=k, stride=stride, max_len=max_len, offset=offset, preset="bert",
                            n_nucleotide=n_nucleotide, add_special_tokens=add_special)
    for row, s in enumerate(seqs):
        want_ids, want_mask = ref.tokenize_bert(s, k, stride, max_len, offset, n_nucleotide, add_special)
        assert ids[row].tolist() == want_ids
        assert mask[row].astype(int).tolist() == want_mask


@settings(max_examples=100, deadline=None)
@given(seqs=seqs_st, k=st.integers(1, 6), max_len=st.integers(1, 45), offset=st.integers(0, 8))
def test_mask_equals_barcodebert_literal_mask_when_stride_is_k(seqs, k, max_len, offset):
    _, mask = bk.tokenize(seqs, k=k, max_len=max_len, offset=offset)
    for row, s in enumerate(seqs):
        assert mask[row].astype(int).tolist() == ref.reference_mask_stride_k(s, k, max_len, offset)


@settings(max_examples=100, deadline=None)
@given(seqs=st.lists(st.text(alphabet="ACGTN", max_size=60), min_size=1, max_size=6), k=st.integers(1, 6),
       max_len=st.integers(1, 70), preset=st.sampled_from(["barcodebert", "bert"]))
def test_padding_false_pads_to_the_longest_row(seqs, k, max_len, preset):
    longest = max(min(len(s), max_len) for s in seqs)
    ids, mask = bk.tokenize(seqs, k=k, max_len=max_len, padding=False, preset=preset)
    want_ids, want_mask = bk.tokenize(seqs, k=k, max_len=longest, preset=preset) if longest > 0 else (None, None)
    if want_ids is None:
        assert ids.shape[1] == (2 if preset == "bert" else 0)
    else:
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_array_equal(mask, want_mask)


def test_default_shapes_and_vocab_sizes():
    seq = "ACGT" * 200
    ids, mask = bk.tokenize([seq, seq[:100]])
    assert ids.shape == mask.shape == (2, 165) and ids.dtype == np.int64 and mask.dtype == np.bool_
    assert mask[0].all() and mask[1].sum() == 25
    ids8, _ = bk.tokenize([seq], k=8)
    assert ids8.shape == (1, 82)
    assert bk.KmerTokenizer(k=4).vocab_size == 258
    assert bk.KmerTokenizer(k=8).vocab_size == 65538
    assert bk.KmerTokenizer(k=4, preset="bert").vocab_size == 261
    assert bk.KmerTokenizer(k=3, n_nucleotide=True).vocab_size == 5**3 + 2


def test_first_and_last_kmer_ids():
    tok = bk.KmerTokenizer(k=4)
    assert tok.vocab["AAAA"] == 2 and tok.vocab["AAAC"] == 3 and tok.vocab["TTTT"] == 4**4 + 1
    ids, _ = bk.tokenize(["AAAAAAACTTTT"], max_len=12)
    assert ids[0].tolist() == [2, 3, 257]


def test_n_nucleotide_vocabulary_keeps_pure_ids_and_appends_n_kmers():
    tok = bk.KmerTokenizer(k=2, n_nucleotide=True)
    pure = bk.KmerTokenizer(k=2)
    for kmer, i in pure.vocab.items():
        assert tok.vocab[kmer] == i
    assert tok.vocab["AN"] == 18 and tok.vocab["CN"] == 19 and tok.vocab["NA"] == 22 and tok.vocab["NN"] == 26
    ids, _ = bk.tokenize(["ANNA"], k=2, max_len=4, n_nucleotide=True)
    assert ids[0].tolist() == [18, 22]


@pytest.mark.parametrize("k,n_nucleotide", [(1, False), (3, True), (4, False), (5, True), (6, False)])
def test_vocab_and_native_ids_agree_for_every_kmer(k, n_nucleotide):
    tok = bk.KmerTokenizer(k=k, max_len=k, n_nucleotide=n_nucleotide)
    kmers = [t for t in tok.vocab if not t.startswith("[")]
    ids, _ = bk.tokenize(kmers, k=k, max_len=k, n_nucleotide=n_nucleotide)
    assert ids[:, 0].tolist() == [tok.vocab[t] for t in kmers]
    assert [tok.decode([i]) for i in ids[:, 0]] == kmers
    assert all(tok.token_to_id(t) == tok.vocab[t] for t in kmers[:50])


def test_decode_round_trip_and_specials():
    tok = bk.KmerTokenizer(k=4, max_len=12)
    ids, _ = tok.encode("ACGTTTGACCAA")
    assert tok.decode(ids) == "ACGTTTGACCAA"
    bert = bk.KmerTokenizer(k=4, max_len=12, preset="bert")
    ids, _ = bert.encode("ACGTTTGA")
    assert bert.decode(ids) == "[CLS] ACGT TTGA [SEP] [PAD]"
    assert bert.decode(ids, skip_special_tokens=True) == "ACGTTTGA"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([258])


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.int32, np.uint32, np.int64, np.uint64])
def test_dtypes_give_identical_ids(dtype):
    seqs = ["ACGTNACGTTGCA" * 7, "TTT", ""]
    want, _ = bk.tokenize(seqs, k=5)
    got, _ = bk.tokenize(seqs, k=5, dtype=dtype)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got.astype(np.int64), want)


def test_dtype_too_small_for_vocabulary_is_refused():
    with pytest.raises(ValueError, match="cannot hold the vocabulary"):
        bk.tokenize(["ACGT"], k=8, dtype=np.uint16)  # 65538 ids
    with pytest.raises(ValueError, match="cannot hold"):
        bk.tokenize(["ACGT"], k=7, n_nucleotide=True, dtype=np.uint16)
    bk.tokenize(["ACGT"], k=7, dtype=np.uint16)  # 16386 ids fit
    with pytest.raises(TypeError):
        bk.tokenize(["ACGT"], dtype=np.float32)


# The byte order that is not this machine's, for each width the tokenizer offers.
NON_NATIVE = [np.dtype(d).newbyteorder("S") for d in ("u2", "i2", "i4", "u4", "i8", "u8")]


@pytest.mark.parametrize("dtype", NON_NATIVE, ids=str)
def test_non_native_byte_order_holds_the_same_ids(dtype):
    # The core once wrote native integers into a ">i8" array: byte-swapped garbage ids.
    seqs = ["ACGTACGTGGCA", "TTTAN", "", "CCCCGGGGTTTTAAAA"]
    want, want_mask = bk.tokenize(seqs, k=4, max_len=12)
    ids, mask = bk.tokenize(seqs, k=4, max_len=12, dtype=dtype)
    assert ids.dtype == dtype and not ids.dtype.isnative
    assert ids.tolist() == want.tolist() and mask.tolist() == want_mask.tolist()
    tok = bk.KmerTokenizer(k=4, max_len=12, dtype=dtype)
    assert tok.dtype == dtype
    row, row_mask = tok.encode(seqs[0])
    assert row.dtype == dtype and row.tolist() == want[0].tolist()
    assert tok(seqs)["input_ids"].tolist() == want.tolist()
    other = bk.KmerTokenizer(k=4, max_len=12)(seqs, dtype=dtype)["input_ids"]
    assert other.dtype == dtype and other.tolist() == want.tolist()
    # The configuration keeps the byte order ("int64" alone would lose it).
    assert bk.KmerTokenizer(**tok.config).dtype == dtype


def test_non_native_byte_order_gives_native_torch_tensors():
    torch = pytest.importorskip("torch")
    seqs = ["ACGTACGTGGCA", "TTTAN"]
    want = bk.tokenize(seqs, k=4, max_len=12)[0]
    tok = bk.KmerTokenizer(k=4, max_len=12, dtype=np.dtype(np.int64).newbyteorder("S"))
    ids = tok(seqs, return_tensors="pt")["input_ids"]
    assert ids.dtype == torch.int64 and ids.tolist() == want.tolist()


def test_the_core_refuses_a_non_native_dtype_itself():
    from bioscan_kmer import _core

    swapped = np.dtype(np.int64).newbyteorder("S")
    with pytest.raises(TypeError, match="native byte order"):
        _core.tokenize(_core.Sequences(["ACGT"]), k=4, stride=4, max_len=8, offset=0, preset=0,
                       n_nucleotide=False, dtype=swapped, pad_to_max_len=True, add_special=True, threads=1)
    with pytest.raises(TypeError, match="native byte order"):
        _core.kmer_counts(_core.Sequences(["ACGT"]), k=2, per_row=True, dtype=np.dtype(np.int32).newbyteorder("S"),
                          threads=1)


def test_decode_takes_one_row_and_an_optional_mask():
    torch = pytest.importorskip("torch")
    tok = bk.KmerTokenizer(k=4, max_len=12)
    pair = tok.encode("ACGTTTGA")
    assert tok.decode(pair[0]) == "ACGT TTGA [UNK]"  # the padding is [UNK] in this preset
    assert tok.decode(*pair) == "ACGTTTGA"  # the mask drops it
    assert tok.decode(pair[0], mask=pair[1].astype(np.int32)) == "ACGTTTGA"
    assert tok.decode(torch.as_tensor(pair[0]), torch.as_tensor(pair[1])) == "ACGTTTGA"
    assert tok.decode(pair[0].tolist()) == tok.decode(tuple(pair[0].tolist())) == "ACGT TTGA [UNK]"
    assert tok.decode([]) == ""


@pytest.mark.parametrize("bad,match", [
    ("pair", "pair of arrays"),
    ("batch", "got a dict"),
    ("2-D", r"one row \(1-D\)"),
    ("text", "1-D"),
    ("floats", "must hold integers"),
    ("bools", "must hold integers"),
    ("strings", "must hold integers"),
])
def test_decode_refuses_what_is_not_one_row_of_ids(bad, match):
    tok = bk.KmerTokenizer(k=4, max_len=12)
    ids, mask = tok.encode("ACGTTTGA")
    value = {"pair": (ids, mask), "batch": tok(["ACGT"]), "2-D": ids[None], "text": "ACGT",
             "floats": ids.astype(float), "bools": mask, "strings": ["ACGT"]}[bad]
    with pytest.raises(TypeError, match=match):
        tok.decode(value)


def test_decode_checks_the_mask():
    tok = bk.KmerTokenizer(k=4, max_len=12)
    ids, mask = tok.encode("ACGTTTGA")
    with pytest.raises(ValueError, match="2 entries for 3 ids"):
        tok.decode(ids, mask[:2])
    with pytest.raises(ValueError, match="booleans"):
        tok.decode(ids, np.array([0, 2, 1]))
    with pytest.raises(TypeError, match="mask must hold"):
        tok.decode(ids, mask.astype(float))


@pytest.mark.parametrize("mask_dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_mask_dtype(mask_dtype):
    _, mask = bk.tokenize(["ACGTACGT"], max_len=12, mask_dtype=mask_dtype)
    assert mask.dtype == np.dtype(mask_dtype) and mask.astype(int).tolist() == [[1, 1, 0]]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"k": 0}, "k must be between 1 and 12"),
        ({"k": 13}, "k must be between 1 and 12"),
        ({"stride": 0}, "stride must be >= 1"),
        ({"max_len": 0}, "max_len must be >= 1"),
        ({"offset": -1}, "offset must be >= 0"),
        ({"preset": "gpt"}, "preset must be one of"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bk.tokenize(["ACGT"], **kwargs)


def test_negative_offset_in_array_names_the_row():
    with pytest.raises(ValueError, match="row 1: offset must be >= 0"):
        bk.tokenize(["ACGT", "ACGT"], offset=np.array([0, -2]))
    with pytest.raises(ValueError, match="one entry per sequence"):
        bk.tokenize(["ACGT", "ACGT"], offset=np.array([0]))
    with pytest.raises(TypeError):
        bk.tokenize(["ACGT"], offset=np.array([0.5]))


def test_empty_input_has_the_right_shape():
    ids, mask = bk.tokenize([])
    assert ids.shape == mask.shape == (0, 165)
    ids, mask = bk.tokenize([], preset="bert")
    assert ids.shape == (0, 167)


def test_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGTN"), size=rng.integers(0, 900))) for _ in range(3000)]
    offsets = rng.integers(0, 4, size=len(seqs))
    base = bk.tokenize(seqs, offset=offsets, threads=1)
    for threads in (2, 3, None):
        got = bk.tokenize(seqs, offset=offsets, threads=threads)
        np.testing.assert_array_equal(got[0], base[0])
        np.testing.assert_array_equal(got[1], base[1])
    # ... and equal to a per-row loop.
    for i in range(0, len(seqs), 97):
        row_ids, row_mask = bk.tokenize([seqs[i]], offset=int(offsets[i]))
        np.testing.assert_array_equal(row_ids[0], base[0][i])


def test_tokenizer_call_and_torch_tensors_share_memory(monkeypatch):
    torch = pytest.importorskip("torch")  # installed by .ci/run; the skip is for minimal installs only
    from bioscan_kmer import tokenizer as tokenizer_module

    tok = bk.KmerTokenizer(k=4)
    np_batch = tok(["ACGT" * 10, "GGCC"])
    # Keep the arrays the tokenizer computes, to check that the tensors are views of
    # them (torch.from_numpy), not copies (torch.tensor).
    computed = []
    run = tokenizer_module._Spec.run
    monkeypatch.setattr(tokenizer_module._Spec, "run", lambda self, *a: computed.append(run(self, *a)) or computed[-1])
    batch = tok(["ACGT" * 10, "GGCC"], return_tensors="pt")
    assert batch["input_ids"].dtype == torch.int64 and batch["input_ids"].shape == (2, 165)
    assert batch["attention_mask"].dtype == torch.bool
    np.testing.assert_array_equal(batch["input_ids"].numpy(), np_batch["input_ids"])
    (ids, mask), = computed
    assert np.shares_memory(batch["input_ids"].numpy(), ids)
    assert np.shares_memory(batch["attention_mask"].numpy(), mask)
    batch["input_ids"][0, 0] = 7  # a write through the tensor shows in the computed array
    assert ids[0, 0] == 7


def test_tokenizer_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, bioscan_kmer as bk; t = bk.KmerTokenizer(); t(['ACGT']); t.vocab; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_save_load_round_trip(tmp_path):
    tok = bk.KmerTokenizer(k=5, stride=2, max_len=100, preset="bert", n_nucleotide=True, dtype=np.int32)
    path = tmp_path / "tok.json"
    tok.save(path)
    again = bk.KmerTokenizer.load(path)
    assert again == tok and again.vocab == tok.vocab and again.dtype == np.int32
    data = json.loads(path.read_text())
    data["vocab"]["AAAAA"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="does not match"):
        bk.KmerTokenizer.load(path)
    path.write_text("not json")
    with pytest.raises(ValueError, match="not a tokenizer"):
        bk.KmerTokenizer.load(path)


def test_special_ids():
    bb = bk.KmerTokenizer()
    assert (bb.mask_id, bb.unk_id, bb.pad_id, bb.cls_id, bb.first_kmer_id) == (0, 1, 1, None, 2)
    bert = bk.KmerTokenizer(preset="bert")
    assert (bert.pad_id, bert.unk_id, bert.cls_id, bert.sep_id, bert.mask_id, bert.first_kmer_id) == (0, 1, 2, 3, 4, 5)
    assert bert.seq_len == 167 and bb.seq_len == 165


def test_encode_rejects_non_strings():
    with pytest.raises(TypeError):
        bk.KmerTokenizer().encode(["ACGT"])
