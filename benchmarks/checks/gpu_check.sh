#!/usr/bin/env bash
# Where an accelerator is lent: the test suite with CUDA visible (train_once and the loop move every
# model and batch to the GPU), then training and inference throughput at fp32 and bf16. Under 8 minutes.
# Nothing in modfit requires a GPU; on a machine without one this script says so and stops.
set -euo pipefail
cd "$(dirname "$0")/../.."
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
  || { echo "no CUDA device: nothing to check"; exit 0; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
HF_HUB_OFFLINE=1 timeout 300 python -m pytest -q -x
for precision in fp32 bf16; do
  HF_HUB_OFFLINE=1 timeout 90 python benchmarks/throughput/throughput.py --precision "$precision" --repeats 2 --steps 40
done
