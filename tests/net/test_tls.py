"""TLS: verified by default (a self-signed server is refused in one sentence), trusted when
its CA file is chosen, and reached unverified only by the explicit setting, which marks the
node insecure."""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import threading
import time

import pytest

from medview.net import web
from medview.net.errors import NetworkError
from medview.net.nodes import WebNode

pytestmark = pytest.mark.external


class EmptyQido(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/dicom+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EmptyQido)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_port}/dicom-web", cert
    server.shutdown()
    thread.join()


def test_tls_verified_by_default_trusted_by_ca_unverified_only_when_asked(https_server):
    url, cert = https_server
    node = WebNode(name="tls", url=url, timeout_s=5)
    assert not node.insecure
    started = time.monotonic()
    with pytest.raises(NetworkError, match="its TLS certificate could not be verified"):
        web.echo(node)
    assert time.monotonic() - started < 6  # not half a minute of retries
    assert web.echo(WebNode(name="tls", url=url, ca_file=str(cert), timeout_s=5)) < 5
    unverified = WebNode(name="tls", url=url, verify_tls=False, timeout_s=5)
    assert unverified.insecure
    assert web.echo(unverified) < 5
