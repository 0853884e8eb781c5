#include "diversity.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "thread_pool.hpp"

namespace bk {

double shannon(const double* counts, int64_t n, double base, double epsilon) {
    // Copied once: the caller's array may change under us (the GIL is released), and
    // the two passes must see the same values.
    const std::vector<double> own(counts, counts + n);
    counts = own.data();
    double total = 0, largest = 0;
    for (int64_t i = 0; i < n; ++i) {
        const double c = counts[i];
        if (!(c >= 0) || !std::isfinite(c))
            throw std::invalid_argument("counts must be finite and non-negative; entry " + std::to_string(i) +
                                        " is " + std::to_string(c));
        total += c;
        largest = std::max(largest, c);
    }
    if (total <= 0) return std::numeric_limits<double>::quiet_NaN();
    // Finite counts can sum past the largest double ([1e308, 1e308]); the index depends
    // only on the proportions, so sum them scaled by the largest count instead. Sums
    // that fit are left unscaled, keeping the usual results bit for bit.
    double scale = 1;
    if (!std::isfinite(total)) {
        scale = largest;
        total = 0;
        for (int64_t i = 0; i < n; ++i) total += counts[i] / scale;
    }
    double h = 0;
    for (int64_t i = 0; i < n; ++i) {
        const double p = counts[i] / scale / total;
        // Zero counts, and tiny ones whose share underflows to 0 ([1e308, 1e-300]):
        // p log p -> 0, where 0 * log(0) would be NaN.
        if (p == 0) continue;
        h -= p * std::log(p + epsilon);
    }
    return h / std::log(base);
}

void grouped_shannon(const int64_t* groups, const int64_t* items, int64_t n, int64_t n_groups, double base,
                     double epsilon, double* out, int64_t* rows_out, int threads) {
    // Counting sort of the rows by group, then each group's items sorted on their own:
    // O(n) plus small sorts, and the summation order is fixed, whatever the threads.
    // The inputs may be the caller's arrays, written by another thread while we read
    // (the GIL is released): each value is read once per pass and checked again in the
    // second pass, so a racing writer can spoil the result but never our memory.
    const CancelPoint poll;
    std::vector<int64_t> start(static_cast<size_t>(n_groups) + 1, 0);
    for (int64_t i = 0; i < n; ++i) {
        poll.every(i);
        const int64_t g = groups[i];
        if (g >= n_groups) throw std::invalid_argument("group code out of range at row " + std::to_string(i));
        if (g >= 0 && items[i] >= 0) ++start[g + 1];
    }
    for (int64_t g = 0; g < n_groups; ++g) start[g + 1] += start[g];
    std::vector<int64_t> sorted(static_cast<size_t>(start[n_groups]));
    {
        std::vector<int64_t> fill(start.begin(), start.end() - 1);
        for (int64_t i = 0; i < n; ++i) {
            poll.every(i);
            const int64_t g = groups[i], it = items[i];
            if (g < 0 || it < 0) continue;
            if (g >= n_groups || fill[g] >= start[g + 1])
                throw std::invalid_argument("groups or items changed during the call (row " + std::to_string(i) +
                                            ")");
            sorted[fill[g]++] = it;
        }
        for (int64_t g = 0; g < n_groups; ++g)
            if (fill[g] != start[g + 1])
                throw std::invalid_argument("groups or items changed during the call");
    }
    const double log_base = std::log(base);
    const int t = effective_threads(threads, n_groups, static_cast<int64_t>(sorted.size()) * 8);
    // Balance by rows, not groups: BIOSCAN's label sizes are heavily skewed.
    std::vector<int64_t> bounds(t + 1, n_groups);
    bounds[0] = 0;
    for (int b = 1, g = 0; b < t; ++b) {
        const int64_t target = start[n_groups] * b / t;
        while (g < n_groups && start[g] < target) ++g;
        bounds[b] = g;
    }
    run_blocks(t, [&](int b) {
        const CancelPoint poll_block;
        for (int64_t g = bounds[b]; g < bounds[b + 1]; ++g) {
            poll_block();
            int64_t* lo = sorted.data() + start[g];
            int64_t* hi = sorted.data() + start[g + 1];
            const int64_t total = hi - lo;
            if (rows_out) rows_out[g] = total;
            if (total == 0) {
                out[g] = std::numeric_limits<double>::quiet_NaN();
                continue;
            }
            std::sort(lo, hi);
            double h = 0;
            for (int64_t* run = lo; run < hi;) {
                int64_t* end = run + 1;
                while (end < hi && *end == *run) ++end;
                const double p = static_cast<double>(end - run) / static_cast<double>(total);
                h -= p * std::log(p + epsilon);
                run = end;
            }
            out[g] = h / log_base;
        }
    });
}

}  // namespace bk
