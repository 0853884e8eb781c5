#!/usr/bin/env bash
# Build a copy of the extension with other compiler flags, away from the checkout.
#
#   tests/sanitize/build_variant.sh DEST [SANITIZERS]
#
# Copies the sources into DEST and builds bioscan_kmer._core in place there with
# BIOSCAN_KMER_SANITIZE=SANITIZERS (e.g. "address,undefined", "thread",
# "address,fuzzer-no-link"). Use it with PYTHONPATH=DEST/src, which comes before the
# editable install's path entry. The checkout's own build is never touched, so other
# people running the tests meanwhile keep a working extension.
# CC/CXX choose the compiler (default gcc/g++; libFuzzer instrumentation needs clang).
set -euo pipefail
dest=${1:?usage: build_variant.sh DEST [SANITIZERS]}
sanitize=${2:-}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mkdir -p "$dest"
# Only what the build and the tests read; never compiled objects from the checkout.
tar -C "$root" --exclude='*.so' --exclude='__pycache__' --exclude='*.o' \
    -cf - setup.py pyproject.toml csrc python src tests | tar -C "$dest" -xf -
[ -f "$root/README.md" ] && cp "$root/README.md" "$dest/"
cd "$dest"
export CC=${CC:-gcc} CXX=${CXX:-g++}
export LDSHARED="${LDSHARED:-$CXX -shared}"
# -fno-sanitize-recover makes every UBSan report fatal, so a finding fails the run.
extra=""
case "$sanitize" in *undefined*) extra="-fno-sanitize-recover=all" ;; esac
BIOSCAN_KMER_SANITIZE="$sanitize" CFLAGS="${CFLAGS:-} $extra" \
    python setup.py build_ext --inplace >"$dest/build.log" 2>&1 || { tail -40 "$dest/build.log"; exit 1; }
ls "$dest"/src/bioscan_kmer/_core*.so >/dev/null
