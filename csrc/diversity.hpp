// Shannon diversity: of one count vector (scikit-bio semantics) and of the item
// distribution inside every group of a labelled table (the "Avg SDI" engine).
#pragma once

#include <cstdint>

namespace bk {

// -sum p_i log(p_i + epsilon) / log(base) over the non-zero counts; NaN when the counts
// are empty or sum to zero. Throws std::invalid_argument for negative or non-finite counts.
double shannon(const double* counts, int64_t n, double base, double epsilon);

// For each group g in [0, n_groups): the Shannon index of the distribution of items
// among the rows of g. Rows whose group or item is negative (missing) are ignored;
// a group without rows gets NaN. out[n_groups]; rows_out[n_groups] (nullable) gets the
// number of rows per group.
void grouped_shannon(const int64_t* groups, const int64_t* items, int64_t n, int64_t n_groups, double base,
                     double epsilon, double* out, int64_t* rows_out, int threads);

}  // namespace bk
