#!/usr/bin/env bash
# On a device machine: install the carried wheels, then benchmarks/gpu_search.py (search vs brute force).
#   bash benchmarks/gpu_search.sh WHEELDIR   (results in $OUT, else benchmarks/results/raw)
set -u
WHL=${1:-.whl}
RESULTS=${OUT:-benchmarks/results/raw}
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export TORCHINDUCTOR_COMPILE_THREADS=${TORCHINDUCTOR_COMPILE_THREADS:-16}
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$WHL"/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
{ date -u; nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,clocks.max.sm --format=csv; } | tee "$RESULTS/machine.txt"
timeout "${SEARCH_TIMEOUT:-330}" python3 benchmarks/gpu_search.py --out "$RESULTS" ${GPU_SEARCH_ARGS:-} 2>&1 | tail -30
