#!/usr/bin/env bash
# GPU proof run on a device machine: wheels + repo into /tmp/site, GPU tests,
# harness-vs-do_bench check, and the farm sweep. Writes results to $RESULTS
# (default: $OUT if set, else ./benchmarks/results/raw).
#   bash benchmarks/gpu_sweep.sh single   # one GPU: tests, harness check, 2 models x 3 precisions x 3 batches
#   bash benchmarks/gpu_sweep.sh scaling  # two GPUs: one sweep on GPU 0 alone, then on both (cold caches each)
set -u
MODE=${1:-single}
RESULTS=${RESULTS:-${OUT:-benchmarks/results/raw}}
mkdir -p "$RESULTS"
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  python3 -m pip install -q --no-deps --no-build-isolation --no-compile --target /tmp/site . || exit 1
  export PYTHONPATH=/tmp/site
fi
{ date -u; nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,clocks.max.sm --format=csv; \
  python3 -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__)'; } \
  | tee "$RESULTS/machine.txt"
if [ "$MODE" = single ]; then
  export FARM_HOME=/tmp/farm-single TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-single
  timeout 150 python3 -m pytest -q -p no:cacheprovider tests/workers/test_gpu_timing.py tests/workers/test_telemetry.py \
    tests/workers/test_cuda_timing.py tests/workers/backends/torch 2>&1 | tail -15 | tee "$RESULTS/pytest.txt"
  timeout 120 python3 benchmarks/harness_check.py --out "$RESULTS/harness_check.json" 2>&1 | tail -5
  python3 benchmarks/gpu_sweep.py --out "$RESULTS/sweep_single.json" --gpus 0 --deadline-s "${DEADLINE_S:-300}" 2>&1 | tail -5
  cp "$FARM_HOME/workers.log" "$RESULTS/workers_single.log" 2>/dev/null
else
  # A: the real sweep on every GPU, cold compile caches (also checks NVML isolation).
  export FARM_HOME=/tmp/farm-two TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-two
  python3 benchmarks/gpu_sweep.py --out "$RESULTS/sweep_two_gpus.json" --gpus gpu --deadline-s "${DEADLINE_A:-270}" 2>&1 | tail -3
  tail -c 4000000 /tmp/farm-two/workers.log > "$RESULTS/workers_two.log" 2>/dev/null
  # B, C: the same sweep again (--force), caches warm for both: GPU 0 alone, then every GPU.
  python3 benchmarks/gpu_sweep.py --out "$RESULTS/scaling_one_gpu.json" --gpus 0 --force --deadline-s "${DEADLINE_B:-170}" 2>&1 | tail -3
  python3 benchmarks/gpu_sweep.py --out "$RESULTS/scaling_two_gpus.json" --gpus gpu --force --deadline-s "${DEADLINE_C:-110}" 2>&1 | tail -3
fi
