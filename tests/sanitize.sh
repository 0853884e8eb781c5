#!/usr/bin/env bash
# The core tests under AddressSanitizer + UndefinedBehaviorSanitizer, and the threaded
# paths under ThreadSanitizer, each with its own build of the extension.
#
#   tests/sanitize.sh [asan|tsan|leaks|all]      (default: all)
#
# Builds go to temporary copies (tests/sanitize/build_variant.sh): the checkout's extension is
# never replaced, so nothing needs restoring and concurrent test runs are unaffected.
# Python itself is not instrumented, so the sanitizer runtime is preloaded; libstdc++
# is preloaded too, or ASan cannot intercept C++ throws (CHECK failed: real___cxa_throw).
# Exit status: non-zero on any sanitizer report or test failure.
# Durations on 2 cores (see docs/hardening.md): asan ~6 min, tsan ~4 min, leaks ~3 min.
set -euo pipefail
what=${1:-all}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/bk-sanitize.XXXXXX")
trap 'rm -rf "$work"' EXIT
CORE_TESTS="tests/test_tokenize.py tests/test_clean.py tests/test_inputs.py tests/test_unique_kmers.py \
tests/test_diversity.py tests/test_fuzz_corpus.py tests/test_hardening.py"
libstdcxx=$(g++ -print-file-name=libstdc++.so)

run_asan() {
    echo "== ASan+UBSan build"
    "$root/tests/sanitize/build_variant.sh" "$work/asan" address,undefined
    echo "== core tests under ASan+UBSan"
    cd "$work/asan"
    # PYTHONMALLOC=malloc: Python objects come from malloc, so ASan also guards the
    # strings and arrays the bindings write into. Leaks are checked by run_leaks.
    # BIOSCAN_KMER_HARDENING_SCALE shrinks the huge-input tests (ASan costs 2-3x memory);
    # a small quarantine keeps RSS steady enough for the flat-memory test.
    PYTHONPATH="$work/asan/src" PYTHONMALLOC=malloc BIOSCAN_KMER_HARDENING_SCALE=0.1 \
    LD_PRELOAD="$(gcc -print-file-name=libasan.so) $libstdcxx" \
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1:check_initialization_order=1:allocator_may_return_null=1:quarantine_size_mb=64 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        python -m pytest -p no:cacheprovider -q $CORE_TESTS
    cd "$root"
}

run_tsan() {
    echo "== TSan build"
    "$root/tests/sanitize/build_variant.sh" "$work/tsan" thread
    echo "== threaded paths under TSan"
    cd "$work/tsan"
    # Every entry point at 1..8 threads plus cancellation (tests/sanitize/tsan_driver.py);
    # Python and NumPy are not instrumented, so only our own threads are checked.
    PYTHONPATH="$work/tsan/src:$work/tsan/tests" \
    LD_PRELOAD="$(gcc -print-file-name=libtsan.so) $libstdcxx" \
    TSAN_OPTIONS="halt_on_error=1:report_signal_unsafe=0:second_deadlock_stack=1:suppressions=$root/tests/sanitize/tsan.supp" \
        python tests/sanitize/tsan_driver.py
    cd "$root"
}

run_leaks() {
    echo "== LeakSanitizer (ASan build, leak detection on)"
    [ -d "$work/asan" ] || "$root/tests/sanitize/build_variant.sh" "$work/asan" address,undefined
    cd "$work/asan"
    # Python does not free everything at exit, so LeakSanitizer always reports the
    # interpreter's own blocks: only a leak with a frame in our extension counts.
    PYTHONPATH="$work/asan/src:$work/asan/tests" PYTHONMALLOC=malloc \
    LD_PRELOAD="$(gcc -print-file-name=libasan.so) $libstdcxx" \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
    # exitcode=0: the interpreter's own leaks must not fail the run, a crash still does.
    # Child processes (compilers probed by imports) inherit the preload: their reports
    # land in the same file and carry no frame of ours either.
    LSAN_OPTIONS=report_objects=0:exitcode=0 \
        python tests/sanitize/leak_driver.py 2>"$work/lsan.txt" || { tail -40 "$work/lsan.txt"; return 1; }
    if grep -q "_core\.\|bk::" "$work/lsan.txt"; then
        grep -B2 -A30 "ERROR: LeakSanitizer" "$work/lsan.txt" | head -80
        echo "LeakSanitizer: leaks from the extension (above)"
        return 1
    fi
    grep -E "SUMMARY: AddressSanitizer" "$work/lsan.txt" || true
    echo "LeakSanitizer: nothing from bioscan_kmer._core"
    cd "$root"
}

case "$what" in
    asan) run_asan ;;
    tsan) run_tsan ;;
    leaks) run_leaks ;;
    all) run_asan; run_tsan; run_leaks ;;
    *) echo "usage: $0 [asan|tsan|leaks|all]" >&2; exit 2 ;;
esac
echo "sanitize.sh $what: OK"
