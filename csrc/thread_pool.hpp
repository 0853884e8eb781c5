// A minimal fork-join helper, with cooperative cancellation.
//
// Work is split into contiguous blocks, one per worker; block 0 runs on the calling
// thread. Exceptions thrown by workers are captured and the one of the lowest block is
// rethrown on the caller, so which error a user sees does not depend on timing or on
// the thread count.
//
// Cancellation: a caller that may want to stop a long call (the Python bindings, on
// Ctrl-C) installs an atomic flag with CancelScope. Every loop of the core polls it
// through a CancelPoint between rows and throws Cancelled once it is set; workers
// started by run_blocks inherit the caller's flag. Without a scope, polling is a load
// of a null pointer and nothing else.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

namespace bk {

// Thrown by a CancelPoint once the installed flag is set.
struct Cancelled : std::exception {
    const char* what() const noexcept override { return "cancelled"; }
};

namespace detail {
// The flag of the scope the current thread runs in; null when the call cannot be cancelled.
inline thread_local const std::atomic<bool>* current_cancel_flag = nullptr;
}  // namespace detail

// Makes `flag` the current thread's cancel flag for the lifetime of the scope.
class CancelScope {
  public:
    explicit CancelScope(const std::atomic<bool>* flag) : prev_(detail::current_cancel_flag) {
        detail::current_cancel_flag = flag;
    }
    ~CancelScope() { detail::current_cancel_flag = prev_; }
    CancelScope(const CancelScope&) = delete;
    CancelScope& operator=(const CancelScope&) = delete;

  private:
    const std::atomic<bool>* prev_;
};

// A poll of the current cancel flag. Reads the thread-local once, at construction, so
// that polling in a per-row loop costs one relaxed load: make one per block of work.
class CancelPoint {
  public:
    CancelPoint() : flag_(detail::current_cancel_flag) {}
    void operator()() const {
        if (flag_ && flag_->load(std::memory_order_relaxed)) throw Cancelled();
    }
    // Polls only every 2**12 calls with i: for loops whose rows cost a few nanoseconds.
    void every(int64_t i) const {
        if ((i & 4095) == 0) (*this)();
    }

  private:
    const std::atomic<bool>* flag_;
};

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
    const std::atomic<bool>* flag = detail::current_cancel_flag;
    std::vector<std::exception_ptr> errors(n_blocks);
    auto guarded = [&](int b) {
        CancelScope scope(flag);  // workers answer the caller's cancel flag
        try {
            fn(b);
        } catch (...) {
            errors[b] = std::current_exception();
        }
    };
    std::vector<std::thread> pool;
    pool.reserve(n_blocks - 1);
    try {
        for (int b = 1; b < n_blocks; ++b) pool.emplace_back(guarded, b);
    } catch (...) {
        // No thread could be started (resource limits): join what runs, then run the
        // remaining blocks here rather than terminate with joinable threads.
        for (auto& th : pool) th.join();
        for (int b = static_cast<int>(pool.size()) + 1; b < n_blocks; ++b) guarded(b);
        guarded(0);
        for (auto& e : errors)
            if (e) std::rethrow_exception(e);
        return;
    }
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
