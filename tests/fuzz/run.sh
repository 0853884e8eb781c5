#!/usr/bin/env bash
# Bounded-time differential fuzzing of every native entry point.
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET] [--native] [--update-corpus]
#
# Each target (tests/fuzz/fuzz_*.py) starts from its corpus in tests/fuzz/corpus/<t>
# and runs for SECONDS_PER_TARGET (default 60). --native fuzzes a clang build of the
# extension with ASan and libFuzzer coverage of the C++ code (tests/sanitize/
# build_variant.sh; needs clang and atheris' asan_with_fuzzer.so); otherwise the
# installed extension is fuzzed with Python-level coverage only.
# --update-corpus merges the new interesting inputs into tests/fuzz/corpus (libFuzzer
# -merge=1 keeps only inputs that add coverage), to be committed as regression cases.
# The work directory (a mktemp -d under $TMPDIR) is removed on exit, unless a target
# crashed or found a mismatch: then it is kept, with the crash-* inputs and the logs,
# and its path is printed last.
set -euo pipefail
seconds=60 native=0 update=0
for arg in "$@"; do
    case "$arg" in
        --native) native=1 ;;
        --update-corpus) update=1 ;;
        *) seconds=$arg ;;
    esac
done
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/bk-fuzz.XXXXXX")
keep=0
cleanup() {
    if [ "$keep" = 1 ]; then
        echo "fuzz: failures kept in $work (crash-* inputs, *.log)"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
echo "fuzz work dir: $work (removed at exit unless a target fails)"
env_args=()
if [ "$native" = 1 ]; then
    CC=clang CXX=clang++ "$root/tests/sanitize/build_variant.sh" "$work/build" address,fuzzer-no-link
    asan_fuzz=$(python -c "import atheris, os; print(os.path.join(atheris.path(), 'asan_with_fuzzer.so'))")
    env_args=(PYTHONPATH="$work/build/src" LD_PRELOAD="$asan_fuzz $(g++ -print-file-name=libstdc++.so)"
              ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1)
fi
status=0
for script in "$root"/tests/fuzz/fuzz_*.py; do
    t=$(basename "$script" .py); t=${t#fuzz_}
    mkdir -p "$work/$t" "$root/tests/fuzz/corpus/$t"
    echo "== $t: ${seconds}s"
    start=$(date +%s)
    if ! env "${env_args[@]}" python "$script" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=6144 \
            -max_len=512 -artifact_prefix="$work/$t-" "$work/$t" "$root/tests/fuzz/corpus/$t" \
            >"$work/$t.log" 2>&1; then
        status=1 keep=1
        echo "!! $t failed after $(( $(date +%s) - start ))s; see $work/$t.log and $work/$t-crash-*"
        tail -30 "$work/$t.log"
        continue
    fi
    grep -E "^#[0-9]+ +DONE" "$work/$t.log" || tail -2 "$work/$t.log"
    if [ "$update" = 1 ]; then
        env "${env_args[@]}" python "$script" -merge=1 "$root/tests/fuzz/corpus/$t" "$work/$t" \
            >"$work/$t.merge.log" 2>&1
        echo "   corpus: $(ls "$root/tests/fuzz/corpus/$t" | wc -l) files"
    fi
done
exit $status
