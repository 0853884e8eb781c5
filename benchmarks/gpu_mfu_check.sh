#!/bin/bash
# Device check for the 40% MFU target of issue 4 (run from the repository root on a CUDA
# machine, about 7 minutes): builds the core in place, runs the CUDA-only tests, checks the
# Triton short-row attention against a float64 reference (float32 and bf16), then
# gpu_mfu_probe.py: attention variants alone, the loader, and the compiled step with SDPA,
# the Triton kernel and a bf16 residual stream, and 8-4-4 with the chunked loss (also timed
# alone by bench_head_loss.py). Results go to $OUT (default /tmp).
OUT=${OUT:-/tmp}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
python -V; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
if ! python -c "import bioscan_kmer._core" 2>/dev/null; then
  rm -f src/bioscan_kmer/_core*.so
  timeout 150 python setup.py -q build_ext --inplace > "$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log"; exit 1; }
fi
timeout 90 python -m pytest -q -p no:cacheprovider tests/test_model_encoder.py tests/test_train_loop.py \
  tests/test_train_batches.py -k cuda 2>&1 | tail -4
timeout 120 python benchmarks/triton_attention.py --check 2>&1 | tail -8
timeout 90 python benchmarks/bench_head_loss.py --rows 20992 --chunks 4096 8192 --repeats 5 --out "$OUT" 2>&1 | tail -6
timeout 380 python benchmarks/gpu_mfu_probe.py --out "$OUT" --skip-ceilings --budget 280 2>&1 \
  | tee "$OUT/probe.log" | grep -v '^step \|^attention\|^loader {'
