"""pynetdicom and dicomweb-client log identifiers (patient names, IDs, UIDs) at INFO and
DEBUG. Their loggers stay at WARNING unless the reader turns network debugging on
(MEDVIEW_NET_DEBUG=1 or the setting), so nothing identifying reaches MedView's log by
default."""

from __future__ import annotations

import logging
import os

_LIBRARY_LOGGERS = ("pynetdicom", "dicomweb_client", "urllib3")


def network_debugging() -> bool:
    return os.environ.get("MEDVIEW_NET_DEBUG", "") not in ("", "0")


def quiet_network_loggers(debug: bool | None = None) -> None:
    """Set the libraries' loggers to WARNING, or DEBUG when network debugging is on. Called
    before every network operation, because importing pynetdicom attaches its own handler
    at INFO."""
    on = network_debugging() if debug is None else debug
    for name in _LIBRARY_LOGGERS:
        lg = logging.getLogger(name)
        lg.setLevel(logging.DEBUG if on else logging.WARNING)
        if not on:
            # pynetdicom adds a StreamHandler of its own; our root handler is enough
            for h in list(lg.handlers):
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                    lg.removeHandler(h)


def quiet_pynetdicom() -> None:
    """quiet_network_loggers, and pynetdicom's own logging work off unless network debugging
    is on: its standard handlers describe every PDU and DIMSE message, and it formats every
    C-FIND / C-GET / C-MOVE identifier, even when the logger then drops the lines. That
    work was more than half the time of listing 1,000 studies by C-FIND, and it hands
    patient data to the logging machinery. Read when an association starts."""
    from pynetdicom import _config

    on = network_debugging()
    quiet_network_loggers(on)
    _config.LOG_HANDLER_LEVEL = "standard" if on else "none"
    _config.LOG_REQUEST_IDENTIFIERS = _config.LOG_RESPONSE_IDENTIFIERS = on
