#!/usr/bin/env bash
# Reproduce MedView's two bundled models (lesion-seg 1.0 and slice-classifier 1.0) from the
# synthetic demo generator, seeded, and write their folders under medview/resources/models/.
#
#   scripts/train_bundled_models.sh            # both models (2-3 hours on 2 CPU cores)
#   scripts/train_bundled_models.sh seg        # only the segmentation model
#   scripts/train_bundled_models.sh classifier # only the slice classifier
#
# Training studies are demo seeds 1..56 (segmentation) and 1..96 (classifier, which only
# keeps 128² slices) and validation seeds 1001..1010 (never trained on),
# all site A, full 300-slice 512 x 512 studies; each is generated once into the cache
# folder (MEDVIEW_TRAIN_CACHE, default /tmp/medview-train, about 250 MB a study, 27 GB in all). Checkpoints and
# train.log go to $MEDVIEW_TRAIN_CACHE/work; a stopped run resumes from its last checkpoint
# (delete work/*.ckpt.pt to start over). THREADS sets torch's CPU threads (default 1: on a
# shared 2-core machine one thread is faster than two). Same command, same weights on CPU,
# up to float rounding across machines and library versions.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-all}"
shift || true
exec python -m medview.ai.bundled_training "$MODEL" \
    --cache "${MEDVIEW_TRAIN_CACHE:-/tmp/medview-train}" \
    --train-seeds 1-56 --classifier-seeds 1-96 --val-seeds 1001-1010 \
    --threads "${THREADS:-1}" "$@"
