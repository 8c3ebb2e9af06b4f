#!/usr/bin/env bash
# On a device machine: install the carried wheels, then benchmarks/gpu_search.py (search vs brute force)
# on PP-OCRv4's detector; if that model does not run on the torch backend there (onnx2torch or
# Inductor refuses it), on the generated ResNet-style CNN (benchmarks/sweep_models.py) instead.
#   bash benchmarks/gpu_search.sh WHEELDIR   (results in $OUT, else benchmarks/results/raw)
set -u
WHL=${1:-.whl}
RESULTS=${OUT:-benchmarks/results/raw}
mkdir -p "$RESULTS"
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export TORCHINDUCTOR_COMPILE_THREADS=${TORCHINDUCTOR_COMPILE_THREADS:-16}
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$WHL"/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
# Not pip-installed here, so the backend's entry point is named explicitly.
export FARM_EXTRA_BACKENDS=torch=workers.backends.torch.config:TorchConfig
{ date -u; nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,clocks.max.sm --format=csv; \
  python3 -c 'import torch; print("torch", torch.__version__)'; } | tee "$RESULTS/machine.txt"
timeout "${SEARCH_TIMEOUT:-300}" python3 benchmarks/gpu_search.py --out "$RESULTS" ${GPU_SEARCH_ARGS:-} 2>&1 | tail -30
if [ "${PIPESTATUS[0]}" = 3 ]; then
  echo "PP-OCRv4 det did not run on the torch backend; falling back to the generated resnetish CNN" \
    | tee "$RESULTS/fallback.txt"
  python3 -c 'import sys; sys.path.insert(0, "benchmarks"); from sweep_models import export_model; from pathlib import Path; export_model("resnetish", Path("/tmp/gs-models"))'
  timeout "${FALLBACK_TIMEOUT:-240}" python3 benchmarks/gpu_search.py --out "$RESULTS" --model /tmp/gs-models/resnetish.onnx \
    --size 224 --data none --work /tmp/farm-gpu-search-2 ${FALLBACK_ARGS:-} 2>&1 | tail -30
fi
