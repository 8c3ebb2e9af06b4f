#!/usr/bin/env bash
# On a device machine: install the carried wheels, then benchmarks/gpu_search.py twice on Magika's
# pretrained byte classifier (a real model that compiles in seconds; random bytes are real input):
#   1. a quick search against its brute-force sweep (torch, fp32/fp16/bf16 x batch 1..64, CUDA graphs),
#      both in one farm so the brute force reuses the search's identical jobs;
#   2. the brute-force sweep of the same space measured without CUDA graphs (host launches included).
# Both brute-force sweeps are written in the recorded-sweep format for benchmarks/search_replay.py.
#   bash benchmarks/gpu_search.sh WHEELDIR MODELDIR   (results in $OUT, else benchmarks/results/raw)
set -u
WHL=${1:-.whl}
MODELS=${2:-models}
RESULTS=${OUT:-benchmarks/results/raw}
mkdir -p "$RESULTS"
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export TORCHINDUCTOR_COMPILE_THREADS=${TORCHINDUCTOR_COMPILE_THREADS:-16}
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$WHL"/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
# Not pip-installed here, so the backend's entry point is named explicitly.
export FARM_EXTRA_BACKENDS=torch=workers.backends.torch.config:TorchConfig
# Fail here, in seconds, if a carried wheel is missing.
python3 -c 'import celery.utils.time, sqlalchemy, alembic, jsonschema, onnx2torch, optuna, farm.cli, workers.serve' || exit 1
{ date -u; nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,clocks.max.sm --format=csv; \
  python3 -c 'import torch; print("torch", torch.__version__)'; } | tee "$RESULTS/machine.txt"
COMMON=(--model "$MODELS/magika.onnx" --inputs bytes=2048 --data none --batches "${BATCHES:-1,2,4,8,16,32,64}")
timeout "${SEARCH_TIMEOUT:-300}" python3 benchmarks/gpu_search.py --out "$RESULTS" "${COMMON[@]}" --tag magika \
  --search-s "${SEARCH_S:-110}" --brute-s "${BRUTE_S:-170}" 2>&1 | tail -40
timeout "${NOGRAPH_TIMEOUT:-200}" python3 benchmarks/gpu_search.py --out "$RESULTS" "${COMMON[@]}" \
  --tag magika_nograph --brute-only --measure '{"cuda_graph": false}' --brute-s "${NOGRAPH_S:-185}" 2>&1 | tail -10
ls -la "$RESULTS"
