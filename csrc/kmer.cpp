#include "kmer.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <string>

#include "thread_pool.hpp"

namespace bk {
namespace {

constexpr uint8_t kInvalid = 0xFF;
constexpr uint8_t kN = 4;

// Byte -> digit: A0 C1 G2 T3, N4 (n_nucleotide only). Only uppercase letters are in
// the vocabulary, as in BarcodeBERT: lowercase, IUPAC and gaps give [UNK].
struct Digits {
    std::array<uint8_t, 256> t{};
    explicit Digits(bool with_n) {
        t.fill(kInvalid);
        t['A'] = 0;
        t['C'] = 1;
        t['G'] = 2;
        t['T'] = 3;
        if (with_n) t['N'] = kN;
    }
};
const Digits kAcgt(false), kAcgtn(true);

inline uint64_t pow_u(uint64_t b, int e) {
    uint64_t r = 1;
    while (e-- > 0) r *= b;
    return r;
}

// Id of the ACGT k-mer at p (k bytes), [UNK] if any byte is another letter. Branch-free:
// the digits' invalid bit is OR-ed and tested once.
inline int64_t pure_kmer_id(const uint8_t* p, int k, int64_t first, int64_t unk) {
    uint64_t code = 0;
    uint8_t bad = 0;
    for (int i = 0; i < k; ++i) {
        const uint8_t d = kAcgt.t[p[i]];
        bad |= d;
        code = (code << 2) | (d & 3u);
    }
    return (bad & 0x80) ? unk : first + static_cast<int64_t>(code);
}

// Id of the k-mer whose first `avail` bytes are p[0..avail) and whose remaining
// positions are N padding.
template <bool kWithN>
inline int64_t kmer_id(const uint8_t* p, int64_t avail, int k, int64_t first, int64_t unk,
                       const uint64_t* pow4) {
    const auto& tab = kWithN ? kAcgtn.t : kAcgt.t;
    if (!kWithN) {
        if (avail < k) return unk;  // padding N is not in the ACGT vocabulary
        return pure_kmer_id(p, k, first, unk);
    }
    uint64_t v4 = 0, v5 = 0, pure_less = 0;
    bool pure = true;
    for (int i = 0; i < k; ++i) {
        const uint8_t d = i < avail ? tab[p[i]] : kN;
        if (d == kInvalid) return unk;
        v4 = (v4 << 2) | (d & 3u);
        v5 = v5 * 5 + d;
        if (pure) {
            // Pure k-mers sharing this prefix with a smaller digit here.
            pure_less += static_cast<uint64_t>(std::min<uint8_t>(d, 4)) * pow4[k - 1 - i];
            if (d == kN) pure = false;
        }
    }
    if (pure) return first + static_cast<int64_t>(v4);
    // Rank among the N-holding k-mers = all smaller k-mers minus the pure ones.
    return first + static_cast<int64_t>(pow4[k]) + static_cast<int64_t>(v5 - pure_less);
}

// The real k-mers of one row without N handling, with k known at compile time (kK > 0)
// so that the per-k-mer loop unrolls: the common BarcodeBERT configurations.
template <class T, int kK>
inline void pure_kmers(const uint8_t* x, int64_t n_real, int stride, int k_runtime, int64_t first, int64_t unk,
                       T* out, uint8_t* m) {
    const int k = kK > 0 ? kK : k_runtime;  // a constant here lets the compiler unroll
    for (int64_t j = 0; j < n_real; ++j) {
        out[j] = static_cast<T>(pure_kmer_id(x + j * stride, k, first, unk));
        m[j] = 1;
    }
}

template <class T, bool kWithN, int kK = 0>
void tokenize_rows(const SeqViews& seqs, const TokenizerSpec& s, int64_t pad_to, const int64_t* offsets,
                   int64_t offset, T* ids, uint8_t* mask, int64_t lo, int64_t hi) {
    const int k = kK > 0 ? kK : s.k, stride = s.stride;
    const bool bert = s.preset == Preset::Bert;
    const bool specials = bert && s.add_special;
    const int64_t first = num_specials(s), unk = unk_id(s);
    const int64_t L = row_length(s, pad_to);
    const int64_t kmer_pos = L - (specials ? 2 : 0);
    uint64_t pow4[kMaxK + 1];
    for (int i = 0; i <= k; ++i) pow4[i] = pow_u(4, i);
    const CancelPoint poll;

    for (int64_t r = lo; r < hi; ++r) {
        poll();
        T* out = ids + r * L;
        uint8_t* m = mask + r * L;
        const int64_t off = offsets ? offsets[r] : offset;
        const std::string_view sv = seqs[r];
        const int64_t len = static_cast<int64_t>(sv.size());
        const int64_t start = std::min(off, len);
        const int64_t len_x = std::min(len - start, s.max_len);  // bases after offset+truncation
        const uint8_t* x = reinterpret_cast<const uint8_t*>(sv.data()) + start;
        // Token j covers x[j*stride, j*stride+k); it is real when it lies inside x.
        const int64_t n_real = len_x >= k ? std::min<int64_t>((len_x - k) / stride + 1, kmer_pos) : 0;

        int64_t pos = 0;
        if (specials) {
            out[pos] = static_cast<T>(2);  // [CLS]
            m[pos++] = 1;
        }
        if (kWithN) {
            for (int64_t j = 0; j < n_real; ++j, ++pos) {
                out[pos] = static_cast<T>(kmer_id<kWithN>(x + j * stride, k, k, first, unk, pow4));
                m[pos] = 1;
            }
        } else {
            pure_kmers<T, kK>(x, n_real, stride, k, first, unk, out + pos, m + pos);
            pos += n_real;
        }
        if (bert) {
            if (specials) {
                out[pos] = static_cast<T>(3);  // [SEP]
                m[pos++] = 1;
            }
            for (; pos < L; ++pos) {
                out[pos] = static_cast<T>(0);  // [PAD]
                m[pos] = 0;
            }
        } else {
            // BarcodeBERT pads x with N up to pad_to: k-mers reaching past the end
            // hold N ([UNK], or an N k-mer id with n_nucleotide) and are masked.
            for (int64_t j = n_real; j < kmer_pos; ++j, ++pos) {
                const int64_t b = j * stride;
                const int64_t avail = std::max<int64_t>(0, std::min<int64_t>(k, len_x - b));
                // Past the row, x + b would point beyond the buffer: pass x (unread, avail 0).
                out[pos] = static_cast<T>(kWithN ? kmer_id<true>(avail > 0 ? x + b : x, avail, k, first, unk, pow4)
                                                 : unk);
                m[pos] = 0;
            }
        }
    }
}

template <class T>
void count_row(std::string_view sv, int k, T* out) {
    const uint64_t kmask = (k == 32) ? ~0ULL : ((1ULL << (2 * k)) - 1);
    uint64_t code = 0;
    int run = 0;
    for (unsigned char c : sv) {
        const uint8_t d = kAcgt.t[c];
        if (d == kInvalid) {
            run = 0;
            continue;
        }
        code = ((code << 2) | d) & kmask;
        if (++run >= k) ++out[code];
    }
}

}  // namespace

void check_spec(const TokenizerSpec& s) {
    if (s.k < 1 || s.k > kMaxK)
        throw std::invalid_argument("k must be between 1 and " + std::to_string(kMaxK) + ", got " +
                                    std::to_string(s.k));
    if (s.stride < 1) throw std::invalid_argument("stride must be >= 1, got " + std::to_string(s.stride));
    if (s.max_len < 1) throw std::invalid_argument("max_len must be >= 1, got " + std::to_string(s.max_len));
}

int64_t num_specials(const TokenizerSpec& s) { return s.preset == Preset::Bert ? 5 : 2; }

int64_t vocab_size(const TokenizerSpec& s) {
    const uint64_t kmers = s.n_nucleotide ? pow_u(5, s.k) : pow_u(4, s.k);
    return num_specials(s) + static_cast<int64_t>(kmers);
}

int64_t pad_id(const TokenizerSpec& s) { return s.preset == Preset::Bert ? 0 : 1; }
int64_t unk_id(const TokenizerSpec&) { return 1; }

int64_t row_length(const TokenizerSpec& s, int64_t max_len) {
    const int64_t kmers = max_len >= s.k ? (max_len - s.k) / s.stride + 1 : 0;
    return kmers + ((s.preset == Preset::Bert && s.add_special) ? 2 : 0);
}

int64_t longest_bases(const SeqViews& seqs, const int64_t* offsets, int64_t offset, int64_t max_len) {
    int64_t best = 0;
    const CancelPoint poll;
    for (size_t r = 0; r < seqs.size(); ++r) {
        poll.every(static_cast<int64_t>(r));
        const int64_t len = static_cast<int64_t>(seqs[r].size());
        const int64_t off = offsets ? offsets[r] : offset;
        best = std::max(best, std::min(len - std::min(off, len), max_len));
    }
    return best;
}

template <class T>
void tokenize(const SeqViews& seqs, const TokenizerSpec& s, int64_t pad_to, const int64_t* offsets,
              int64_t offset, T* ids, uint8_t* mask, int threads) {
    check_spec(s);
    const int64_t n = static_cast<int64_t>(seqs.size());
    const int64_t L = row_length(s, pad_to);
    const int t = effective_threads(threads, n, n * (L + std::min<int64_t>(s.max_len, 1024)));
    // Rows are padded to a common length, so rows (not bytes) balance the work.
    parallel_rows(n, t, [&](int64_t lo, int64_t hi) {
        if (s.n_nucleotide)
            tokenize_rows<T, true>(seqs, s, pad_to, offsets, offset, ids, mask, lo, hi);
        else if (s.k == 4)  // BarcodeBERT
            tokenize_rows<T, false, 4>(seqs, s, pad_to, offsets, offset, ids, mask, lo, hi);
        else if (s.k == 8)  // BIOSCAN-5M's 8-4-4
            tokenize_rows<T, false, 8>(seqs, s, pad_to, offsets, offset, ids, mask, lo, hi);
        else
            tokenize_rows<T, false>(seqs, s, pad_to, offsets, offset, ids, mask, lo, hi);
    });
}

int64_t kmer_to_id(const TokenizerSpec& s, const char* kmer) {
    uint64_t pow4[kMaxK + 1];
    for (int i = 0; i <= s.k; ++i) pow4[i] = pow_u(4, i);
    const auto* p = reinterpret_cast<const uint8_t*>(kmer);
    return s.n_nucleotide ? kmer_id<true>(p, s.k, s.k, num_specials(s), unk_id(s), pow4)
                          : kmer_id<false>(p, s.k, s.k, num_specials(s), unk_id(s), pow4);
}

bool id_to_kmer(const TokenizerSpec& s, int64_t id, char* out) {
    static const char kLetters[] = "ACGTN";
    const int64_t first = num_specials(s);
    const int64_t n4 = static_cast<int64_t>(pow_u(4, s.k));
    if (id < first || id >= vocab_size(s)) return false;
    int64_t v = id - first;
    if (v < n4) {
        for (int i = s.k - 1; i >= 0; --i, v >>= 2) out[i] = kLetters[v & 3];
        return true;
    }
    // The (v - n4)-th N-holding k-mer in product order: walk the base-5 numbers,
    // skipping the pure ones, by counting per prefix digit.
    int64_t rank = v - n4;
    uint64_t pow4[kMaxK + 1], pow5[kMaxK + 1];
    for (int i = 0; i <= s.k; ++i) pow4[i] = pow_u(4, i), pow5[i] = pow_u(5, i);
    bool pure = true;
    for (int i = 0; i < s.k; ++i) {
        const int rest = s.k - 1 - i;
        for (int d = 0; d < 5; ++d) {
            // N-holding completions of the prefix + d.
            const bool still_pure = pure && d < 4;
            const int64_t n_with_n = static_cast<int64_t>(still_pure ? pow5[rest] - pow4[rest] : pow5[rest]);
            if (rank < n_with_n) {
                out[i] = kLetters[d];
                pure = still_pure;
                break;
            }
            rank -= n_with_n;
        }
    }
    return true;
}

template <class T>
void kmer_counts_per_row(const SeqViews& seqs, int k, T* out, int threads) {
    if (k < 1 || k > kMaxK) throw std::invalid_argument("k must be between 1 and 12");
    const int64_t n = static_cast<int64_t>(seqs.size());
    const int64_t width = static_cast<int64_t>(pow_u(4, k));
    const int t = effective_threads(threads, n, total_bytes(seqs));
    const auto bounds = byte_balanced_bounds(seqs, t);
    run_blocks(t, [&](int b) {
        const CancelPoint poll;
        for (int64_t r = bounds[b]; r < bounds[b + 1]; ++r) {
            poll();
            count_row<T>(seqs[r], k, out + r * width);
        }
    });
}

void kmer_counts_total(const SeqViews& seqs, int k, int64_t* out, int threads) {
    if (k < 1 || k > kMaxK) throw std::invalid_argument("k must be between 1 and 12");
    const int64_t n = static_cast<int64_t>(seqs.size());
    const size_t width = static_cast<size_t>(pow_u(4, k));
    // Per-thread tables cost width*8 bytes each; only worth it for large inputs.
    const int t = effective_threads(threads, n, total_bytes(seqs) / 4 - static_cast<int64_t>(width));
    const auto bounds = byte_balanced_bounds(seqs, t);
    std::vector<std::vector<int64_t>> partial(t);
    run_blocks(t, [&](int b) {
        int64_t* dst = out;
        if (b > 0) {
            partial[b].assign(width, 0);
            dst = partial[b].data();
        }
        const CancelPoint poll;
        for (int64_t r = bounds[b]; r < bounds[b + 1]; ++r) {
            poll();
            count_row<int64_t>(seqs[r], k, dst);
        }
    });
    for (int b = 1; b < t; ++b)
        for (size_t i = 0; i < width; ++i) out[i] += partial[b][i];
}

#define BK_INSTANTIATE(T)                                                                              \
    template void tokenize<T>(const SeqViews&, const TokenizerSpec&, int64_t, const int64_t*, int64_t, T*, \
                              uint8_t*, int);
BK_INSTANTIATE(uint8_t)
BK_INSTANTIATE(int16_t)
BK_INSTANTIATE(uint16_t)
BK_INSTANTIATE(int32_t)
BK_INSTANTIATE(uint32_t)
BK_INSTANTIATE(int64_t)
BK_INSTANTIATE(uint64_t)
#undef BK_INSTANTIATE
template void kmer_counts_per_row<int32_t>(const SeqViews&, int, int32_t*, int);
template void kmer_counts_per_row<int64_t>(const SeqViews&, int, int64_t*, int);

}  // namespace bk
