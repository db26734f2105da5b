"""Process-wide memory policy of ``sst predict`` (one recording of any length, block by block).

glibc's allocator serves blocks above its mmap threshold (128 KiB) with their own mappings,
returned to the system when freed, but it raises that threshold (up to 32 MiB) each time such a
block is freed. After the first block of a recording the buffers of every later block then
come from the heap, where blocks of slightly different sizes fragment it: the peak memory of
``sst predict`` crept up by about 0.15 MB per second of audio (a one-hour recording would have
needed half a gigabyte more). Fixing the threshold keeps it flat (+1.6 MB from 20 s to 280 s)
at about 20 % more CPU for the page faults of fresh mappings (17.4 -> 20.8 s for 280 s with the
torch checkpoint). Not for training or ``sst evaluate`` (short clips): there, the same policy
would map and unmap every large tensor, step after step, for no memory gain.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["MMAP_THRESHOLD_BYTES", "fix_mmap_threshold"]

MMAP_THRESHOLD_BYTES = 128 * 1024
"""glibc's default mmap threshold, kept fixed (no dynamic raise)."""

_M_MMAP_THRESHOLD = -3  # mallopt parameter number (malloc.h)

log = logging.getLogger(__name__)


def fix_mmap_threshold(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold for this process (``mallopt(M_MMAP_THRESHOLD, ...)``).

    Returns:
        True when set; False where the C library is not glibc (nothing changes, logged at debug level).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold_bytes)))
    except (OSError, AttributeError, TypeError) as err:  # not glibc (musl, macOS): no mallopt
        log.debug("mallopt unavailable (%s): the allocator keeps its own policy", err)
        return False
    return ok
