#!/bin/bash
# Device check of the pretraining loader (run from the repository root on a CUDA machine):
# builds the core in place, runs the loader tests (pinned batches need CUDA), a short CUDA
# pretraining run fed with 0 and with 2 workers, then bench_loader.py with pinned batches.
# Results go to $OUT (default /tmp).
OUT=${OUT:-/tmp}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
python -V; nproc; nvidia-smi --query-gpu=name --format=csv,noheader
if ! python -c "import bioscan_kmer._core" 2>/dev/null; then
  rm -f src/bioscan_kmer/_core*.so
  timeout 200 python setup.py -q build_ext --inplace 2>&1 | grep -v -i warning | tail -3
fi
python -c "import bioscan_kmer._core; print('core ok')" || exit 1
timeout 120 python -m pytest -q -p no:cacheprovider tests/test_train_batches.py 2>&1 | tail -4
timeout 120 python - <<'PY'
import sys, tempfile, time
sys.path.insert(0, "tests")
from model_synthetic import synthetic_shards
from bioscan_kmer.train import pretrain
d = tempfile.mkdtemp()
synthetic_shards(d + "/s", n_train=512, n_val=64)
for w in (0, 2):
    t = time.time()
    r = pretrain(d + "/s", f"{d}/run{w}", steps=30, batch_size=32, lr=3e-3, log_every=10, val_every=20,
                 preset="tiny", device="cuda", progress=False, seed=3, num_workers=w)
    print(f"cuda pretrain workers={w}: first {r['first_loss']:.4f} last {r['last_loss']:.4f} "
          f"val {r['val_loss']:.4f} in {time.time() - t:.1f} s")
PY
timeout 330 python benchmarks/bench_loader.py --rows 60000 --workers 0 2 4 --repeats 2 --pin \
  --out "$OUT/loader_h200.md" 2>&1
