"""glibc malloc settings for processes that ingest logs.

A batch's text (up to 48 MB of uncompressed JSON or CSV, ingest.parsers.CHUNK_BYTES joined with
its tail) is larger than glibc's largest mmap threshold (32 MB), so by default every such buffer
is a fresh mmap: the kernel faults in and zeroes each of its pages on first touch, and unmaps them
on free, batch after batch. Measured on the bench's data (2-vCPU VM): ~43,000 page faults per
100,000 DNS queries and ~18,000 per 200,000 flow records, a fifth of DNS ingest's CPU. Serving
every allocation from the heap, and keeping freed memory there for the next batch, removes most
of them (~10,000 and ~8,000 left, from DuckDB's and polars' own allocators).

The cost: a worker's resident memory stays at its peak instead of shrinking between objects (the
peak itself is unchanged: objects are still streamed in bounded batches).
"""

from __future__ import annotations

import ctypes
import logging
import sys

logger = logging.getLogger(__name__)

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
# Free memory at the top of the heap beyond this goes back to the kernel.
TRIM_THRESHOLD_BYTES = 1024**3

_applied = False


def reuse_freed_memory() -> bool:
    """Serve large allocations from the heap and keep freed memory for reuse (glibc only); True when
    applied. Idempotent; settings are per process and survive fork (Celery's pool processes)."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl's mallopt is a no-op returning 0)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    if not (mallopt(M_MMAP_MAX, 0) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)):
        logger.info("malloc tuning not applied: this C library's mallopt refused it")
        return False
    _applied = True
    return True


def reuse_freed_memory_if_configured() -> bool:
    """reuse_freed_memory() unless settings.VIGIL_INGEST_REUSE_FREED_MEMORY is false: Celery workers
    and `analyze`, where Django is set up. (The bench applies it before choosing its database, from
    the environment variable the setting is read from.)"""
    from django.conf import settings

    return settings.VIGIL_INGEST_REUSE_FREED_MEMORY and reuse_freed_memory()
