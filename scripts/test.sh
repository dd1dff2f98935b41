#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs all tests (this is what CI runs).
# Debian tools used as independent references (dcm2niix, dciodvfy, dcmtk), xvfb and the test
# PACS (orthanc with its DICOMweb plugin) are installed when missing and this user may
# install them.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for tool in dcm2niix:dcm2niix dciodvfy:dicom3tools dcmdump:dcmtk Xvfb:xvfb Orthanc:orthanc \
    /usr/share/orthanc/plugins/libOrthancDicomWeb.so:orthanc-dicomweb; do
  # a name is a command on PATH; a path (the DICOMweb plugin) must exist
  [ -e "${tool%%:*}" ] || command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "note: ${need[*]} missing and cannot be installed here; tests that need them skip" >&2
  fi
fi
# the tests also run an nnU-Net v2 model made here with nnU-Net's own tools
MEDVIEW_EXTRAS="${MEDVIEW_EXTRAS:-dev,nnunet}" ./scripts/setup.sh
. .venv/bin/activate
# TotalSegmentator's own task tables and weights layout, which `medview models import
# totalsegmentator:TASK` reads, so its tests run here: without its dependencies (dipy, fury,
# pyarrow, ...; pip --dry-run would also replace vtk 9.7 by 9.3.1), which that reading needs not
python -m pip install --quiet --no-deps "TotalSegmentator>=2.18"
ruff check medview tests benchmarks packaging
ruff format --check medview tests benchmarks packaging
lint-imports
mypy  # [tool.mypy] in pyproject.toml: medview/
set +e
# a hang that holds Python's lock (which no per-test timeout can break) ends here, in time
# to be reported inside CI's 90 minutes
timeout -k 30 70m python -m pytest "$@"
rc=$?
set -e
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
  echo "error: the tests ran past 70 minutes and were stopped: something hung" >&2
  exit 1
fi
if [ "$rc" = 5 ]; then
  echo "error: pytest collected no tests; the test tree is missing or broken" >&2
  exit 1
fi
exit "$rc"
