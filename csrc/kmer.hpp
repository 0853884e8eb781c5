// k-mer tokenization (SPEC section 3) and k-mer spectra.
//
// Two presets share one id layout: specials first, then the 4**k pure k-mers in
// itertools.product("ACGT") order, then (n_nucleotide only) the k-mers holding at
// least one N in product("ACGTN") order.
#pragma once

#include <cstdint>

#include "common.hpp"

namespace bk {

enum class Preset { BarcodeBERT = 0, Bert = 1 };

struct TokenizerSpec {
    int k = 4;
    int stride = 4;
    int64_t max_len = 660;
    Preset preset = Preset::BarcodeBERT;
    bool n_nucleotide = false;
    bool add_special = true;  // [CLS]/[SEP] around the k-mers (bert preset only)
};

constexpr int kMaxK = 12;

// Validates the spec; throws std::invalid_argument with a readable message.
void check_spec(const TokenizerSpec& s);

int64_t num_specials(const TokenizerSpec& s);
int64_t vocab_size(const TokenizerSpec& s);
int64_t pad_id(const TokenizerSpec& s);  // barcodebert pads with N, i.e. [UNK]
int64_t unk_id(const TokenizerSpec& s);

// Number of token positions per row when every row is padded to `max_len` bases.
int64_t row_length(const TokenizerSpec& s, int64_t max_len);

// Longest row (in bases, after offset and truncation) of a batch: used when the
// caller pads to the batch's longest row instead of max_len.
int64_t longest_bases(const SeqViews& seqs, const int64_t* offsets, int64_t offset, int64_t max_len);

// Tokenizes every row into ids[n, L] and mask[n, L] (row-major), L = row_length(s, pad_to).
// offsets: per-row offsets or nullptr to use `offset` for every row.
template <class T>
void tokenize(const SeqViews& seqs, const TokenizerSpec& s, int64_t pad_to, const int64_t* offsets,
              int64_t offset, T* ids, uint8_t* mask, int threads);

// Id of one k-mer string (length k): what `vocab[kmer]` gives, [UNK] if absent.
int64_t kmer_to_id(const TokenizerSpec& s, const char* kmer);
// Inverse of kmer_to_id for k-mer ids; returns false for special ids.
bool id_to_kmer(const TokenizerSpec& s, int64_t id, char* out);

// Overlapping k-mer counts (stride 1) over A/C/G/T; k-mers holding any other byte are
// skipped. Per row into out[n, 4**k] (T = int32 or int64), or summed into out[4**k].
template <class T>
void kmer_counts_per_row(const SeqViews& seqs, int k, T* out, int threads);
void kmer_counts_total(const SeqViews& seqs, int k, int64_t* out, int threads);

}  // namespace bk
