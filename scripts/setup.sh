#!/usr/bin/env bash
# Sets up a virtual environment in .venv with everything MedView needs.
# TORCH_SPEC overrides the torch pin (e.g. TORCH_SPEC="torch==2.13.0 --index-url ..." for CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# Install the CPU torch pin first: a loose spec would pull a multi-GB CUDA build.
python -m pip install --quiet ${TORCH_SPEC:-torch==2.13.0}
python -m pip install --quiet -e ".[${MEDVIEW_EXTRAS:-dev}]"
