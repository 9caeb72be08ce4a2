"""Log parsers: gzip'd (or plain) S3 objects in, columnar polars frames out, in bounded batches.

Each parser streams: it decompresses in chunks, cuts at record boundaries and yields one frame per
batch, so a 50 MB gzip'd object never needs its whole uncompressed text (or frame) in memory.
Malformed records are counted and skipped, with a few kept as samples; an unreadable object (bad
gzip, not the expected format at all) raises `UnreadableObject` with the reason.

Two limits keep a hostile object (a decompression bomb, a 10 GB line) from exhausting memory:
VIGIL_INGEST_MAX_OBJECT_BYTES caps the decompressed size of one object, and
VIGIL_INGEST_MAX_BUFFER_BYTES caps what is held whole at once (one line, one CloudTrail record, or
a CloudTrail object that is not in AWS's streamable layout). Past either, the object is unreadable.
"""

from __future__ import annotations

import gc
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO

import polars as pl
from isal import igzip, igzip_lib

CHUNK_BYTES = 32 * 1024 * 1024
MAX_OBJECT_BYTES = 2 * 1024**3
MAX_BUFFER_BYTES = 256 * 1024**2
MALFORMED_SAMPLES = 5
SAMPLE_CHARS = 500


class UnreadableObject(Exception):
    """The object as a whole cannot be read (bad gzip, wrong format); `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ParseStats:
    records: int = 0
    malformed: int = 0
    malformed_samples: list[str] = field(default_factory=list)
    bytes_uncompressed: int = 0

    def bad(self, sample: bytes | str, count: int = 1) -> None:
        self.malformed += count
        if len(self.malformed_samples) < MALFORMED_SAMPLES:
            text = sample.decode("utf-8", "replace") if isinstance(sample, bytes) else sample
            # Samples are stored (jsonb): no NUL, as in scrub_nul.
            self.malformed_samples.append(text[:SAMPLE_CHARS].replace("\x00", "\ufffd"))


# How a NUL character can appear in a batch's text: escaped in JSON (a raw control character is
# invalid JSON), as the byte itself in flow logs. A backslash-escaped "\\u0000" also matches: a
# harmless extra scrub.
JSON_NUL = b"\\u0000"
RAW_NUL = b"\x00"


def has_json_nul(text: bytes) -> bool:
    """Whether `text` has an escaped NUL. Most batches have no backslash at all (one memchr); the
    rest are searched backwards, where the pattern's rare first character lets the search skip
    (a forward `in` keys on its last character, "0", which CloudTrail's ids and times are full
    of: 3x slower, 6 % of CloudTrail ingest)."""
    return b"\\" in text and text.rfind(JSON_NUL) >= 0


def scrub_nul(frame: pl.DataFrame) -> pl.DataFrame:
    """PostgreSQL text and jsonb cannot hold NUL: one escaped \u0000 in a log field would fail the
    whole object's transaction. Replace it (U+FFFD) in every text column before anything is stored.
    Parsers call it only for a batch whose text has a NUL (a memchr over the bytes, where scanning
    every string of every frame cost 3-5 % of the ingest time)."""
    return frame.with_columns(pl.col(pl.String).str.replace_all("\x00", "\ufffd", literal=True))


@contextmanager
def opened(open_stream: Callable[[], IO[bytes]]) -> Iterator[IO[bytes]]:
    """The stream `open_stream` returns, closed afterwards (a file, an S3 body, or anything with or
    without a close)."""
    stream = open_stream()
    try:
        yield stream
    finally:
        close = getattr(stream, "close", None)
        if close:
            close()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Decoding allocates millions of short-lived objects: the cyclic GC would rescan them all
    (up to 2x the parse time, limits.md), and none of them form cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _setting(name: str, default: int) -> int:
    """A Django setting when Django is configured (workers, manage.py), else the default."""
    try:
        from django.conf import settings

        return int(getattr(settings, name, default))
    except Exception:  # parsers also run without Django (bench, scripts)
        return default


def max_object_bytes() -> int:
    return _setting("VIGIL_INGEST_MAX_OBJECT_BYTES", MAX_OBJECT_BYTES)


def max_buffer_bytes() -> int:
    return _setting("VIGIL_INGEST_MAX_BUFFER_BYTES", MAX_BUFFER_BYTES)


def check_buffer(size: int, what: str) -> None:
    limit = max_buffer_bytes()
    if size > limit:
        raise UnreadableObject(f"{what} is longer than {limit:,} bytes (VIGIL_INGEST_MAX_BUFFER_BYTES)")


def read_chunks(stream: IO[bytes], chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Uncompressed chunks of a gzip'd or plain stream; bad gzip, or more than the object limit
    after decompression (a bomb), becomes UnreadableObject."""
    limit = max_object_bytes()
    total = 0
    head = stream.read(2)
    if head == b"\x1f\x8b":
        reader: IO[bytes] = igzip.IGzipFile(fileobj=_Prefixed(head, stream), mode="rb")
    else:
        reader = _Prefixed(head, stream)
    try:
        while True:
            chunk = reader.read(min(chunk_bytes, limit + 1 - total))
            if not chunk:
                return
            total += len(chunk)
            if total > limit:
                raise UnreadableObject(f"decompresses to more than {limit:,} bytes (VIGIL_INGEST_MAX_OBJECT_BYTES); "
                                       "refused as a possible decompression bomb")
            yield chunk
    except (ConnectionError, TimeoutError):
        raise  # the network, not the object: the task's transient-error retry handles it
    except (OSError, EOFError, zlib.error, igzip.BadGzipFile, igzip_lib.IsalError) as exc:
        raise UnreadableObject(f"cannot decompress: {exc}") from exc


class _Prefixed:
    """A read-only stream that first returns bytes already consumed (for the magic-number sniff)."""

    def __init__(self, prefix: bytes, stream: IO[bytes]) -> None:
        self._prefix, self._stream = prefix, stream

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            if size is None or size < 0:
                data, self._prefix = self._prefix + self._stream.read(), b""
                return data
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            if len(data) < size:
                data += self._stream.read(size - len(data))
            return data
        return self._stream.read(size)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True


def cut_at_last(chunks: Iterable[bytes], sep: bytes, what: str, *, keep: int,
                drop: int) -> Generator[bytes, None, bytes]:
    """Yields pieces of the concatenated chunks, each ending at the last `sep` seen so far; returns
    what follows the last separator.

    A cut at offset i yields buffer[:i + keep] and holds buffer[i + drop:]. Each piece is copied
    once: the held bytes joined with the chunk's head up to its last separator (a separator straddling
    two chunks can only be the last one when the newer chunk has none). What is held between
    separators grows in place (a bytearray, searched only where new bytes arrived), so an endless
    record costs the buffer limit once, not a copy per chunk."""
    pending = bytearray()
    for chunk in chunks:
        cut = chunk.rfind(sep)
        if cut >= 0:
            yield b"".join((pending, memoryview(chunk)[:cut + keep])) if pending else chunk[:cut + keep]
            pending = bytearray(memoryview(chunk)[cut + drop:])
            check_buffer(len(pending), what)  # what follows the last separator is one unfinished record
            continue
        search_from = max(len(pending) - len(sep) + 1, 0)
        pending += chunk
        cut = pending.rfind(sep, search_from)
        if cut < 0:
            check_buffer(len(pending), what)
            continue
        yield bytes(memoryview(pending)[:cut + keep])
        del pending[:cut + drop]
    return bytes(pending)


def counted(chunks: Iterable[bytes], stats: ParseStats) -> Iterator[bytes]:
    for chunk in chunks:
        stats.bytes_uncompressed += len(chunk)
        yield chunk


def tail_joined(chunks: Iterable[bytes], chunk_bytes: int) -> Iterator[bytes]:
    """The chunks, the last one joined onto the one before it when it is under half of `chunk_bytes`
    (reads are full until the stream ends, so a short one is the end): every batch costs the rules
    and models a fixed amount, and an object a little over one batch would pay it twice for a sliver
    (a 40 MB DNS object: 32 MB + 8 MB). It reads one chunk ahead: two chunks are held while the
    next is judged."""
    held = None
    for chunk in chunks:
        if held is None:
            held = chunk
        elif len(chunk) < chunk_bytes // 2:
            held = b"".join((held, chunk))
        else:
            yield held
            held = chunk
    if held is not None:
        yield held


def line_batches(stream: IO[bytes], stats: ParseStats, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Uncompressed text cut at line ends, about `chunk_bytes` at a time (up to 1.5 times that for
    an object's last batch: tail_joined)."""
    chunks = tail_joined(counted(read_chunks(stream, chunk_bytes), stats), chunk_bytes)
    rest = yield from cut_at_last(chunks, b"\n", "a line", keep=1, drop=1)
    if rest.strip():
        yield rest
