#!/bin/bash
# Device run (b) of issue 14: barcodebert-4-12-12 pretrained for BarcodeBERT's 35 epochs on the
# 26,041 distinct real BOLD barcodes, then the benchmark's learning curve and the encoder's
# probes (one evaluation seed). Run from the repository root on a CUDA machine; results go
# to $OUT (default /tmp). Not yet run on a GPU: the costs below are estimates from
# benchmarks/results/gpu_pretrain_h200.md (597k tokens/s compiled at batch 256, bf16).
#
# Before the device call, here (the device has no network and no umap/edlib/fastcluster):
#   mkdir -p .device && cp ../shared/data/bold_insect_coi5p_108k.tsv.gz .device/   # .gitignore ignores it
#   pip download -q --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
#       --platform manylinux_2_17_x86_64 -d .device edlib fastcluster umap-learn pynndescent
# then run: `bash benchmarks/gpu_real_bold.sh [PRESET]` with carry [".device"], timeout_s 590,
# and, if it stopped on its time limit, the same call again at once (the machine stays warm
# for 30 s; the benchmark resumes every finished step from .device-runs/real_PRESET, which
# stays there because it is ignored and not carried; a carried path is replaced). PRESET is
# barcodebert-4-12-12 (the run, default) or bioscan5m-8-4-4 (the BIOSCAN-5M model,
# the one whose published 1-NN genus on unseen species beats the CNN's: SPEC section 8,
# 47.03 vs 29.88, where the published BarcodeBERT row has 23.15; ~74M token positions,
# about 2 minutes of pretraining).
#
# Deviations from the recipe, for the lease (in the report's settings line): bf16 autocast
# and torch.compile instead of fp32, batch 256 instead of 16 (lr by BarcodeBERT's rule,
# 1e-4 x 256/64); 35 epochs = 3,535 steps, ~149M token positions, ~4-5 minutes. The
# baselines are the CPU run's (same table, same splits: benchmarks/results/real_bold.md),
# so this run skips them (--baselines none).
OUT=${OUT:-/tmp}
PRESET=${1:-barcodebert-4-12-12}
RUN=.device-runs/real_${PRESET}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 BIOSCAN_KMER_PROGRESS=plain
python3 -V; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -m pip install -q --no-deps --no-index .device/*.whl 2>&1 | grep -v -i warning | tail -2
if ! python3 -c "import bioscan_kmer._core" 2>/dev/null; then
  rm -f src/bioscan_kmer/_core*.so
  timeout 150 python3 setup.py -q build_ext --inplace > "$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log"; exit 1; }
fi
timeout 540 python3 -m bioscan_kmer.cli benchmark --data .device/bold_insect_coi5p_108k.tsv.gz \
  --out "$RUN" --preset "$PRESET" --epochs 35 --batch-size 256 \
  --precision bf16 --compile --seeds 0 --curve-points 6 --baselines none 2>&1 | tail -60
rc=${PIPESTATUS[0]}
for f in report.md report.csv learning_curve.csv learning_curve.png layers.csv run/log.jsonl run/config.json; do
  [ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUT/"
done
ls -la "$OUT"
echo "benchmark exit code $rc (124: time limit reached; call again to resume)"
