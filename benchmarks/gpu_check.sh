#!/usr/bin/env bash
# Every GPU check of the project in one run, for the device tool's lent machine (a bare image with python3 + torch
# 2.11, no internet). Prepare the missing wheels here first (benchmarks/gpu_wheels.sh → .whl/), then run, e.g.:
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=560)
# It runs the demo pipeline's base models on CUDA (features, embeddings, SSL features and training with bf16
# autocast; device: auto picks the GPU), the four benchmarks (their CUDA rows: batched features and augmentation,
# embedding, fp32 vs bf16 training steps incl. a base-size BERT at real sentence lengths), and copies the figures
# to $OUT. Not run in a session that had no GPU: see the closing notes for whether it has been.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}; mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD/src PATH=/tmp/site/bin:$PATH
else
  export PYTHONPATH=$PWD/src
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 - <<'PY' | tee "$OUT/device.txt"
import torch; print(torch.__version__, torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported())
PY
# The base models on the demo corpus (tfidf/egemaps are CPU models: the stack is left to CPU runs).
start=$(date +%s)
python3 -m dvc repro train_text train_audio train_multimodal train_wav2vec2 train_fusion 2>&1 | tail -40 | tee "$OUT/repro.txt"
echo "demo base models on the GPU: $(( $(date +%s) - start )) s" | tee -a "$OUT/repro.txt"
tar czf "$OUT/metrics.tgz" metrics
for b in audio_features augment text_embeddings train_step; do
  timeout 240 python3 "benchmarks/$b.py" 2>&1 | grep -v "it/s\]" | tee "$OUT/bench_$b.txt" || echo "$b: stopped" | tee -a "$OUT/bench_$b.txt"
done
# 1 process vs one per GPU (torchrun, NCCL, same global batch), base-size BERT: the training-stage scaling figure
gpus=$(python3 -c "import torch; print(torch.cuda.device_count())")
timeout 300 python3 benchmarks/distributed.py --base --rows 4096 --processes 1 "$gpus" 2>&1 | tee "$OUT/bench_distributed.txt" \
  || echo "distributed: stopped" | tee -a "$OUT/bench_distributed.txt"
