// A minimal fork-join helper. Work is split into contiguous blocks, one per worker;
// block 0 runs on the calling thread. Exceptions thrown by workers are captured and
// the one of the lowest block is rethrown on the caller, so which error a user sees
// does not depend on timing or on the thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

namespace bk {

// Below this much work (bytes or rows, the caller's unit) a worker is not worth the
// tens of microseconds it costs to start a thread.
constexpr int64_t kMinWorkPerThread = 1 << 16;

inline int effective_threads(int requested, int64_t n_items, int64_t work_units) {
    int64_t t = requested > 0 ? requested : 1;
    t = std::min<int64_t>(t, std::max<int64_t>(1, work_units / kMinWorkPerThread));
    t = std::min<int64_t>(t, std::max<int64_t>(1, n_items));
    return static_cast<int>(std::max<int64_t>(1, t));
}

// Calls fn(b) for b in [0, n_blocks), each block on its own thread.
template <class Fn>
void run_blocks(int n_blocks, Fn&& fn) {
    if (n_blocks <= 1) {
        if (n_blocks == 1) fn(0);
        return;
    }
    std::vector<std::exception_ptr> errors(n_blocks);
    auto guarded = [&](int b) {
        try {
            fn(b);
        } catch (...) {
            errors[b] = std::current_exception();
        }
    };
    std::vector<std::thread> pool;
    pool.reserve(n_blocks - 1);
    for (int b = 1; b < n_blocks; ++b) pool.emplace_back(guarded, b);
    guarded(0);
    for (auto& th : pool) th.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
}

// Row boundaries of n_blocks blocks of (nearly) equal row counts.
inline std::vector<int64_t> even_bounds(int64_t n, int n_blocks) {
    std::vector<int64_t> b(n_blocks + 1);
    for (int i = 0; i <= n_blocks; ++i) b[i] = n * i / n_blocks;
    return b;
}

// Calls fn(lo, hi) on n_blocks contiguous row ranges covering [0, n).
template <class Fn>
void parallel_rows(int64_t n, int n_blocks, Fn&& fn) {
    const auto bounds = even_bounds(n, n_blocks);
    run_blocks(n_blocks, [&](int b) { fn(bounds[b], bounds[b + 1]); });
}

}  // namespace bk
