#!/usr/bin/env bash
# Device run for issue 12: torch multi-stream throughput (1/2/4 streams) and the
# per-layer kernel table on a real model, plus the GPU test of both.
# Needs: wheels the image lacks in .whl/ (onnx2torch), the PP-OCRv4 detector
# ONNX file at $MODEL (default .models/ch_PP-OCRv4_det_infer.onnx, copied from
# the rapidocr_onnxruntime wheel). Results go to $OUT (or benchmarks/results/raw).
#   bash benchmarks/torch_streams_profile.sh
set -u
RESULTS=${OUT:-benchmarks/results/raw}
MODEL=${MODEL:-.models/ch_PP-OCRv4_det_infer.onnx}
STAMP=$(date -u +%Y%m%d)
mkdir -p "$RESULTS"
export PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-streams
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export FARM_EXTRA_BACKENDS=torch=workers.backends.torch.config:TorchConfig
{ date -u; nvidia-smi --query-gpu=name,uuid,driver_version,memory.total --format=csv; \
  python3 -c 'import torch; print("torch", torch.__version__)'; } | tee "$RESULTS/h200_machine_streams_$STAMP.txt"
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/workers/backends/torch/test_streams_profile_gpu.py 2>&1 \
  | tail -15 | tee "$RESULTS/h200_pytest_streams_$STAMP.txt"
set -o pipefail
if ! timeout "${BENCH_TIMEOUT:-170}" python3 benchmarks/torch_streams_profile.py --model "$MODEL" --shape "${SHAPE:-1x3x640x640}" \
    --precision fp16 --streams 1,2,4 --out-json "$RESULTS/h200_torch_streams_profile_$STAMP.json" \
    --out-md "$RESULTS/h200_torch_streams_profile_$STAMP.md" 2>&1 | tail -40; then
  # The real model did not convert or compile here: say so, and measure the generated ResNet-style CNN instead.
  echo "PP-OCRv4 det run failed; falling back to benchmarks/sweep_models.py resnetish" | tee "$RESULTS/h200_streams_fallback_$STAMP.txt"
  python3 -c 'import sys; sys.path.insert(0, "benchmarks"); from sweep_models import export_model; from pathlib import Path; export_model("resnetish", Path("/tmp/streams-models"))'
  timeout 150 python3 benchmarks/torch_streams_profile.py --model /tmp/streams-models/resnetish.onnx --shape 8x3x224x224 \
    --precision fp16 --streams 1,2,4 --out-json "$RESULTS/h200_torch_streams_profile_resnetish_$STAMP.json" \
    --out-md "$RESULTS/h200_torch_streams_profile_resnetish_$STAMP.md" 2>&1 | tail -40
fi
