#!/bin/bash
# Device check for issue 5 (run from the repository root): builds the core in place if
# needed, runs the eval tests that the machine's packages allow on CUDA, and times the
# GPU paths (embedding, blocked k-NN at 100k keys, linear probe, fine-tuning).
OUT=${OUT:-/tmp}
python -V; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python - <<'PY'
import importlib
for m in ("torch", "numpy", "pandas", "sklearn", "umap", "edlib", "pybind11", "pyarrow", "matplotlib", "scipy", "tqdm"):
    try:
        mod = importlib.import_module(m); print(m, getattr(mod, "__version__", "?"))
    except Exception as e:
        print(m, "MISSING", type(e).__name__)
PY
export PYTHONPATH=$PWD/src
if ! python -c "import bioscan_kmer" 2>/dev/null; then
  rm -f src/bioscan_kmer/_core*.so
  timeout 240 python setup.py -q build_ext --inplace 2>&1 | tail -3
fi
python -c "import bioscan_kmer; print('core ok', bioscan_kmer.kmer_counts(['ACGT'], k=2).sum())" || exit 1
args=(tests/test_eval_metrics.py tests/test_eval_knn.py tests/test_eval_probes.py tests/test_eval_embeddings.py)
python -c "import edlib" 2>/dev/null && args+=(tests/test_eval_baselines.py)
python -c "import umap, edlib" 2>/dev/null && args+=(tests/test_eval_pipeline.py)
python -c "import umap" 2>/dev/null || args+=(-k "not zero_shot_clustering")
timeout 150 python -m pytest -q -p no:cacheprovider "${args[@]}" 2>&1 | tail -6
timeout 200 python -W ignore benchmarks/gpu_eval_timings.py --json $OUT/gpu_timings.json
