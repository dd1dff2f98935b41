#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs the main job: MedView on the bundled,
# generated demo study.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. .venv/bin/activate
exec medview demo "$@"
