#!/usr/bin/env bash
# Sets up a virtual environment in .venv with everything MedView needs.
# TORCH_SPEC overrides the torch pin (e.g. TORCH_SPEC="torch==2.13.0 --index-url ..." for CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
# The system libraries Qt's window (the xcb platform plugin) loads, one list of them with
# their Debian packages (a test keeps it complete with ldd and dpkg -S): installed when
# missing and this user may, else the one line to run is printed. Tests run offscreen and
# pass without them; `medview` would say what is missing and stop.
# The 3D view (VTK) opens OpenGL at run time (dlopen: ldd cannot see it) and needs Mesa's GLX
# and EGL drivers besides, with llvmpipe where there is no GPU driver (CI, Xvfb, headless):
# without them its tests skip and the 3D layout says so.
gl_packages="libgl1-mesa-dri libglx-mesa0 libegl-mesa0"
if command -v dpkg-query >/dev/null 2>&1; then
  qt_missing=()
  for pkg in $( (awk '!/^#/ && NF == 2 {print $2}' medview/resources/qt-debian-packages.txt; \
                 printf '%s\n' $gl_packages) | sort -u); do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q " installed$" \
      || qt_missing+=("$pkg")
  done
  if [ ${#qt_missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${qt_missing[@]}" >/dev/null
    else
      echo "note: MedView's window needs system libraries that are missing; install them with:" >&2
      echo "  sudo apt-get install ${qt_missing[*]}" >&2
    fi
  fi
fi
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# Install the CPU torch pin first: a loose spec would pull a multi-GB CUDA build.
python -m pip install --quiet ${TORCH_SPEC:-torch==2.13.0}
# Extras are installed with the torch already here held fixed: nnunetv2 (the nnunet extra)
# would otherwise swap it for a CUDA build.
pip freeze | grep -i "^torch==" > .venv/torch-constraint.txt
python -m pip install --quiet -c .venv/torch-constraint.txt -e ".[${MEDVIEW_EXTRAS:-dev}]"
# PyPI's torchvision (pulled by nnunetv2 through timm) is built against another torch and
# fails to import beside the CPU pin ("operator torchvision::nms does not exist"); nnU-Net's
# planner and predictor do not need it, so one that does not import is removed.
if python -m pip show --quiet torchvision >/dev/null 2>&1 \
    && ! python -c "import torchvision" >/dev/null 2>&1; then
  python -m pip uninstall --quiet -y torchvision
fi
