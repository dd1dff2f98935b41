"""The test PACS (Debian's Orthanc with its DICOMweb plugin) as the network tests see it:
its configuration, how to start it and wait for it, and MedView's node for it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ORTHANC_AET = "ORTHANC"
MEDVIEW_AET = "MEDVIEW"
DCMTK_AET = "DCMTKPEER"
PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def free_port() -> int:
    """A TCP port nobody listens on now (the OS's choice, released at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def orthanc_binary() -> str | None:
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


def config(tmp: Path, http_port: int, dicom_port: int, medview_port: int, dcmtk_port: int) -> dict:
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


def wait_until_up(proc: subprocess.Popen, url: str, log: Path, seconds: float = 60) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"Orthanc exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}"
            )
        try:
            # 401: up, with authentication on
            if (
                requests.get(f"{url}/system", timeout=2).status_code in (200, 401)
                and requests.get(f"{url}/dicom-web/studies", timeout=5).status_code < 500
            ):
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"Orthanc did not answer within {seconds:.0f} s: {log.read_text(errors='replace')[-2000:]}"
    )


def dimse_node(server: OrthancServer, **kw):
    """MedView's view of the test PACS as a DIMSE node (tests and benchmarks/bench_pacs*)."""
    from medview.net.nodes import DimseNode

    args = {
        "name": "orthanc",
        "called_ae": server.aet,
        "host": "127.0.0.1",
        "port": server.dicom_port,
        "our_ae": server.medview_aet,
        "our_port": server.medview_port,
        "timeout_s": 10.0,
    } | kw
    return DimseNode(**args)


@contextmanager
def running_orthanc(tmp: Path, **overrides: object) -> Iterator[OrthancServer]:
    """Orthanc started on loopback with the test configuration in `tmp` (and `overrides` of
    its settings), stopped on leaving (the tests' fixture and benchmarks/bench_pacs.py)."""
    binary = orthanc_binary()
    if binary is None or not PLUGIN.exists():
        raise RuntimeError("Orthanc or its DICOMweb plugin is not installed")
    tmp.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port, medview_port, dcmtk_port = (free_port() for _ in range(4))
    cfg = tmp / "orthanc.json"
    cfg.write_text(
        json.dumps(
            config(tmp, http_port, dicom_port, medview_port, dcmtk_port) | overrides, indent=1
        )
    )
    log = tmp / "orthanc.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, str(cfg)], stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    url = f"http://127.0.0.1:{http_port}"
    try:
        wait_until_up(proc, url, log)
        yield OrthancServer(
            http_url=url,
            dicom_port=dicom_port,
            aet=ORTHANC_AET,
            medview_aet=MEDVIEW_AET,
            medview_port=medview_port,
            dcmtk_aet=DCMTK_AET,
            dcmtk_port=dcmtk_port,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
