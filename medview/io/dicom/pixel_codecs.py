"""Which decoder to use per transfer syntax, picked by speed measured here (docs/development.md):
RLE with pylibjpeg-rle (1.5 ms a 512² slice vs 4.6 pydicom's own, 17.9 SimpleITK), JPEG-LS
with pyjpegls (6.2 vs 24 ms pylibjpeg). Anything else uses pydicom's default order."""

from __future__ import annotations

from functools import lru_cache

from pydicom.uid import UID, JPEGLSLossless, JPEGLSNearLossless, RLELossless

PREFERRED_PLUGIN = {
    RLELossless: "pylibjpeg",
    JPEGLSLossless: "pyjpegls",
    JPEGLSNearLossless: "pyjpegls",
}


@lru_cache(maxsize=64)
def plugin_for(transfer_syntax_uid: str) -> str:
    """The decoding plugin name to pass to pydicom, or "" for pydicom's own choice."""
    from pydicom.pixels.decoders.base import get_decoder

    preferred = PREFERRED_PLUGIN.get(UID(transfer_syntax_uid))
    if preferred is None:
        return ""
    try:
        available = get_decoder(UID(transfer_syntax_uid)).available_plugins
    except (NotImplementedError, ValueError):
        return ""
    return preferred if preferred in available else ""


@lru_cache(maxsize=64)
def decodable(transfer_syntax_uid: str) -> bool:
    """Whether the installed codecs can decode pixel data in this transfer syntax."""
    from pydicom.pixels.decoders.base import get_decoder

    uid = UID(transfer_syntax_uid)
    if not uid.is_transfer_syntax:
        return False
    if not uid.is_compressed:
        return True
    try:
        return bool(get_decoder(uid).is_available)
    except (NotImplementedError, ValueError):
        return False
