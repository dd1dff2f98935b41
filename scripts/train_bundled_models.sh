#!/usr/bin/env bash
# Reproduce MedView's bundled models (lesion-seg 1.2 and slice-classifier 1.1) from the
# synthetic demo generator, seeded, and write their folders under medview/resources/models/.
# lesion-seg 1.2 is 1.0's three training phases (their end state is 1.0's weights), a fourth
# that widens the network to 5 context slices (1.1's weights), a fifth without the mined
# voxels next to lesions and with small and ground-glass lesions oversampled, a
# false-positive stage (gradient-boosted trees on the network's candidate regions) written
# beside the weights, and the outline extent chosen on development seeds. slice-classifier 1.1
# is 1.0's training at 128² slices (its end state is 1.0's weights), then the same network
# fine-tuned on 256² slices with its lesion map at 32 x 32 cells (the 256² slices are cached
# beside each study as small256.npy, 40 MB a study).
#
#   scripts/train_bundled_models.sh            # both models (3-4 hours on 2 CPU cores)
#   scripts/train_bundled_models.sh seg        # only the segmentation model
#   scripts/train_bundled_models.sh classifier # only the slice classifier
#
# Training studies are demo seeds 1..56 (segmentation) and 1..96 (classifier, which only
# keeps 128² and 256² slices); the false-positive stage learns on seeds 57..80 (which the
# segmentation network never saw) and picks its threshold on development seeds 2001..2012;
# validation seeds 1001..1010 are never trained on, but their numbers guided the design, so
# the cards keep them as development numbers (validation.development); the cards' numbers
# come from fresh seeds (3001..3020) no step here uses: benchmarks/eval_models.py, then
# python -m medview.ai.bundled.held_out (docs/development.md);
# all site A, full 300-slice 512 x 512 studies; each is generated once into the cache
# folder (MEDVIEW_TRAIN_CACHE, default /tmp/medview-train, about 250 MB a study, 30 GB in all). Checkpoints and
# train.log go to $MEDVIEW_TRAIN_CACHE/work; a stopped run resumes from its last checkpoint
# (delete work/*.ckpt.pt to start over). THREADS sets torch's CPU threads (default 1: on a
# shared 2-core machine one thread is faster than two). Same command, same weights on CPU,
# up to float rounding across machines and library versions.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-all}"
shift || true
exec python -m medview.ai.bundled.training "$MODEL" \
    --cache "${MEDVIEW_TRAIN_CACHE:-/tmp/medview-train}" \
    --train-seeds 1-56 --classifier-seeds 1-96 --val-seeds 1001-1010 \
    --fp-seeds 57-80 --dev-seeds 2001-2012 \
    --threads "${THREADS:-1}" "$@"
