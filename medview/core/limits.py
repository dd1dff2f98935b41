"""Resource limits applied before anything is allocated, so a hostile header that declares
tens of gigabytes is refused with a message instead of exhausting memory."""

from __future__ import annotations

import os

GIB = 1024**3


def physical_memory_bytes() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * GIB


def max_volume_bytes() -> int:
    """Largest single volume we agree to allocate: half the machine's memory, at most 16 GiB.
    MEDVIEW_MAX_VOLUME_BYTES overrides it (tests use it to exercise the refusal path)."""
    override = os.environ.get("MEDVIEW_MAX_VOLUME_BYTES")
    if override:
        return int(override)
    return min(physical_memory_bytes() // 2, 16 * GIB)


def format_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
