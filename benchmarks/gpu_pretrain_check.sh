#!/bin/bash
# Device check for issue 4 (run from the repository root on a CUDA machine): builds the
# core in place, runs the CUDA-only model/training tests, then the pretraining
# throughput benchmark for both published presets. Results go to $OUT (default /tmp).
OUT=${OUT:-/tmp}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
python -V; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
if ! python -c "import bioscan_kmer._core" 2>/dev/null; then
  rm -f src/bioscan_kmer/_core*.so
  timeout 150 python setup.py -q build_ext --inplace 2>&1 | grep -v -i warning | tail -3
fi
python -c "import bioscan_kmer; print('core ok')" || exit 1
timeout 150 python -m pytest -q -p no:cacheprovider tests/test_model_encoder.py tests/test_train_loop.py -k cuda 2>&1 | tail -4
timeout 330 python benchmarks/gpu_pretrain.py --presets barcodebert-4-12-12 bioscan5m-8-4-4 \
  --batch-sizes 64 256 --steps 12 --warmup 4 --rows 8192 --workers 4 --out "$OUT" 2>&1 | tail -40
ls -la "$OUT"
