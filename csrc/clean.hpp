// Barcode cleaning (SPEC section 2): uppercase, U->T, whitespace removed, gaps removed
// or turned into N, IUPAC codes to N (or an error), N runs trimmed at both ends,
// optional truncation. Any other character is an error naming row, position, byte.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common.hpp"

namespace bk {

struct CleanOptions {
    bool gaps_to_n = false;    // '-' becomes N instead of being removed
    bool iupac_error = false;  // an IUPAC ambiguity code is an error instead of N
    bool trim_n = true;        // strip leading and trailing N
    int64_t max_length = -1;   // keep at most this many bases (-1: no limit)
};

// Frees a buffer from allocate_bytes.
struct FreeBytes {
    void operator()(char* p) const noexcept;
};
using ByteBuffer = std::unique_ptr<char[], FreeBytes>;

// Uninitialised storage for `size` bytes; large buffers are backed by transparent huge
// pages where the OS offers them (Linux), since first-touch page faults on 4 KiB pages
// cost as much as the cleaning itself for gigabytes of barcodes.
ByteBuffer allocate_bytes(size_t size);

// The cleaned sequences of one block of rows, stored back to back.
struct CleanedBlock {
    // Uninitialised storage: zero-filling gigabytes that are overwritten at once cost
    // as much as the cleaning, and could not be interrupted.
    ByteBuffer data;
    std::vector<int64_t> ends;  // ends[i]: end of the i-th row of the block in data
};

// Cleans every row. Blocks are in row order; concatenated they hold one entry per
// row. Throws RowError for the lowest offending row.
std::vector<CleanedBlock> clean_all(const SeqViews& seqs, const CleanOptions& opt, int threads);

}  // namespace bk
