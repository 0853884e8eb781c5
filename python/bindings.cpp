// pybind11 glue for the bioscan_kmer core: argument checks, turning Python inputs
// into (pointer, length) views, releasing the GIL around the work, NumPy outputs and
// exceptions. No algorithm lives here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "clean.hpp"
#include "common.hpp"
#include "diversity.hpp"
#include "kmer.hpp"
#include "thread_pool.hpp"
#include "unique.hpp"

namespace py = pybind11;
using bk::SeqViews;

namespace {

// Below this much work (bytes plus 16 per row, or rows) a call finishes in about a
// millisecond: it runs on the calling thread, without the cost of a waiter thread.
constexpr int64_t kInterruptibleWork = 1 << 20;
// How often the waiting thread takes the GIL to look for a signal (Ctrl-C).
constexpr auto kSignalPoll = std::chrono::milliseconds(20);

// Rethrows the core's exception as Python's: ValueError for bad values (the message
// names the row), MemoryError for std::bad_alloc (pybind11's own translation).
[[noreturn]] void rethrow_core_error(std::exception_ptr err) {
    try {
        std::rethrow_exception(err);
    } catch (const bk::RowError& e) {
        throw py::value_error(e.what());
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    } catch (const std::length_error& e) {
        throw py::value_error(std::string("input too large: ") + e.what());
    }
}

// Runs fn without the GIL and turns the core's errors into Python's.
//
// Large calls are interruptible: fn runs on a worker thread while the calling thread
// waits, taking the GIL every kSignalPoll to run Python's signal handlers. When one
// raises (KeyboardInterrupt on Ctrl-C, or any exception from a handler), the cancel
// flag is set, the core's loops stop at their next row, and the handler's exception
// propagates once every worker has finished; the call's outputs are discarded. Only
// the main thread sees signals, so elsewhere this merely waits.
template <class Fn>
auto without_gil(Fn&& fn, int64_t work = INT64_MAX) -> decltype(fn()) {
    using R = decltype(fn());
    if (work < kInterruptibleWork) {
        std::exception_ptr err;
        {
            py::gil_scoped_release release;
            try {
                return fn();
            } catch (...) {
                err = std::current_exception();
            }
        }
        rethrow_core_error(err);
    }
    std::atomic<bool> cancel{false};
    std::mutex m;
    std::condition_variable cv;
    bool done = false, interrupted = false;
    std::exception_ptr err;
    std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> result{};
    {
        py::gil_scoped_release release;
        auto body = [&] {
            bk::CancelScope scope(&cancel);
            try {
                if constexpr (std::is_void_v<R>) {
                    fn();
                } else {
                    result.emplace(fn());
                }
            } catch (...) {
                err = std::current_exception();
            }
            std::lock_guard<std::mutex> lk(m);
            done = true;
            cv.notify_all();
        };
        std::thread worker;
        try {
            worker = std::thread(body);
        } catch (const std::system_error&) {
            body();  // no thread to spare: run here, uninterruptible
        }
        std::unique_lock<std::mutex> lk(m);
        while (!cv.wait_for(lk, kSignalPoll, [&] { return done; })) {
            if (interrupted) continue;  // cancel requested: wait for the workers to stop
            lk.unlock();
            {
                py::gil_scoped_acquire gil;
                // The error indicator stays set on this thread until we raise it below.
                if (PyErr_CheckSignals() != 0) {
                    interrupted = true;
                    cancel.store(true, std::memory_order_relaxed);
                }
            }
            lk.lock();
        }
        lk.unlock();
        if (worker.joinable()) worker.join();
    }
    if (interrupted) throw py::error_already_set();
    if (err) rethrow_core_error(err);
    if constexpr (!std::is_void_v<R>) return std::move(*result);
}

// Work estimate of a call over seqs (see kInterruptibleWork).
int64_t work_of(const SeqViews& seqs) { return bk::total_bytes(seqs) + 16 * static_cast<int64_t>(seqs.size()); }

// Input rows as views, with what keeps their bytes alive. A list is frozen into a
// tuple first so that mutating the list from another thread cannot free a row we read.
class Sequences {
  public:
    // From a list/tuple of str or bytes, or a 1-D NumPy array of str, bytes or objects.
    static std::shared_ptr<Sequences> from_python(py::handle obj) {
        auto s = std::make_shared<Sequences>();
        if (py::isinstance<py::array>(obj)) {
            auto arr = py::reinterpret_borrow<py::array>(obj);
            if (arr.ndim() != 1)
                throw py::value_error("expected a 1-D array of sequences, got " + std::to_string(arr.ndim()) +
                                      " dimensions");
            const char kind = arr.dtype().kind();
            if (kind == 'S') return from_bytes_array(arr);
            if (kind == 'U') return from_unicode_array(arr);
            if (kind != 'O')
                throw py::type_error("expected an array of str or bytes, got dtype " +
                                     std::string(py::str(arr.dtype())));
            s->keep_ = py::reinterpret_steal<py::object>(PySequence_Tuple(arr.ptr()));
        } else if (PyList_Check(obj.ptr()) || PyTuple_Check(obj.ptr())) {
            s->keep_ = py::reinterpret_steal<py::object>(PySequence_Tuple(obj.ptr()));
        } else {
            throw py::type_error("expected a list/tuple of str, a NumPy array, a pandas Series or a pyarrow array; got " +
                                 std::string(py::str(py::type::of(obj).attr("__name__"))));
        }
        if (!s->keep_) throw py::error_already_set();
        PyObject* tup = s->keep_.ptr();
        const Py_ssize_t n = PyTuple_GET_SIZE(tup);
        const bool any_bytes = check_row_types(tup);
        s->views_.resize(static_cast<size_t>(n));
        for (Py_ssize_t i = 0; i < n; ++i) {
            PyObject* item = PyTuple_GET_ITEM(tup, i);
            if (PyUnicode_Check(item)) {
                if (!PyUnicode_IS_ASCII(item)) throw_non_ascii_str(i, item);
                s->views_[i] = std::string_view(static_cast<const char*>(PyUnicode_DATA(item)),
                                                static_cast<size_t>(PyUnicode_GET_LENGTH(item)));
            } else {
                s->views_[i] = std::string_view(PyBytes_AS_STRING(item), static_cast<size_t>(PyBytes_GET_SIZE(item)));
            }
        }
        if (any_bytes) s->check_ascii();
        return s;
    }

    // From Arrow string chunks: (validity bytes or None, offsets array, data array,
    // offset, length) per chunk, offsets int32 or int64. Nulls are a TypeError.
    static std::shared_ptr<Sequences> from_arrow(py::list chunks) {
        auto s = std::make_shared<Sequences>();
        s->keep_ = chunks;
        int64_t row0 = 0;
        for (auto ch : chunks) {
            auto t = ch.cast<py::tuple>();
            py::object validity = t[0];
            auto offsets = t[1].cast<py::array>();
            auto data = t[2].cast<py::array>();
            const int64_t off = t[3].cast<int64_t>(), len = t[4].cast<int64_t>();
            const char* base = static_cast<const char*>(data.data());
            const uint8_t* valid = nullptr;
            py::buffer_info vinfo;
            if (!validity.is_none()) {
                vinfo = py::buffer(validity).request();
                valid = static_cast<const uint8_t*>(vinfo.ptr);
                if (len > 0 && vinfo.size * vinfo.itemsize < (off + len + 7) / 8)
                    throw py::value_error("malformed Arrow array: validity buffer is too short");
            }
            const bool large = offsets.itemsize() == 8;
            if (offsets.size() < off + len + (len > 0 ? 1 : 0))
                throw py::value_error("malformed Arrow array: offsets buffer is too short");
            for (int64_t i = 0; i < len; ++i) {
                const int64_t j = off + i;
                if (valid && !((valid[j >> 3] >> (j & 7)) & 1))
                    throw py::type_error("row " + std::to_string(row0 + i) + ": sequence is missing (null)");
                int64_t a, b;
                if (large) {
                    a = static_cast<const int64_t*>(offsets.data())[j];
                    b = static_cast<const int64_t*>(offsets.data())[j + 1];
                } else {
                    a = static_cast<const int32_t*>(offsets.data())[j];
                    b = static_cast<const int32_t*>(offsets.data())[j + 1];
                }
                if (a < 0 || b < a || b > data.size())
                    throw py::value_error("malformed Arrow array at row " + std::to_string(row0 + i));
                s->views_.emplace_back(base + a, static_cast<size_t>(b - a));
            }
            row0 += len;
        }
        s->check_ascii();
        return s;
    }

    const SeqViews& views() const { return views_; }
    size_t size() const { return views_.size(); }

  private:
    // Every row is str, or every row is bytes (returns true for bytes); anything else is
    // a TypeError naming the first bad row. Checked before any row is read so that the
    // error does not depend on the rows' contents. Mixing is refused because "ACGT" and
    // b"ACGT" are unequal in Python but are the same bytes to the core: unique would
    // merge them and break uniques[inverse[i]] == seqs[i].
    static bool check_row_types(PyObject* tup) {
        const Py_ssize_t n = PyTuple_GET_SIZE(tup);
        bool first_is_bytes = false;
        for (Py_ssize_t i = 0; i < n; ++i) {
            PyObject* item = PyTuple_GET_ITEM(tup, i);
            const bool is_str = PyUnicode_Check(item), is_bytes = !is_str && PyBytes_Check(item);
            if (!is_str && !is_bytes) {
                if (item == Py_None) throw py::type_error("row " + std::to_string(i) + ": sequence is None (missing)");
                throw py::type_error("row " + std::to_string(i) + ": expected str or bytes, got " +
                                     std::string(Py_TYPE(item)->tp_name));
            }
            if (i == 0) first_is_bytes = is_bytes;
            else if (is_bytes != first_is_bytes)
                throw py::type_error("row " + std::to_string(i) + ": " + (is_bytes ? "bytes" : "str") +
                                     " among " + (is_bytes ? "str" : "bytes") +
                                     " rows (row 0 is " + (is_bytes ? "str" : "bytes") +
                                     "); pass every sequence as str or every one as bytes");
        }
        return first_is_bytes;
    }

    static std::shared_ptr<Sequences> from_bytes_array(py::array arr) {
        auto s = std::make_shared<Sequences>();
        arr = py::array::ensure(arr, py::array::c_style);
        s->keep_ = arr;
        const size_t width = static_cast<size_t>(arr.itemsize());
        const char* base = static_cast<const char*>(arr.data());
        s->views_.resize(static_cast<size_t>(arr.size()));
        // NumPy pads fixed-width bytes with NUL and drops trailing NULs on access
        // (arr[i]); NULs inside a row are kept, so only trailing ones end the row.
        for (size_t i = 0; i < s->views_.size(); ++i) {
            const char* p = base + i * width;
            size_t len = width;
            while (len > 0 && p[len - 1] == 0) --len;
            s->views_[i] = std::string_view(p, len);
        }
        s->check_ascii();
        return s;
    }

    static std::shared_ptr<Sequences> from_unicode_array(py::array arr) {
        auto s = std::make_shared<Sequences>();
        arr = py::array::ensure(arr, py::array::c_style);
        const size_t width = static_cast<size_t>(arr.itemsize()) / 4;
        const auto* base = static_cast<const uint32_t*>(arr.data());
        const size_t n = static_cast<size_t>(arr.size());
        s->owned_.reserve(n * width);
        std::vector<size_t> ends(n);
        for (size_t i = 0; i < n; ++i) {
            const uint32_t* p = base + i * width;
            size_t len = width;  // as for bytes: only trailing NULs are padding
            while (len > 0 && p[len - 1] == 0) --len;
            for (size_t j = 0; j < len; ++j) {
                if (p[j] >= 128)
                    throw py::value_error("row " + std::to_string(i) + ": non-ASCII character U+" + hex4(p[j]) +
                                          " at position " + std::to_string(j) + " (sequences must be ASCII)");
                s->owned_.push_back(static_cast<char>(p[j]));
            }
            ends[i] = s->owned_.size();
        }
        s->views_.resize(n);
        for (size_t i = 0, a = 0; i < n; a = ends[i], ++i)
            s->views_[i] = std::string_view(s->owned_.data() + a, ends[i] - a);
        return s;
    }

    void check_ascii() {
        const int64_t bad = without_gil([&] { return bk::first_non_ascii(views_, 0); }, work_of(views_));
        if (bad < 0) return;
        const std::string_view row = views_[static_cast<size_t>(bad)];
        size_t pos = 0;
        while (pos < row.size() && static_cast<unsigned char>(row[pos]) < 0x80) ++pos;
        const unsigned char c = pos < row.size() ? static_cast<unsigned char>(row[pos]) : 0;
        throw py::value_error("row " + std::to_string(bad) + ": non-ASCII byte " + bk::describe_byte(c) +
                              " at position " + std::to_string(pos) + " (sequences must be ASCII)");
    }

    static std::string hex4(uint32_t cp) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%04X", cp);
        return buf;
    }

    [[noreturn]] static void throw_non_ascii_str(Py_ssize_t row, PyObject* item) {
        const Py_ssize_t n = PyUnicode_GET_LENGTH(item);
        Py_ssize_t pos = 0;
        Py_UCS4 cp = 0;
        for (; pos < n; ++pos) {
            cp = PyUnicode_READ_CHAR(item, pos);
            if (cp >= 128) break;
        }
        throw py::value_error("row " + std::to_string(row) + ": non-ASCII character U+" + hex4(cp) + " at position " +
                              std::to_string(pos) + " (sequences must be ASCII)");
    }

    py::object keep_;
    std::string owned_;
    SeqViews views_;
};


bk::TokenizerSpec make_spec(int k, int stride, int64_t max_len, int preset, bool n_nucleotide, bool add_special) {
    if (preset != 0 && preset != 1) throw py::value_error("unknown preset code");
    bk::TokenizerSpec s;
    s.k = k;
    s.stride = stride;
    s.max_len = max_len;
    s.preset = static_cast<bk::Preset>(preset);
    s.n_nucleotide = n_nucleotide;
    s.add_special = add_special;
    try {
        bk::check_spec(s);
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
    return s;
}

template <class T>
void tokenize_into(const Sequences& seqs, const bk::TokenizerSpec& spec, int64_t pad_to, const int64_t* offsets,
                   int64_t offset, py::array& ids, uint8_t* mask, int threads) {
    T* out = static_cast<T*>(ids.mutable_data());
    const int64_t work = work_of(seqs.views()) + static_cast<int64_t>(ids.nbytes());
    without_gil([&] { bk::tokenize<T>(seqs.views(), spec, pad_to, offsets, offset, out, mask, threads); }, work);
}

py::tuple tokenize(const Sequences& seqs, int k, int stride, int64_t max_len, py::object offset_obj, int preset,
                   bool n_nucleotide, py::dtype dtype, bool pad_to_max_len, bool add_special, int threads) {
    const auto spec = make_spec(k, stride, max_len, preset, n_nucleotide, add_special);
    const int64_t n = static_cast<int64_t>(seqs.size());
    int64_t offset = 0;
    // A private copy: the caller's array stays writable while the GIL is released, and
    // an offset made negative after the check below would read before the row.
    std::vector<int64_t> offsets;
    const int64_t* offs = nullptr;
    if (py::isinstance<py::array>(offset_obj)) {
        auto given = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(offset_obj);
        if (!given || given.ndim() != 1 || given.shape(0) != n)
            throw py::value_error("offset array must be 1-D with one entry per sequence (" + std::to_string(n) + ")");
        offsets.assign(given.data(), given.data() + n);
        offs = offsets.data();
        for (int64_t i = 0; i < n; ++i)
            if (offs[i] < 0)
                throw py::value_error("row " + std::to_string(i) + ": offset must be >= 0, got " + std::to_string(offs[i]));
    } else {
        offset = offset_obj.cast<int64_t>();
        if (offset < 0) throw py::value_error("offset must be >= 0, got " + std::to_string(offset));
    }
    const int64_t pad_to = pad_to_max_len ? max_len : bk::longest_bases(seqs.views(), offs, offset, max_len);
    const int64_t L = bk::row_length(spec, pad_to);
    // The core writes native integers: another byte order would read back as garbage.
    if (!dtype.attr("isnative").cast<bool>())
        throw py::type_error("id dtype " + std::string(py::str(dtype)) + " is not in native byte order");
    py::array ids(dtype, std::vector<py::ssize_t>{n, L});
    py::array_t<uint8_t> mask(std::vector<py::ssize_t>{n, L});
    uint8_t* m = mask.mutable_data();
    const char code = dtype.kind();
    const auto size = dtype.itemsize();
    if (code == 'u' && size == 1) tokenize_into<uint8_t>(seqs, spec, pad_to, offs, offset, ids, m, threads);
    else if (code == 'i' && size == 2) tokenize_into<int16_t>(seqs, spec, pad_to, offs, offset, ids, m, threads);
    else if (code == 'u' && size == 2) tokenize_into<uint16_t>(seqs, spec, pad_to, offs, offset, ids, m, threads);
    else if (code == 'i' && size == 4) tokenize_into<int32_t>(seqs, spec, pad_to, offs, offset, ids, m, threads);
    else if (code == 'u' && size == 4) tokenize_into<uint32_t>(seqs, spec, pad_to, offs, offset, ids, m, threads);
    else if (code == 'i' && size == 8) tokenize_into<int64_t>(seqs, spec, pad_to, offs, offset, ids, m, threads);
    else if (code == 'u' && size == 8) tokenize_into<uint64_t>(seqs, spec, pad_to, offs, offset, ids, m, threads);
    else throw py::type_error("unsupported id dtype " + std::string(py::str(dtype)));
    return py::make_tuple(ids, mask);
}

py::list clean(const Sequences& seqs, bool gaps_to_n, bool iupac_error, bool trim_n, int64_t max_length,
               int threads) {
    bk::CleanOptions opt{gaps_to_n, iupac_error, trim_n, max_length};
    auto blocks = without_gil([&] { return bk::clean_all(seqs.views(), opt, threads); }, work_of(seqs.views()));
    py::list out(seqs.size());
    size_t row = 0;
    // Building the strings holds the GIL and takes seconds for gigabytes: let Ctrl-C
    // through every few megabytes.
    int64_t since_check = 0;
    for (auto& blk : blocks) {
        int64_t a = 0;
        for (int64_t e : blk.ends) {
            since_check += e - a + 64;
            if (since_check > (8 << 20)) {
                since_check = 0;
                if (PyErr_CheckSignals() != 0) throw py::error_already_set();
            }
            // Cleaned rows are pure ASCII, so the cheapest constructor applies.
            PyObject* s = PyUnicode_New(e - a, 127);
            if (!s) throw py::error_already_set();
            std::memcpy(PyUnicode_DATA(s), blk.data.get() + a, static_cast<size_t>(e - a));
            PyList_SET_ITEM(out.ptr(), row++, s);
            a = e;
        }
        blk.data.reset();  // free each block as soon as it is copied
    }
    return out;
}

// The cleaned rows as Arrow large_string buffers (values, int64 offsets): no Python
// object per row, which at millions of rows is most of the memory and time of clean.
py::tuple clean_buffers(const Sequences& seqs, bool gaps_to_n, bool iupac_error, bool trim_n, int64_t max_length,
                        int threads) {
    bk::CleanOptions opt{gaps_to_n, iupac_error, trim_n, max_length};
    auto blocks = without_gil([&] { return bk::clean_all(seqs.views(), opt, threads); }, work_of(seqs.views()));
    int64_t total = 0;
    for (const auto& blk : blocks)
        if (!blk.ends.empty()) total += blk.ends.back();
    py::array_t<uint8_t> data(static_cast<py::ssize_t>(total));
    py::array_t<int64_t> offsets(static_cast<py::ssize_t>(seqs.size()) + 1);
    auto* d = reinterpret_cast<char*>(data.mutable_data());
    int64_t* o = offsets.mutable_data();
    without_gil([&] {
        int64_t base = 0;
        size_t row = 0;
        o[0] = 0;
        for (auto& blk : blocks) {
            if (blk.ends.empty()) continue;
            std::memcpy(d + base, blk.data.get(), static_cast<size_t>(blk.ends.back()));
            for (int64_t e : blk.ends) o[++row] = base + e;
            base += blk.ends.back();
            blk.data.reset();
        }
    }, total);
    return py::make_tuple(data, offsets);
}

py::tuple unique(const Sequences& seqs, int threads) {
    const auto n = static_cast<py::ssize_t>(seqs.size());
    py::array_t<int64_t> inverse(n);
    int64_t* inv = inverse.mutable_data();
    auto res = without_gil([&] { return bk::unique(seqs.views(), inv, threads); }, work_of(seqs.views()));
    py::array_t<int64_t> first(static_cast<py::ssize_t>(res.first_row.size()));
    py::array_t<int64_t> counts(static_cast<py::ssize_t>(res.counts.size()));
    std::copy(res.first_row.begin(), res.first_row.end(), first.mutable_data());
    std::copy(res.counts.begin(), res.counts.end(), counts.mutable_data());
    return py::make_tuple(first, inverse, counts);
}

py::array kmer_counts(const Sequences& seqs, int k, bool per_row, py::dtype dtype, int threads) {
    if (k < 1 || k > bk::kMaxK) throw py::value_error("k must be between 1 and 12, got " + std::to_string(k));
    const auto n = static_cast<py::ssize_t>(seqs.size());
    const py::ssize_t width = static_cast<py::ssize_t>(1) << (2 * k);
    if (!per_row) {
        py::array_t<int64_t> out(width);
        std::fill(out.mutable_data(), out.mutable_data() + width, 0);
        int64_t* p = out.mutable_data();
        without_gil([&] { bk::kmer_counts_total(seqs.views(), k, p, threads); }, work_of(seqs.views()));
        return out;
    }
    if (!dtype.attr("isnative").cast<bool>())
        throw py::type_error("count dtype " + std::string(py::str(dtype)) + " is not in native byte order");
    const bool is32 = dtype.kind() == 'i' && dtype.itemsize() == 4;
    if (is32) {
        // A row of more than 2**31 bases could overflow an int32 count silently.
        for (size_t i = 0; i < seqs.size(); ++i)
            if (seqs.views()[i].size() >= static_cast<size_t>(INT32_MAX))
                throw py::value_error("row " + std::to_string(i) + ": " + std::to_string(seqs.views()[i].size()) +
                                      " bases may overflow int32 counts; use dtype=np.int64");
    }
    py::array out(dtype, std::vector<py::ssize_t>{n, width});
    std::memset(out.mutable_data(), 0, static_cast<size_t>(out.nbytes()));
    const int64_t work = work_of(seqs.views()) + static_cast<int64_t>(out.nbytes());
    if (is32) {
        auto* p = static_cast<int32_t*>(out.mutable_data());
        without_gil([&] { bk::kmer_counts_per_row<int32_t>(seqs.views(), k, p, threads); }, work);
    } else if (dtype.kind() == 'i' && dtype.itemsize() == 8) {
        auto* p = static_cast<int64_t*>(out.mutable_data());
        without_gil([&] { bk::kmer_counts_per_row<int64_t>(seqs.views(), k, p, threads); }, work);
    } else {
        throw py::type_error("kmer_counts supports int32 and int64 outputs");
    }
    return out;
}

double shannon(py::array_t<double, py::array::c_style | py::array::forcecast> counts, double base,
               double epsilon) {
    if (counts.ndim() != 1) throw py::value_error("counts must be 1-D");
    const double* p = counts.data();
    const int64_t n = counts.shape(0);
    return without_gil([&] { return bk::shannon(p, n, base, epsilon); }, n);
}

py::tuple grouped_shannon(py::array_t<int64_t, py::array::c_style | py::array::forcecast> groups,
                          py::array_t<int64_t, py::array::c_style | py::array::forcecast> items, int64_t n_groups,
                          double base, double epsilon, int threads) {
    if (groups.ndim() != 1 || items.ndim() != 1 || groups.shape(0) != items.shape(0))
        throw py::value_error("groups and items must be 1-D arrays of the same length");
    if (n_groups < 0) throw py::value_error("n_groups must be >= 0, got " + std::to_string(n_groups));
    py::array_t<double> out(n_groups);
    py::array_t<int64_t> rows(n_groups);
    const int64_t* g = groups.data();
    const int64_t* it = items.data();
    double* o = out.mutable_data();
    int64_t* r = rows.mutable_data();
    const int64_t n = groups.shape(0);
    without_gil([&] { bk::grouped_shannon(g, it, n, n_groups, base, epsilon, o, r, threads); }, 16 * (n + n_groups));
    return py::make_tuple(out, rows);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "Native core of bioscan_kmer (private: use the functions of bioscan_kmer).";

    py::class_<Sequences, std::shared_ptr<Sequences>>(m, "Sequences")
        .def(py::init(&Sequences::from_python), py::arg("seqs"))
        .def_static("from_arrow", &Sequences::from_arrow, py::arg("chunks"))
        .def("__len__", &Sequences::size)
        .def("lengths", [](const Sequences& s) {
            py::array_t<int64_t> out(static_cast<py::ssize_t>(s.size()));
            auto* p = out.mutable_data();
            for (size_t i = 0; i < s.size(); ++i) p[i] = static_cast<int64_t>(s.views()[i].size());
            return out;
        });

    m.def("clean", &clean, py::arg("seqs"), py::arg("gaps_to_n"), py::arg("iupac_error"), py::arg("trim_n"),
          py::arg("max_length"), py::arg("threads"));
    m.def("clean_buffers", &clean_buffers, py::arg("seqs"), py::arg("gaps_to_n"), py::arg("iupac_error"),
          py::arg("trim_n"), py::arg("max_length"), py::arg("threads"));
    m.def("tokenize", &tokenize, py::arg("seqs"), py::arg("k"), py::arg("stride"), py::arg("max_len"),
          py::arg("offset"), py::arg("preset"), py::arg("n_nucleotide"), py::arg("dtype"),
          py::arg("pad_to_max_len"), py::arg("add_special"), py::arg("threads"));
    m.def("unique", &unique, py::arg("seqs"), py::arg("threads"));
    m.def("kmer_counts", &kmer_counts, py::arg("seqs"), py::arg("k"), py::arg("per_row"), py::arg("dtype"),
          py::arg("threads"));
    m.def("shannon", &shannon, py::arg("counts"), py::arg("base"), py::arg("epsilon"));
    m.def("grouped_shannon", &grouped_shannon, py::arg("groups"), py::arg("items"), py::arg("n_groups"),
          py::arg("base"), py::arg("epsilon"), py::arg("threads"));
    m.def("vocab_size", [](int k, int preset, bool n_nucleotide) {
        return bk::vocab_size(make_spec(k, 1, 1, preset, n_nucleotide, true));
    });
    m.def("row_length", [](int k, int stride, int64_t max_len, int preset, bool add_special) {
        return bk::row_length(make_spec(k, stride, max_len, preset, false, add_special), max_len);
    });
    m.def("kmer_to_id", [](const std::string& kmer, int preset, bool n_nucleotide) {
        auto s = make_spec(static_cast<int>(kmer.size()), 1, 1, preset, n_nucleotide, true);
        return bk::kmer_to_id(s, kmer.data());
    });
    m.def("id_to_kmer", [](int64_t id, int k, int preset, bool n_nucleotide) -> py::object {
        auto s = make_spec(k, 1, 1, preset, n_nucleotide, true);
        std::string out(static_cast<size_t>(k), '?');
        if (!bk::id_to_kmer(s, id, out.data())) return py::none();
        return py::str(out);
    });
    m.def("hash_bytes", [](py::bytes b) {
        std::string s = b;
        return bk::hash_bytes(s.data(), s.size());
    });
}
