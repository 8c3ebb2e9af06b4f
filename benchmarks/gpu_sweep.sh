#!/usr/bin/env bash
# GPU proof run on a device machine: wheels + repo into /tmp/site, GPU tests,
# harness-vs-do_bench check, and the farm sweep. Writes results to $RESULTS
# (default: $OUT if set, else ./benchmarks/results/raw).
#   bash benchmarks/gpu_sweep.sh checks       # GPU tests + harness check (one GPU); or each: tests, harness
#   bash benchmarks/gpu_sweep.sh single       # the 2 models x 3 precisions x 3 batches sweep, one pinned worker
#   bash benchmarks/gpu_sweep.sh single-start # the same sweep in the background (setsid), for a device call
#                                             # limit shorter than the sweep; its files land in /tmp/farm-results
#   bash benchmarks/gpu_sweep.sh single-wait  # wait (up to WAIT_S) for that sweep, copy its files to $RESULTS
#   bash benchmarks/gpu_sweep.sh panel        # torch on the real-model panel (MODELS_DIR: model files by name,
#                                             # else the test extra's wheels); benchmarks/torch_panel.py;
#                                             # PANEL_ARGS: more of its flags (--shared-cache --warm-rebuild ...)
#   bash benchmarks/gpu_sweep.sh formats      # a PyTorch program through the torch backend natively from .pt2
#                                             # and through its ONNX, side by side (benchmarks/source_formats.py;
#                                             # FORMATS_ARGS: more of its flags)
#   bash benchmarks/gpu_sweep.sh scaling      # two GPUs: one sweep on GPU 0 alone, then on both (cold caches each)
#   bash benchmarks/gpu_sweep.sh acceptance   # issue 25: specs without build:/measure: on 3 real models + an encoder,
#                                             # farm best per model, the finals' tuned rebuild (gpu_acceptance.py;
#                                             # MODELS_DIR as for panel; ACCEPT_ARGS: more of its flags)
#   bash benchmarks/gpu_sweep.sh reduced      # issue 22: PP-OCR det/rec, torch fp32/fp16/bf16 b4, 32 rendered rows,
#                                             # task metrics (map IoU, CTC sequence agreement) with intervals
#                                             # (gpu_reduced_precision.py; MODELS_DIR as for panel)
#   bash benchmarks/gpu_sweep.sh serving      # issue 26: LoadGen scenarios, torch, YOLOv8n 320 + PP-OCR cls
#                                             # (serving_gpu.py; P99_MS bound, default 10; MODELS_DIR as for panel)
set -u
MODE=${1:-single}
RESULTS=${RESULTS:-${OUT:-benchmarks/results/raw}}
BG=/tmp/farm-results
mkdir -p "$RESULTS" "$BG"
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export TORCHINDUCTOR_COMPILE_THREADS=${TORCHINDUCTOR_COMPILE_THREADS:-16}
export FARM_HOME=/tmp/farm-single TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-single
if [ -d .whl ] && [ "$MODE" != single-wait ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  python3 -m pip install -q --no-deps --no-build-isolation --no-compile --target /tmp/site . || exit 1
fi
[ -d /tmp/site ] && export PYTHONPATH=/tmp/site
machine() {
  { date -u; nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,clocks.max.sm --format=csv; \
    python3 -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__)'; } | tee "$1"
}
case "$MODE" in
tests|checks)
  machine "$RESULTS/machine.txt"
  set -o pipefail
  timeout 240 python3 -m pytest -q -p no:cacheprovider tests/workers/test_gpu_timing.py tests/workers/test_telemetry.py \
    tests/workers/test_cuda_timing.py tests/workers/backends/torch 2>&1 | tail -15 | tee "$RESULTS/pytest.txt" || exit 2
  if [ "$MODE" = checks ]; then
    timeout 180 python3 benchmarks/harness_check.py --out "$RESULTS/harness_check.json" 2>&1 | tail -5
  fi
  ;;
harness)
  # HARNESS_INDUCTOR: torch "inductor" overrides as JSON (the sweep's, for a quicker build)
  timeout "${HARNESS_TIMEOUT:-180}" python3 benchmarks/harness_check.py --out "$RESULTS/harness_check.json" \
    ${HARNESS_INDUCTOR:+--inductor "$HARNESS_INDUCTOR"} 2>&1 | tail -5
  ;;
single)
  machine "$RESULTS/machine.txt"
  python3 benchmarks/gpu_sweep.py --out "$RESULTS/sweep_single.json" --gpus 0 --deadline-s "${DEADLINE_S:-540}" 2>&1 | tail -5
  tail -c 4000000 "$FARM_HOME/workers.log" > "$RESULTS/workers_single.log" 2>/dev/null
  ;;
single-start)
  machine "$BG/machine.txt"
  # Fail here, not in the background, if a carried wheel is missing.
  python3 -c 'import celery.utils.time, sqlalchemy, alembic, jsonschema, onnx2torch, farm.cli, workers.serve' || exit 1
  rm -f "$BG/sweep_single.json"
  setsid nohup python3 benchmarks/gpu_sweep.py --out "$BG/sweep_single.json" --gpus 0 \
    --deadline-s "${DEADLINE_S:-1500}" > "$BG/sweep.log" 2>&1 < /dev/null &
  echo "sweep started in the background (pid $!); files in $BG"
  ;;
single-wait)
  end=$((SECONDS + ${WAIT_S:-540}))
  while [ ! -s "$BG/sweep_single.json" ] && [ $SECONDS -lt $end ] && pgrep -f gpu_sweep.py >/dev/null; do sleep 5; done
  tail -c 4000000 "$FARM_HOME/workers.log" > "$RESULTS/workers_single.log" 2>/dev/null
  cp "$BG"/* "$RESULTS/" 2>/dev/null
  tail -5 "$BG/sweep.log"
  [ -s "$BG/sweep_single.json" ] || { echo "sweep still running"; exit 3; }
  ;;
panel)
  machine "$RESULTS/machine.txt"
  # Not "${PANEL_BUILD:-{...}}": its first "}" would end the expansion and append a stray "}" to a set value.
  default_build='{"fullgraph": true, "mode": "default"}'
  python3 benchmarks/torch_panel.py --out "$RESULTS" ${MODELS_DIR:+--models-dir "$MODELS_DIR"} \
    --deadline-s "${DEADLINE_S:-420}" --build "${PANEL_BUILD:-$default_build}" \
    ${PANEL_ARGS:-} 2>&1 | tee "$RESULTS/panel.log" | grep -e '^|' -e 'Error' -e 'Traceback'
  ;;
formats)
  machine "$RESULTS/machine.txt"
  export FARM_HOME=/tmp/farm-formats TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-formats
  python3 benchmarks/source_formats.py --out "$RESULTS" --deadline-s "${DEADLINE_S:-150}" ${FORMATS_ARGS:-} \
    2>&1 | tee "$RESULTS/formats.log" | grep -e '^|' -e 'Error' -e 'Traceback'
  ;;
scaling)
  machine "$RESULTS/machine.txt"
  # A: the real sweep on every GPU, cold compile caches (also checks NVML isolation).
  export FARM_HOME=/tmp/farm-two TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-two
  python3 benchmarks/gpu_sweep.py --out "$RESULTS/sweep_two_gpus.json" --gpus gpu --deadline-s "${DEADLINE_A:-270}" 2>&1 | tail -3
  tail -c 4000000 /tmp/farm-two/workers.log > "$RESULTS/workers_two.log" 2>/dev/null
  # B, C: the same sweep again (--force), caches warm for both: GPU 0 alone, then every GPU.
  python3 benchmarks/gpu_sweep.py --out "$RESULTS/scaling_one_gpu.json" --gpus 0 --force --deadline-s "${DEADLINE_B:-170}" 2>&1 | tail -3
  python3 benchmarks/gpu_sweep.py --out "$RESULTS/scaling_two_gpus.json" --gpus gpu --force --deadline-s "${DEADLINE_C:-110}" 2>&1 | tail -3
  ;;
acceptance)
  machine "$RESULTS/machine.txt"
  python3 benchmarks/gpu_acceptance.py --out "$RESULTS" ${MODELS_DIR:+--models-dir "$MODELS_DIR"} \
    --deadline-s "${DEADLINE_S:-330}" ${ACCEPT_ARGS:-} > "$RESULTS/acceptance.log" 2>&1
  tail -c 4000000 "$FARM_HOME/workers.log" > "$RESULTS/workers_acceptance.log" 2>/dev/null
  tail -70 "$RESULTS/acceptance.log"
  ;;
serving)
  # issue 26: LoadGen SingleStream / Server (highest valid QPS under P99_MS) / Offline, torch fp16 b1 and b8,
  # on YOLOv8n 320 and PP-OCR cls (serving_gpu.py; MODELS_DIR as for panel; SERVING_ARGS: more of its flags)
  machine "$RESULTS/machine.txt"
  python3 benchmarks/serving_gpu.py --out "$RESULTS" ${MODELS_DIR:+--models-dir "$MODELS_DIR"} \
    --p99-ms "${P99_MS:-10}" --deadline-s "${DEADLINE_S:-270}" ${SERVING_ARGS:-} > "$RESULTS/serving.log" 2>&1
  tail -c 4000000 "$FARM_HOME/workers.log" > "$RESULTS/workers_serving.log" 2>/dev/null
  tail -40 "$RESULTS/serving.log"
  ;;
reduced)
  machine "$RESULTS/machine.txt"
  timeout 200 python3 benchmarks/gpu_reduced_precision.py --out "$RESULTS" ${MODELS_DIR:+--models-dir "$MODELS_DIR"} \
    --deadline-s "${DEADLINE_S:-170}" > "$RESULTS/reduced.log" 2>&1
  tail -40 "$RESULTS/reduced.log"
  ;;
*) echo "Error: unknown mode $MODE (tests, harness, checks, single, single-start, single-wait, panel, scaling, acceptance, serving, reduced)"; exit 1 ;;
esac
