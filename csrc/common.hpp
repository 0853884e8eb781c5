// Shared types of the core: a read-only view of many sequences and the error type
// that the bindings turn into Python exceptions. Pure C++17: no Python header here.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace bk {

using SeqViews = std::vector<std::string_view>;

// A problem with one input row. The bindings raise ValueError (or TypeError) with
// this message; the row is kept apart so callers can also inspect it.
struct RowError : std::invalid_argument {
    int64_t row;
    RowError(int64_t row_, const std::string& what) : std::invalid_argument(what), row(row_) {}
};

// Total number of bytes over all rows.
int64_t total_bytes(const SeqViews& seqs);

// Row boundaries of n_blocks blocks holding about the same number of bytes, so that
// one very long sequence does not leave the other workers idle.
std::vector<int64_t> byte_balanced_bounds(const SeqViews& seqs, int n_blocks);

// Index of the first row holding a byte outside 7-bit ASCII, or -1.
int64_t first_non_ascii(const SeqViews& seqs, int threads);

// A printable rendering of one byte for error messages: 'x', or '\xNN'.
std::string describe_byte(unsigned char c);

}  // namespace bk
