#!/usr/bin/env bash
# The GPU benchmark in one call on a lent H100/H200 (about 5-7 minutes; the harness stops starting cases after
# TIME_BUDGET seconds and records the rest as skipped, so the call ends inside 8 minutes).
#
# Once, on the machine you call from (the repo root), fetch reformer-pytorch and its dependencies as wheels:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl reformer-pytorch==1.4.4 local-attention==1.11.2 \
#     hyper-connections==0.4.11 torch-einops-utils==0.2.0 axial_positional_embedding==0.3.12 \
#     product_key_memory==0.3.0 colt5-attention==0.11.2 einops==0.8.2
# then run this with `.whl` carried:  bash benchmarks/run_gpu.sh   (results go to $OUT, or benchmarks/results).
# Anywhere else with a GPU and reformer-pytorch installed, the same script runs without the wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results}"
TIME_BUDGET="${TIME_BUDGET:-360}"
mkdir -p "$OUT"

WHEELS="reformer_pytorch local_attention hyper_connections torch_einops_utils axial_positional_embedding product_key_memory colt5_attention einops"
if [ -d .whl ]; then
  files=()
  for name in $WHEELS; do
    found=$(find .whl -maxdepth 1 -iname "${name}-*.whl" | sort | tail -n 1)
    [ -n "$found" ] && files+=("$found")
  done
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${files[@]}"
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,temperature.gpu --format=csv || true
python3 -c "import torch, transformers, reformer_pytorch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"

python3 benchmarks/train_step.py --device cuda --out "$OUT" --time-budget "$TIME_BUDGET" "$@" 2>&1 \
  | grep -v --line-buffered '^\[transformers\]' | tee "$OUT/train_step_cuda.log"
