#include "unique.hpp"

#include <cstring>

#include "thread_pool.hpp"

namespace bk {
namespace {

inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

inline uint64_t fmix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

// An open-addressing table of the uniques of one hash partition.
class Table {
  public:
    explicit Table(size_t expected) {
        size_t cap = 1024;
        while (cap < expected * 2) cap <<= 1;
        slots_.assign(cap, Slot{0, 0});
    }

    // Returns the local id of s, inserting it if new.
    int64_t insert(const SeqViews& seqs, int64_t row, uint64_t h) {
        if ((first_row_.size() + 1) * 2 > slots_.size()) grow();
        const std::string_view s = seqs[row];
        size_t mask = slots_.size() - 1, i = (h >> 7) & mask;
        while (true) {
            const Slot slot = slots_[i];
            if (slot.id_plus_1 == 0) break;
            const int64_t id = slot.id_plus_1 - 1;
            if (slot.hash == h) {
                const std::string_view o = seqs[first_row_[id]];
                if (o.size() == s.size() && std::memcmp(o.data(), s.data(), s.size()) == 0) {
                    ++counts_[id];
                    return id;
                }
            }
            i = (i + 1) & mask;
        }
        const int64_t id = static_cast<int64_t>(first_row_.size());
        slots_[i] = Slot{id + 1, h};
        first_row_.push_back(row);
        counts_.push_back(1);
        return id;
    }

    std::vector<int64_t> first_row_, counts_;

  private:
    // The hash sits in the slot, so a probe reads one cache line before any string.
    struct Slot {
        int64_t id_plus_1;  // 0 for an empty slot
        uint64_t hash;
    };

    void grow() {
        std::vector<Slot> bigger(slots_.size() * 2, Slot{0, 0});
        const size_t mask = bigger.size() - 1;
        for (const Slot& s : slots_) {
            if (s.id_plus_1 == 0) continue;
            size_t i = (s.hash >> 7) & mask;
            while (bigger[i].id_plus_1 != 0) i = (i + 1) & mask;
            bigger[i] = s;
        }
        slots_.swap(bigger);
    }

    std::vector<Slot> slots_;
};

}  // namespace

uint64_t hash_bytes(const char* p, size_t len) {
    // Four independent lanes hide the multiply latency: barcodes are ~660 bytes, so
    // hashing, not probing, is most of the work.
    const uint64_t k1 = 0x9E3779B97F4A7C15ULL, k2 = 0xC2B2AE3D27D4EB4FULL;
    uint64_t a = len * k1, b = a ^ k2, c = a + k1, d = a - k2;
    auto lane = [&](uint64_t h, size_t at) {
        uint64_t w;
        std::memcpy(&w, p + at, 8);
        return rotl(h ^ (w * k2), 29) * k1;
    };
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        a = lane(a, i);
        b = lane(b, i + 8);
        c = lane(c, i + 16);
        d = lane(d, i + 24);
    }
    uint64_t h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18);
    for (; i + 8 <= len; i += 8) h = lane(h, i);
    uint64_t tail = 0;
    for (size_t j = 0; i + j < len; ++j) tail |= static_cast<uint64_t>(static_cast<unsigned char>(p[i + j])) << (8 * j);
    h = rotl(h ^ (tail * k2), 29) * k1;
    return fmix64(h);
}

UniqueResult unique(const SeqViews& seqs, int64_t* inverse, int threads) {
    const int64_t n = static_cast<int64_t>(seqs.size());
    const int t = effective_threads(threads, n, total_bytes(seqs) + 64 * n);
    std::vector<uint64_t> hashes(static_cast<size_t>(n));
    const auto bounds = byte_balanced_bounds(seqs, t);
    run_blocks(t, [&](int b) {
        const CancelPoint poll;
        for (int64_t i = bounds[b]; i < bounds[b + 1]; ++i) {
            poll();
            hashes[i] = hash_bytes(seqs[i].data(), seqs[i].size());
        }
    });

    // Equal strings have equal hashes, so each partition can be deduplicated alone.
    std::vector<Table> tables;
    tables.reserve(t);
    // Sized for every row of the partition being distinct: no rehash while inserting.
    for (int p = 0; p < t; ++p) tables.emplace_back(static_cast<size_t>(n / t + 1));
    run_blocks(t, [&](int p) {
        auto& tab = tables[p];
        const CancelPoint poll;
        for (int64_t i = 0; i < n; ++i) {
            poll.every(i);
            const uint64_t h = hashes[i];
            if (static_cast<int>(h % t) == p) inverse[i] = tab.insert(seqs, i, h);
        }
    });

    // Global ids follow first occurrence: the rank of each unique's first row.
    const CancelPoint poll;
    std::vector<int64_t> gid_of_row(static_cast<size_t>(n), -1);
    for (auto& tab : tables)
        for (auto r : tab.first_row_) gid_of_row[r] = 0;
    UniqueResult res;
    int64_t next = 0;
    for (int64_t i = 0; i < n; ++i) {
        poll.every(i);
        if (gid_of_row[i] == 0) {
            gid_of_row[i] = next++;
            res.first_row.push_back(i);
        }
    }
    res.counts.assign(static_cast<size_t>(next), 0);
    std::vector<std::vector<int64_t>> local_to_global(t);
    for (int p = 0; p < t; ++p) {
        auto& tab = tables[p];
        auto& map = local_to_global[p];
        map.resize(tab.first_row_.size());
        for (size_t u = 0; u < map.size(); ++u) {
            map[u] = gid_of_row[tab.first_row_[u]];
            res.counts[map[u]] = tab.counts_[u];
        }
    }
    parallel_rows(n, t, [&](int64_t lo, int64_t hi) {
        const CancelPoint poll_block;
        for (int64_t i = lo; i < hi; ++i) {
            poll_block.every(i);
            inverse[i] = local_to_global[hashes[i] % t][inverse[i]];
        }
    });
    return res;
}

}  // namespace bk
