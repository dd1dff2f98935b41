"""A real PACS for the network tests: Debian's Orthanc with its DICOMweb plugin, started once
per test session on loopback with a generated configuration and stopped at the end.

Ports are chosen free (never Orthanc's defaults 4242/8042, which a running service may hold);
remote access is off; unknown calling AE titles are refused (so a refused AE can be tested);
MedView's AE titles and dcmtk's are the configured modalities, each with its own free storage
port for C-MOVE. scripts/test.sh installs orthanc, orthanc-dicomweb and dcmtk when missing;
where they cannot be installed these tests skip, saying why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.net.orthanc import (
    PLUGIN,
    OrthancServer,
    dimse_node,
    orthanc_binary,
    running_orthanc,
)


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory) -> OrthancServer:
    if orthanc_binary() is None or not PLUGIN.exists():
        pytest.skip(
            "Orthanc or its DICOMweb plugin is not installed (apt-get install orthanc "
            "orthanc-dicomweb; scripts/test.sh does so when it may)"
        )
    with running_orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture(scope="session")
def dcmtk() -> Path:
    """The folder of dcmtk's tools (storescu, findscu, getscu), or skip. Found beside
    dcmdump, because pynetdicom installs apps of the same names into the virtual
    environment."""
    found = shutil.which("dcmdump")
    folder = Path(found).parent if found else None
    if folder is None or not all((folder / t).exists() for t in ("storescu", "findscu", "getscu")):
        pytest.skip("dcmtk is not installed (apt-get install dcmtk)")
    return folder


@pytest.fixture(scope="session")
def net_demo(tmp_path_factory):
    """A 20-slice demo study (seed 16), the study the network tests move around."""
    from medview.demo import generate_demo_study

    return generate_demo_study(tmp_path_factory.mktemp("netdemo"), seed=16, slices=20)


@pytest.fixture(scope="session")
def stored_study(orthanc, net_demo):
    """The demo study, stored in the test PACS by MedView's C-STORE."""
    from medview.net import dimse

    files = sorted(net_demo.series_dir.glob("*.dcm"))
    assert dimse.send(dimse_node(orthanc), files) == len(files)
    return net_demo


@pytest.fixture
def study_as_stored(orthanc, stored_study):
    """The stored study; the series a test sends into it (SEG, SR) are deleted again after
    it, so the other tests see the study as stored."""

    def series() -> dict[str, str]:
        (found,) = [
            f
            for f in orthanc.rest("/tools/lookup", "POST", data=stored_study.study_instance_uid)
            if f["Type"] == "Study"
        ]
        return {
            s["MainDicomTags"]["SeriesInstanceUID"]: s["ID"]
            for s in orthanc.rest(f"/studies/{found['ID']}/series?expand")
        }

    before = set(series())
    yield stored_study
    for uid, orthanc_id in series().items():
        if uid not in before:
            orthanc.rest(f"/series/{orthanc_id}", "DELETE")
