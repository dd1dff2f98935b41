"""DICOMweb with basic authentication against a real Orthanc that requires it: the password
from the OS keyring (a test backend here) or given for the session; a wrong one is one
sentence; the secret never reaches the node list or the log."""

from __future__ import annotations

import logging

import keyring
import pytest
from keyring.backend import KeyringBackend

from medview.net import credentials, web
from medview.net.errors import NetworkError
from medview.net.nodes import WebNode, save_nodes
from medview.net.query import StudyQuery
from tests.net.orthanc import PLUGIN, orthanc_binary, running_orthanc

pytestmark = pytest.mark.external


class MemoryKeyring(KeyringBackend):
    """A keyring that lives in this process, standing in for the OS's."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.items.get((service, username))

    def set_password(self, service, username, password):
        self.items[(service, username)] = password

    def delete_password(self, service, username):
        self.items.pop((service, username), None)


@pytest.fixture(scope="module")
def locked_orthanc(tmp_path_factory):
    if orthanc_binary() is None or not PLUGIN.exists():
        pytest.skip("Orthanc or its DICOMweb plugin is not installed")
    with running_orthanc(
        tmp_path_factory.mktemp("locked"),
        AuthenticationEnabled=True,
        RegisteredUsers={"reader": "right-horse-battery"},
    ) as server:
        yield server


@pytest.fixture
def memory_keyring():
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(previous)


def test_basic_auth_from_the_keyring(locked_orthanc, memory_keyring, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    node = WebNode(
        name="locked",
        url=locked_orthanc.dicomweb_url,
        auth="basic",
        username="reader",
        timeout_s=10,
    )
    with pytest.raises(NetworkError, match="needs a password and none is stored"):
        web.echo(node)
    assert credentials.store_secret("locked", "right-horse-battery")
    assert memory_keyring.items[("medview-pacs", "locked")] == "right-horse-battery"
    assert web.find_studies(node, StudyQuery()) == []  # in, and the PACS is empty
    save_nodes([node], tmp_path / "nodes.json")
    assert "right-horse" not in (tmp_path / "nodes.json").read_text()
    assert "right-horse" not in caplog.text
    with pytest.raises(
        NetworkError,
        match=r"refused our credentials for the test search "
        r"\(HTTP 401\)",
    ):
        web.echo(node, secret="wrong")


def test_without_a_keyring_nothing_is_stored(locked_orthanc, monkeypatch):
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        assert not credentials.keyring_available()
        assert credentials.store_secret("locked", "right-horse-battery") is False
        assert credentials.load_secret("locked") is None
        node = WebNode(
            name="locked",
            url=locked_orthanc.dicomweb_url,
            auth="basic",
            username="reader",
            timeout_s=10,
        )
        assert web.echo(node, secret="right-horse-battery") < 5  # asked, used, not kept
    finally:
        keyring.set_keyring(previous)
