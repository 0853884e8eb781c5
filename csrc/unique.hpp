// Exact deduplication of byte strings, like pandas.factorize plus counts:
// uniques in first-occurrence order, an inverse index row -> unique id, and counts.
#pragma once

#include <cstdint>
#include <vector>

#include "common.hpp"

namespace bk {

struct UniqueResult {
    std::vector<int64_t> first_row;  // row of each unique's first occurrence (ascending)
    std::vector<int64_t> counts;     // rows per unique
};

// Fills inverse[n] and returns the uniques. Rows are hash-partitioned across threads,
// and ids are assigned by first occurrence afterwards, so the result does not depend
// on the thread count.
UniqueResult unique(const SeqViews& seqs, int64_t* inverse, int threads);

// A 64-bit hash of a byte string (exposed for tests of the partitioning).
uint64_t hash_bytes(const char* p, size_t len);

}  // namespace bk
