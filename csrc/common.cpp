#include "common.hpp"

#include <cstdio>
#include <cstring>

#include "thread_pool.hpp"

namespace bk {

int64_t total_bytes(const SeqViews& seqs) {
    int64_t t = 0;
    for (auto s : seqs) t += static_cast<int64_t>(s.size());
    return t;
}

std::vector<int64_t> byte_balanced_bounds(const SeqViews& seqs, int n_blocks) {
    const int64_t n = static_cast<int64_t>(seqs.size());
    std::vector<int64_t> bounds(n_blocks + 1, n);
    bounds[0] = 0;
    if (n_blocks <= 1) return bounds;
    // A row also costs a fixed amount (its output row), so count it as 16 bytes.
    const int64_t total = total_bytes(seqs) + 16 * n;
    int64_t acc = 0;
    int b = 1;
    for (int64_t i = 0; i < n && b < n_blocks; ++i) {
        acc += static_cast<int64_t>(seqs[i].size()) + 16;
        while (b < n_blocks && acc * n_blocks >= total * b) bounds[b++] = i + 1;
    }
    for (; b < n_blocks; ++b) bounds[b] = n;
    return bounds;
}

static bool has_high_bit(const char* p, size_t len) {
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        std::memcpy(&w, p + i, 8);
        acc |= w;
    }
    for (; i < len; ++i) acc |= static_cast<unsigned char>(p[i]);
    return (acc & 0x8080808080808080ULL) != 0;
}

int64_t first_non_ascii(const SeqViews& seqs, int threads) {
    const int64_t n = static_cast<int64_t>(seqs.size());
    const int t = effective_threads(threads, n, total_bytes(seqs));
    const auto bounds = byte_balanced_bounds(seqs, t);
    std::vector<int64_t> found(t, -1);
    run_blocks(t, [&](int b) {
        const CancelPoint poll;
        for (int64_t i = bounds[b]; i < bounds[b + 1]; ++i) {
            poll();
            if (has_high_bit(seqs[i].data(), seqs[i].size())) {
                found[b] = i;
                return;
            }
        }
    });
    for (auto f : found)
        if (f >= 0) return f;
    return -1;
}

std::string describe_byte(unsigned char c) {
    char buf[8];
    if (c >= 0x20 && c < 0x7f) {
        std::snprintf(buf, sizeof buf, "'%c'", c);
    } else {
        std::snprintf(buf, sizeof buf, "'\\x%02x'", c);
    }
    return buf;
}

}  // namespace bk
