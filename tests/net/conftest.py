"""A real PACS for the network tests: Debian's Orthanc with its DICOMweb plugin, started once
per test session on loopback with a generated configuration and stopped at the end.

Ports are chosen free (never Orthanc's defaults 4242/8042, which a running service may hold);
remote access is off; unknown calling AE titles are refused (so a refused AE can be tested);
MedView's AE titles and dcmtk's are the configured modalities, each with its own free storage
port for C-MOVE. scripts/test.sh installs orthanc, orthanc-dicomweb and dcmtk when missing;
where they cannot be installed these tests skip, saying why."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ORTHANC_AET = "ORTHANC"
MEDVIEW_AET = "MEDVIEW"
DCMTK_AET = "DCMTKPEER"
PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def free_port() -> int:
    """A TCP port nobody listens on now (the OS's choice, released at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _orthanc_binary() -> str | None:
    return shutil.which("Orthanc") or shutil.which("Orthanc", path="/usr/sbin:/usr/bin")


@dataclass(frozen=True)
class OrthancServer:
    """Where the test PACS answers, and the AE titles and ports it knows."""

    http_url: str
    dicom_port: int
    aet: str
    medview_aet: str
    medview_port: int
    dcmtk_aet: str
    dcmtk_port: int

    @property
    def dicomweb_url(self) -> str:
        return f"{self.http_url}/dicom-web"

    def rest(self, path: str, method: str = "GET", **kwargs):
        """Orthanc's own REST API (the independent view of what it holds)."""
        import requests

        r = requests.request(method, f"{self.http_url}{path}", timeout=30, **kwargs)
        r.raise_for_status()
        return r.json() if r.content else None

    def delete_study(self, study_uid: str) -> None:
        """Forget a study so a test starts from a PACS without it."""
        found = self.rest("/tools/lookup", "POST", data=study_uid)
        for item in found or []:
            if item.get("Type") == "Study":
                self.rest(f"/studies/{item['ID']}", "DELETE")


def _config(tmp: Path, http_port: int, dicom_port: int, medview_port: int,
            dcmtk_port: int) -> dict:
    return {
        "Name": "MedViewTestPACS",
        "StorageDirectory": str(tmp / "storage"),
        "IndexDirectory": str(tmp / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": ORTHANC_AET,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpServerEnabled": True,
        "DicomServerEnabled": True,
        "DicomCheckCalledAet": True,
        # only the configured modalities may associate: a stranger's AE is refused
        "DicomAlwaysAllowEcho": False,
        "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowGet": False,
        "DicomAlwaysAllowMove": False,
        "DicomCheckModalityHost": False,
        "DicomModalities": {
            "medview": [MEDVIEW_AET, "127.0.0.1", medview_port],
            "dcmtk": [DCMTK_AET, "127.0.0.1", dcmtk_port],
        },
        "DicomScpTimeout": 30,
        "StableAge": 1,
        "OverwriteInstances": True,
        "Plugins": [str(PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
    }


def _wait_until_up(proc: subprocess.Popen, url: str, log: Path, seconds: float = 60) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Orthanc exited with {proc.returncode}: "
                               f"{log.read_text(errors='replace')[-2000:]}")
        try:
            if requests.get(f"{url}/system", timeout=2).ok and \
                    requests.get(f"{url}/dicom-web/studies", timeout=5).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"Orthanc did not answer within {seconds:.0f} s: "
                       f"{log.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory) -> OrthancServer:
    binary = _orthanc_binary()
    if binary is None or not PLUGIN.exists():
        pytest.skip("Orthanc or its DICOMweb plugin is not installed (apt-get install orthanc "
                    "orthanc-dicomweb; scripts/test.sh does so when it may)")
    tmp = tmp_path_factory.mktemp("orthanc")
    http_port, dicom_port, medview_port, dcmtk_port = (free_port() for _ in range(4))
    cfg = tmp / "orthanc.json"
    cfg.write_text(json.dumps(_config(tmp, http_port, dicom_port, medview_port, dcmtk_port),
                              indent=1))
    log = tmp / "orthanc.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, str(cfg)], stdout=out, stderr=subprocess.STDOUT,
                                cwd=tmp)
    url = f"http://127.0.0.1:{http_port}"
    try:
        _wait_until_up(proc, url, log)
        yield OrthancServer(http_url=url, dicom_port=dicom_port, aet=ORTHANC_AET,
                            medview_aet=MEDVIEW_AET, medview_port=medview_port,
                            dcmtk_aet=DCMTK_AET, dcmtk_port=dcmtk_port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def dcmtk() -> Path:
    """The folder of dcmtk's tools (storescu, findscu, getscu), or skip."""
    found = shutil.which("getscu")
    if found is None or shutil.which("findscu") is None or shutil.which("storescu") is None:
        pytest.skip("dcmtk is not installed (apt-get install dcmtk)")
    return Path(found).parent
