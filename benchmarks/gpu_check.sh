#!/usr/bin/env bash
# Everything MedView runs on CUDA, once, on one GPU, each step timed (benchmarks/gpu_check.py):
# 2D and 3D inference with bf16 and fp16 autocast (3D also with its focus slab first), a forced
# out-of-memory and its recovery, a fine-tune with AMP + GradScaler, DDP with NCCL in one
# process, onnxruntime's CUDA provider when installed, an imported .pt2 moved to the GPU,
# nnU-Net's predictor when installed. At most 10 minutes; any failure exits 1. Without CUDA
# it prints one line ("no device: ...") and exits 0 (--rehearse: run the CPU-capable steps).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi
exec timeout 600 python -m benchmarks.gpu_check "$@"
