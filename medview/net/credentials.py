"""Passwords and tokens of DICOMweb nodes live in the OS keyring (`keyring`), never in a
settings file or the log. Without a usable keyring backend nothing is stored: the caller asks
the reader each time (the CLI reads MEDVIEW_PACS_SECRET or prompts)."""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys

from medview.core.errors import MedviewError

log = logging.getLogger(__name__)

SERVICE = "medview-pacs"

# The keyring backend of each system (its entry-point name) and the modules it needs beyond
# keyring; a frozen bundle that lacks them starts, and then keeps no secret.
PLATFORM_BACKENDS = {
    "win32": ("Windows", ("win32ctypes.pywin32.win32cred",)),
    "darwin": ("macOS", ("keyring.backends.macOS.api",)),
    "other": ("SecretService", ("secretstorage", "jeepney")),  # Linux and the BSDs: D-Bus
}


def _backend_usable() -> bool:
    try:
        import keyring
        from keyring.backends import fail

        return not isinstance(keyring.get_keyring(), fail.Keyring)
    except Exception:  # keyring raises many kinds of errors for a broken backend
        return False


def installed_backend() -> str:
    """The name of this system's keyring backend when it and what it needs are installed
    (found through keyring's entry points, as keyring finds it); otherwise a MedviewError
    saying what is missing. Whether a keyring service runs is another matter
    (keyring_available)."""
    from importlib.metadata import entry_points

    name, needs = PLATFORM_BACKENDS.get(sys.platform, PLATFORM_BACKENDS["other"])
    found = {ep.name: ep.value for ep in entry_points(group="keyring.backends")}
    if name not in found:
        raise MedviewError(
            None,
            f"keyring's {name} backend is not installed (no 'keyring.backends' entry point "
            f"of that name): passwords of PACS nodes could not be kept",
        )
    for module in (found[name], *needs):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise MedviewError(
                None,
                f"keyring's {name} backend cannot load {module} ({exc}): passwords of PACS "
                f"nodes could not be kept",
            ) from None
    return name


def keyring_available() -> bool:
    """Whether a secret can be kept between runs on this machine."""
    return _backend_usable()


def store_secret(node_name: str, secret: str) -> bool:
    """Keep a node's password or token; False (nothing stored) when there is no keyring."""
    if not _backend_usable():
        return False
    import keyring

    try:
        keyring.set_password(SERVICE, node_name, secret)
    except Exception as exc:
        log.warning("the keyring refused to store a secret (%s)", type(exc).__name__)
        return False
    return True


def load_secret(node_name: str) -> str | None:
    """A node's stored password or token, or None (none stored, or no keyring)."""
    if not _backend_usable():
        return None
    import keyring

    try:
        return keyring.get_password(SERVICE, node_name)
    except Exception as exc:
        log.warning("the keyring could not be read (%s)", type(exc).__name__)
        return None


def forget_secret(node_name: str) -> None:
    if not _backend_usable():
        return
    import keyring

    with contextlib.suppress(Exception):  # nothing stored is fine
        keyring.delete_password(SERVICE, node_name)
