#!/usr/bin/env bash
# Every GPU measurement of benchmarks/ in one call on a lent H100/H200, most telling first, at most 7.5 minutes:
#   1. gpu_flex_check.py: the flex_attention backend against the eager one run in float64 (forward and gradients,
#      fp32 and bf16), then the attention alone timed beside reformer-pytorch's and SDPA (FLEX_BUDGET seconds);
#   2. train_step.py: the wrapper-overhead check and the training-step table (the implementations the targets
#      compare, the GPU plan's cases in order of importance; TRAIN_BUDGET seconds, later cases are recorded as
#      skipped);
#   3. profile_step.py: where the step's time goes, by part and by kernel, for reformer-ko with both speed options
#      (flex attention, sparse prediction) and for raw reformer-pytorch (MLM, 4,096 tokens x 4);
#   4. generation.py: tokens/s of generation after prompts of 512 to 4,096 tokens, reformer-ko with its LSH cache,
#      without it, and transformers' Reformer with its cache (GENERATION_LIMIT seconds).
# The budgets only stop new sections or cases from starting; each part also has a hard limit (SIGINT, after which
# it reports what it measured). A failing part is reported and the next one still runs; the exit status is the
# first failure's.
#
# Results: the parts write into a work folder ($WORK, default a new temporary folder) laid out as benchmarks/results/
# is: flex_attention_gpu/, training_step_gpu/, step_profile_gpu/ and generation_gpu/, each part's log beside its
# results. The device
# tool returns at most 8 files from $OUT, so the work folder is packed into ONE archive, $OUT/gpu_results.tar.gz,
# after every part and once more on exit however the script ends (a call killed outright keeps the last one), and
# $OUT/gpu_summary.txt says what ran on what and how each part ended. Unpack the archive into benchmarks/results:
#   tar -xzf gpu_results.tar.gz -C benchmarks/results
# $OUT defaults to outputs/gpu_benchmarks (git-ignored). PARTS picks parts (default "flex train profiles generation", e.g.
# PARTS=train to rerun the table alone). DRY_RUN=1 runs the same parts on the CPU at tiny sizes in seconds
# (tests/test_benchmarks.py does): the script's plumbing, not the GPU's numbers.
#
# Once, on the machine you call from (the repo root), fetch reformer-pytorch and its dependencies as wheels:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl reformer-pytorch==1.4.4 local-attention==1.11.2 \
#     hyper-connections==0.4.11 torch-einops-utils==0.2.0 axial_positional_embedding==0.3.12 \
#     product_key_memory==0.3.0 colt5-attention==0.11.2 einops==0.8.2
# then, with the device tool:  run(command="bash benchmarks/run_gpu.sh", carry=[".whl"], timeout_s=560)
# Anywhere else with a GPU and reformer-pytorch installed, the same script runs without the wheels.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-outputs/gpu_benchmarks}"
TEMPORARY_WORK=""
[ -z "${WORK:-}" ] && WORK=$(mktemp -d) TEMPORARY_WORK=1
PARTS="${PARTS:-flex train profiles generation}"
FLEX_BUDGET="${FLEX_BUDGET:-60}"
TRAIN_BUDGET="${TRAIN_BUDGET:-190}"
GENERATION_LIMIT="${GENERATION_LIMIT:-70}"
RESULT_FOLDERS=(flex_attention_gpu training_step_gpu step_profile_gpu generation_gpu)
mkdir -p "$OUT" "$WORK"
OUT=$(cd "$OUT" && pwd) WORK=$(cd "$WORK" && pwd)
ARCHIVE="$OUT/gpu_results.tar.gz" SUMMARY="$OUT/gpu_summary.txt"
rm -f "$ARCHIVE" "$ARCHIVE.partial"
: >"$SUMMARY"

pack() {  # the result folders written so far into $ARCHIVE: written beside it, then renamed, so it is always whole
  local folders=()
  for folder in "${RESULT_FOLDERS[@]}"; do
    [ -d "$WORK/$folder" ] && folders+=("$folder")
  done
  [ "${#folders[@]}" -eq 0 ] && return 0
  tar -czf "$ARCHIVE.partial" -C "$WORK" "${folders[@]}" && mv -f "$ARCHIVE.partial" "$ARCHIVE"
}
finish() {
  if pack && [ -f "$ARCHIVE" ]; then
    echo "archive: $ARCHIVE ($(tar -tzf "$ARCHIVE" | grep -vc '/$') files)" | tee -a "$SUMMARY"
    [ -n "$TEMPORARY_WORK" ] && rm -rf "$WORK"
  else
    echo "no archive: nothing measured, or packing failed (the results stay in $WORK)" | tee -a "$SUMMARY"
  fi
}
trap finish EXIT
trap 'echo "interrupted" | tee -a "$SUMMARY"; exit 130' INT TERM

WHEELS="reformer_pytorch local_attention hyper_connections torch_einops_utils axial_positional_embedding product_key_memory colt5_attention einops"
if [ -d .whl ]; then
  files=()
  for name in $WHEELS; do
    found=$(find .whl -maxdepth 1 -iname "${name}-*.whl" | sort | tail -n 1)
    [ -n "$found" ] && files+=("$found")
  done
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${files[@]}" \
    || { echo "installing the wheels in .whl failed" | tee -a "$SUMMARY"; exit 1; }
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

{
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo "unknown (no git)")
  echo "benchmarks/run_gpu.sh $* (DRY_RUN=${DRY_RUN:-0}, PARTS=$PARTS), $(date -u +%FT%TZ), commit $commit"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,temperature.gpu --format=csv,noheader 2>&1
  fi
  python3 -c "import torch, transformers, reformer_pytorch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)" 2>&1
} | tee -a "$SUMMARY"
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1

status=0
part() {  # part NAME FOLDER LOG LIMIT COMMAND...: run one part for at most LIMIT seconds, its log in FOLDER
  local name=$1 folder=$WORK/$2 log=$3 limit=$4 began=$SECONDS
  shift 4
  mkdir -p "$folder"
  echo "=== $name ($(date +%T))"
  timeout --signal=INT --kill-after=20 "$limit" "$@" 2>&1 | grep -v --line-buffered '^\[transformers\]' \
    | tee "$folder/$log"
  local code=${PIPESTATUS[0]}
  echo "=== $name: exit $code ($(date +%T))"
  echo "$name: exit $code, $((SECONDS - began)) s" >>"$SUMMARY"
  [ "$status" -eq 0 ] && status=$code
  pack
}

if [ "${DRY_RUN:-0}" = 1 ]; then
  flex=(--dry-run) train=(--dry-run --in-process) profile=(--device cpu --task tiny-mlm --seq-len 64 --batch 2 --warmup 1 --steps 1)
  generation=(--dry-run)
else
  # The implementations the targets compare, in order of importance (train_step.py has more: pass --impls to change).
  flex=() profile=(--device cuda --task mlm --seq-len 4096 --batch 4) generation=(--device cuda)
  train=(--device cuda --impls reformer-pytorch reformer-ko reformer-ko-flex reformer-ko-flex-sparse sdpa hf-reformer)
fi
runs() { [[ " $PARTS " == *" $1 "* ]]; }
if runs flex; then
  part "flex_attention check" flex_attention_gpu gpu_flex_check.log $((FLEX_BUDGET + 45)) \
    python3 benchmarks/gpu_flex_check.py "${flex[@]}" --out "$WORK/flex_attention_gpu" --time-budget "$FLEX_BUDGET"
fi
if runs train; then
  part "training step" training_step_gpu train_step.log $((TRAIN_BUDGET + 60)) \
    python3 benchmarks/train_step.py "${train[@]}" --out "$WORK/training_step_gpu" --time-budget "$TRAIN_BUDGET" "$@"
fi
if runs profiles; then
  for impl in reformer-ko-flex-sparse reformer-pytorch; do
    part "profile $impl" step_profile_gpu "profile_$impl.log" 45 \
      python3 benchmarks/profile_step.py "${profile[@]}" --impl "$impl" --out "$WORK/step_profile_gpu"
  done
fi
if runs generation; then
  part "generation" generation_gpu generation.log "$GENERATION_LIMIT" \
    python3 benchmarks/generation.py "${generation[@]}" --out "$WORK/generation_gpu"
fi
exit "$status"
