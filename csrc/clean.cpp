#include "clean.hpp"

#include <array>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "thread_pool.hpp"

namespace bk {
namespace {

// What a raw byte becomes. Values below 0x80 are the output letter itself.
enum : unsigned char { kDrop = 0x80, kGap = 0x81, kIupac = 0x82, kBad = 0xFF };

constexpr std::array<unsigned char, 256> make_table() {
    std::array<unsigned char, 256> t{};
    for (auto& v : t) v = kBad;
    const char* bases = "ACGTN";
    for (const char* c = bases; *c; ++c) {
        t[static_cast<unsigned char>(*c)] = static_cast<unsigned char>(*c);
        t[static_cast<unsigned char>(*c - 'A' + 'a')] = static_cast<unsigned char>(*c);
    }
    t['U'] = t['u'] = 'T';
    const char* iupac = "RYSWKMBDHV";
    for (const char* c = iupac; *c; ++c) {
        t[static_cast<unsigned char>(*c)] = kIupac;
        t[static_cast<unsigned char>(*c - 'A' + 'a')] = kIupac;
    }
    t['-'] = kGap;
    const char* space = " \t\n\r\v\f";
    for (const char* c = space; *c; ++c) t[static_cast<unsigned char>(*c)] = kDrop;
    return t;
}

// constexpr, so the compiler knows that writes through the output pointer cannot
// change it and keeps it out of the reload path of the inner loop.
constexpr std::array<unsigned char, 256> kTable = make_table();

[[noreturn]] void fail(int64_t row, int64_t pos, unsigned char c, const char* why) {
    throw RowError(row, "row " + std::to_string(row) + ": " + why + " " + describe_byte(c) +
                            " at position " + std::to_string(pos));
}

// Writes the cleaned form of s at w (room for s.size() bytes) and returns its end.
// Raw pointer writes: a push_back per base costs a capacity check per base.
char* clean_one(std::string_view s, int64_t row, const CleanOptions& opt, char* w) {
    char* const start = w;
    const auto* in = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    const bool gaps_to_n = opt.gaps_to_n, iupac_error = opt.iupac_error;
    size_t i = 0;
    while (i < n) {
        // The common case, a run of bases, in a tight loop without other branches.
        unsigned char m;
        while (i < n && (m = kTable[in[i]]) < 0x80) {
            *w++ = static_cast<char>(m);
            ++i;
        }
        if (i == n) break;
        const unsigned char c = in[i];
        m = kTable[c];
        if (m == kGap) {
            if (gaps_to_n) *w++ = 'N';
        } else if (m == kIupac) {
            if (iupac_error) fail(row, static_cast<int64_t>(i), c, "IUPAC ambiguity code");
            *w++ = 'N';
        } else if (m != kDrop) {
            fail(row, static_cast<int64_t>(i), c, "invalid character");
        }
        ++i;
    }
    if (!opt.trim_n && opt.max_length < 0) return w;
    // Trim, truncate, and trim again: truncation can expose an N run at the new end.
    char *lo = start, *hi = w;
    if (opt.trim_n) {
        while (lo < hi && *lo == 'N') ++lo;
        while (hi > lo && hi[-1] == 'N') --hi;
    }
    if (opt.max_length >= 0 && hi - lo > opt.max_length) {
        hi = lo + opt.max_length;
        if (opt.trim_n)
            while (hi > lo && hi[-1] == 'N') --hi;
    }
    if (lo > start) std::memmove(start, lo, static_cast<size_t>(hi - lo));
    return start + (hi - lo);
}

}  // namespace

void FreeBytes::operator()(char* p) const noexcept { std::free(p); }

ByteBuffer allocate_bytes(size_t size) {
    constexpr size_t kHuge = size_t{2} << 20;
    if (size < kHuge) {
        char* p = static_cast<char*>(std::malloc(size > 0 ? size : 1));
        if (!p) throw std::bad_alloc();
        return ByteBuffer(p);
    }
    const size_t rounded = (size + kHuge - 1) / kHuge * kHuge;  // aligned_alloc needs a multiple
    char* p = static_cast<char*>(std::aligned_alloc(kHuge, rounded));
    if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure just means small pages
#endif
    return ByteBuffer(p);
}

std::vector<CleanedBlock> clean_all(const SeqViews& seqs, const CleanOptions& opt, int threads) {
    const int64_t n = static_cast<int64_t>(seqs.size());
    const int t = effective_threads(threads, n, total_bytes(seqs));
    const auto bounds = byte_balanced_bounds(seqs, t);
    std::vector<CleanedBlock> blocks(t);
    run_blocks(t, [&](int b) {
        auto& blk = blocks[b];
        int64_t bytes = 0;
        for (int64_t i = bounds[b]; i < bounds[b + 1]; ++i) bytes += seqs[i].size();
        // Cleaning never lengthens a row, so the input size bounds the output.
        blk.data = allocate_bytes(static_cast<size_t>(bytes));
        blk.ends.reserve(static_cast<size_t>(bounds[b + 1] - bounds[b]));
        char* const base = blk.data.get();
        char* w = base;
        const CancelPoint poll;
        for (int64_t i = bounds[b]; i < bounds[b + 1]; ++i) {
            poll();
            w = clean_one(seqs[i], i, opt, w);
            blk.ends.push_back(static_cast<int64_t>(w - base));
        }
    });
    return blocks;
}

}  // namespace bk
