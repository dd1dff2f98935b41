"""Remote nodes: a DIMSE peer (called AE title, host, port, our AE title and the port of our
storage SCP for C-MOVE) or a DICOMweb server (base URL, authentication, TLS). Saved in
<data>/pacs/nodes.json without secrets (those go to the keyring: net.credentials).

A node on the command line is a saved name, `dicom://AE@host:port` or an http(s) URL."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from medview.core.errors import InvalidInputError
from medview.io import saved
from medview.io.workspace import (
    StoreFileProblem,
    atomic_write_text,
    keep_aside,
    read_store_file,
)

FORMAT = "medview-pacs-nodes"
VERSION = 1
DEFAULT_OUR_AE = "MEDVIEW"
DEFAULT_OUR_PORT = 11112
AUTH_KINDS = ("none", "basic", "bearer")
_AE_OK = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # printable ASCII without backslash


def pacs_dir() -> Path:
    """<data>/pacs: nodes.json, studies.sqlite and received/ (files stored by UID)."""
    return saved.pacs_dir()


def nodes_file() -> Path:
    return pacs_dir() / "nodes.json"


def check_ae_title(title: str, what: str) -> str:
    """An AE title as DICOM allows it (1-16 printable characters, no backslash, not only
    spaces), stripped; otherwise one sentence."""
    if not isinstance(title, str) or not _AE_OK.match(title) or not title.strip():
        raise InvalidInputError(
            None,
            f"{what} {title!r} is not a valid AE title (1 to 16 "
            f"printable characters, no backslash)",
        )
    return title.strip()


def check_port(port: object, what: str) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidInputError(None, f"{what} {port!r} is not a port number (1 to 65535)")
    return port


@dataclass(frozen=True)
class DimseNode:
    """A PACS or modality spoken to by DIMSE (C-ECHO, C-FIND, C-MOVE, C-GET, C-STORE)."""

    name: str
    called_ae: str
    host: str
    port: int
    our_ae: str = DEFAULT_OUR_AE
    our_port: int = DEFAULT_OUR_PORT  # our storage SCP, where C-MOVE sends the files
    retrieve: str = "get"  # "get" or "move": how studies come from this node
    timeout_s: float = 30.0
    kind: str = field(default="dimse", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "called_ae", check_ae_title(self.called_ae, "the called AE"))
        object.__setattr__(self, "our_ae", check_ae_title(self.our_ae, "our AE title"))
        check_port(self.port, "the port")
        check_port(self.our_port, "our storage port")
        if not self.host:
            raise InvalidInputError(None, "the node has no host name")
        if self.retrieve not in ("get", "move"):
            raise InvalidInputError(None, f"retrieve must be get or move, not {self.retrieve!r}")

    @property
    def address(self) -> str:
        return f"dicom://{self.called_ae}@{self.host}:{self.port}"


@dataclass(frozen=True)
class WebNode:
    """A DICOMweb server (QIDO-RS, WADO-RS, STOW-RS). TLS is verified with the system's
    certificates, or `ca_file` when one is chosen; `verify_tls=False` only by explicit
    setting, and every place that shows the node warns about it."""

    name: str
    url: str
    auth: str = "none"  # none | basic | bearer; the password or token is in the keyring
    username: str = ""
    ca_file: str = ""
    verify_tls: bool = True
    timeout_s: float = 30.0
    kind: str = field(default="dicomweb", init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInputError(None, f"{self.url!r} is not an http(s) URL")
        if self.auth not in AUTH_KINDS:
            raise InvalidInputError(
                None, f"authentication must be none, basic or bearer, not {self.auth!r}"
            )
        object.__setattr__(self, "url", self.url.rstrip("/"))

    @property
    def address(self) -> str:
        return self.url

    @property
    def insecure(self) -> bool:
        """TLS without verification: shown as a warning wherever the node appears."""
        return self.url.startswith("https:") and not self.verify_tls


Node = DimseNode | WebNode


def parse_address(
    text: str, *, our_ae: str = DEFAULT_OUR_AE, our_port: int = DEFAULT_OUR_PORT
) -> Node | None:
    """A node from `dicom://AE@host:port` or an http(s) URL; None when `text` is neither
    (then it may be a saved node's name). A malformed address is one sentence."""
    if text.startswith("dicom://"):
        parts = urlsplit(text)
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.username or not parts.hostname or port is None:
            raise InvalidInputError(None, f"{text}: write a DIMSE node as dicom://AE@host:port")
        return DimseNode(
            name=text,
            called_ae=unquote(parts.username),
            host=parts.hostname,
            port=port,
            our_ae=our_ae,
            our_port=our_port,
        )
    if text.startswith(("http://", "https://")):
        return WebNode(name=text, url=text)
    return None


def _node_from_dict(entry: dict) -> Node:
    kind = entry.pop("kind", None)
    if kind == "dimse":
        return DimseNode(**entry)
    if kind == "dicomweb":
        return WebNode(**entry)
    raise InvalidInputError(None, f"node kind {kind!r} is unknown")


def load_nodes(path: Path | None = None) -> list[Node]:
    """The saved nodes; none when there is no file. A damaged file is set aside (one
    sentence in the log) and an empty list returned, so the reader can add nodes again."""
    path = path or nodes_file()
    try:
        doc = read_store_file(path, FORMAT, VERSION, "PACS nodes")
    except StoreFileProblem as problem:
        if problem.damaged:
            keep_aside(path, move=True)
        raise InvalidInputError(
            str(path), f"the PACS node list cannot be used: {problem.reason}"
        ) from None
    if doc is None:
        return []
    nodes = []
    for entry in doc.get("nodes", []):
        try:
            nodes.append(_node_from_dict(dict(entry)))
        except (InvalidInputError, TypeError) as err:
            raise InvalidInputError(str(path), f"a node in the list is not valid: {err}") from None
    return nodes


def save_nodes(nodes: list[Node], path: Path | None = None) -> None:
    """Write the node list (never a secret: those are in the keyring)."""
    import json

    path = path or nodes_file()
    doc = {"format": FORMAT, "version": VERSION, "nodes": [asdict(n) for n in nodes]}
    atomic_write_text(path, json.dumps(doc, indent=1))


def resolve_node(text: str, nodes: list[Node] | None = None) -> Node:
    """A node named on the command line: an address, or a saved node's name."""
    node = parse_address(text)
    if node is not None:
        return node
    nodes = load_nodes() if nodes is None else nodes
    for n in nodes:
        if n.name == text:
            return n
    known = ", ".join(n.name for n in nodes) or "none saved yet"
    raise InvalidInputError(
        None,
        f"{text}: no such PACS node (saved nodes: {known}); give "
        f"dicom://AE@host:port or an https:// DICOMweb URL",
    )
