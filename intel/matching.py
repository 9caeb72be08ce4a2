"""The compiled matcher: one object answering "which lists contain these IPs / domains" for a batch.

IPv4: every list is merged into sorted, non-overlapping intervals; all lists together are cut into
elementary segments (the union of every interval boundary), each carrying a bit mask of the lists
covering it. A lookup is one `np.searchsorted` over the segment starts plus a gather of the masks.
The dotted-quad strings are converted to uint32 in bulk (one join + encode, then numpy), because
the conversion costs more than the search itself. IPv6 uses the same segments on Python ints with
`bisect` (IPv6 is rare in CloudTrail and flow logs). Domains: a dict name -> mask, probed for every
suffix of each distinct queried name.

The trusted list takes bit 63: a value whose mask carries it is never reported as a threat.
Contract: /work/notes/CONTRACTS.md (intel -> ingest).
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from intel.parsers import ParsedList, parse_file

TRUSTED_BIT = 1 << 63
MAX_SOURCES = 63
_U32_LIMIT = 1 << 32
_DEDUPE_SAMPLE = 2048
_TABLE_SHIFT = 12  # table over the top 20 bits: 1M int32 entries (4 MB) per matcher


@dataclass(frozen=True, slots=True)
class IndicatorHit:
    list_name: str
    source: str  # "custom" | "builtin"
    category: str
    threat_names: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------- one list


def _merge_np(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, non-overlapping, non-adjacent inclusive intervals (int64 in, int64 out)."""
    if len(starts) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    new = np.empty(len(s), bool)
    new[0] = True
    new[1:] = s[1:] > reach[:-1] + 1
    heads = np.flatnonzero(new)
    return s[heads], np.maximum.reduceat(e, heads)


def _merge_py(pairs: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(pairs):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


@dataclass(frozen=True)
class CompiledList:
    """One list, ready to combine: merged intervals and normalised names. Serialises to an .npz
    without pickles, so a stored blob can never execute code when loaded."""

    v4_start: np.ndarray  # int64, sorted, inclusive
    v4_end: np.ndarray
    v6: tuple[tuple[int, int], ...]
    domains: frozenset[str]
    wildcards: frozenset[str]

    @classmethod
    def from_parsed(cls, parsed: ParsedList) -> CompiledList:
        if parsed.ipv4:
            arr = np.array(parsed.ipv4, dtype=np.int64).reshape(-1, 2)
            s, e = _merge_np(arr[:, 0].copy(), arr[:, 1].copy())
        else:
            s, e = _merge_np(np.zeros(0, np.int64), np.zeros(0, np.int64))
        return cls(s, e, tuple(_merge_py(parsed.ipv6)), frozenset(parsed.domains), frozenset(parsed.wildcards))

    def to_bytes(self) -> bytes:
        v6 = np.array([x for pair in self.v6 for x in pair], dtype=object)
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            v4_start=self.v4_start.astype(np.uint32),
            v4_end=self.v4_end.astype(np.uint32),
            v6_hi=np.array([int(x) >> 64 for x in v6], dtype=np.uint64),
            v6_lo=np.array([int(x) & 0xFFFFFFFFFFFFFFFF for x in v6], dtype=np.uint64),
            domains=np.frombuffer("\n".join(sorted(self.domains)).encode(), dtype=np.uint8),
            wildcards=np.frombuffer("\n".join(sorted(self.wildcards)).encode(), dtype=np.uint8),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CompiledList:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            hi, lo = z["v6_hi"].tolist(), z["v6_lo"].tolist()
            v6 = [(h << 64) | v for h, v in zip(hi, lo, strict=True)]
            doms = z["domains"].tobytes().decode()
            wild = z["wildcards"].tobytes().decode()
            return cls(
                z["v4_start"].astype(np.int64),
                z["v4_end"].astype(np.int64),
                tuple(zip(v6[0::2], v6[1::2], strict=True)),
                frozenset(doms.split("\n")) if doms else frozenset(),
                frozenset(wild.split("\n")) if wild else frozenset(),
            )

    @property
    def size(self) -> int:
        return len(self.v4_start) + len(self.v6) + len(self.domains) + len(self.wildcards)


# ---------------------------------------------------------------------------------- conversion


def _distinct(values: Iterable) -> list:
    """Drop repeats before any per-item work. On large batches a sample decides: when the batch is
    mostly distinct, hashing every string costs more than converting the duplicates."""
    vals = values if isinstance(values, list) else list(values)
    if len(vals) > 4 * _DEDUPE_SAMPLE and len(set(vals[:_DEDUPE_SAMPLE])) > 0.7 * _DEDUPE_SAMPLE:
        return vals
    try:
        return list(dict.fromkeys(vals))
    except TypeError:  # unhashable junk
        return list(dict.fromkeys(v for v in vals if isinstance(v, str)))


_LEADING = np.array([0, 0, 10, 100], np.uint16)  # by token length; 1 digit may be "0"
_CHUNK = 16384  # small enough that every temporary array stays in cache (measured ~2x faster than one pass)


def ipv4_strings_to_u32(strs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Strict dotted quads -> (indices of the valid ones, their uint32 values). Leading zeros,
    spaces, ports and anything else make a value invalid (it is then not an IPv4 address).
    Raises TypeError for non-strings and ValueError for values containing a newline."""
    n = len(strs)
    if n <= _CHUNK:
        idx, val = _u32_chunk(strs)
        return (np.arange(n) if idx is None else idx), val
    values = np.empty(n, np.uint32)
    valid: np.ndarray | None = None  # None while every value so far was valid
    for start in range(0, n, _CHUNK):
        chunk = strs[start : start + _CHUNK]
        idx, val = _u32_chunk(chunk)
        if idx is None:
            values[start : start + len(chunk)] = val
            if valid is not None:
                valid[start : start + len(chunk)] = True
            continue
        if valid is None:
            valid = np.zeros(n, bool)
            valid[:start] = True
        valid[idx + start] = True
        values[idx + start] = val
    if valid is None:
        return np.arange(n), values
    idx = np.flatnonzero(valid)
    return idx, values[idx]


def _u32_chunk(strs: Sequence[str]) -> tuple[np.ndarray | None, np.ndarray]:
    """(indices of the valid values, or None when all are valid; their uint32 values)."""
    n = len(strs)
    if n == 0:
        return None, np.zeros(0, np.uint32)
    # One buffer for the whole chunk: "a.b.c.d\n" per value; dots and newlines end the tokens.
    buf = np.frombuffer(("\n".join(strs) + "\n").encode("utf-8", "surrogatepass"), np.uint8)
    is_nl = buf == 10
    sep_at = np.flatnonzero(is_nl | (buf == 46))
    digit = buf - np.uint8(48)  # wraps: anything but 0-9 becomes >= 10
    # Fast path: only digits and separators, 4n separators of which every fourth is a newline
    # (with exactly n newlines, that means three dots per value).
    if (
        len(sep_at) == 4 * n
        and np.count_nonzero(is_nl) == n
        and is_nl[sep_at[3::4]].all()
        and np.count_nonzero(digit >= 10) == 4 * n
    ):
        length = np.diff(sep_at, prepend=-1) - 1
        if length.min() < 1 or length.max() > 3:
            return _u32_chunk_checked(strs, buf, is_nl, sep_at, digit)
        value = _token_values(digit, sep_at, length)
        # A leading zero ("01") shows as a value below 10 ** (length - 1).
        if value.max() <= 255 and not (value < _LEADING[length]).any():
            # Four octets side by side are a big-endian uint32.
            return None, value.astype(np.uint8).view(">u4").astype(np.uint32)
    return _u32_chunk_checked(strs, buf, is_nl, sep_at, digit)


def _token_values(digit: np.ndarray, ends: np.ndarray, length: np.ndarray) -> np.ndarray:
    # Right-aligned digits; the separator before a 1-digit token is masked by length >= 2, etc.
    return (
        digit[ends - 1].astype(np.uint16)
        + digit[ends - 2].astype(np.uint16) * ((length >= 2) * np.uint16(10))
        + digit[ends - 3].astype(np.uint16) * ((length >= 3) * np.uint16(100))
    )


def _leading_zero(digit: np.ndarray, ends: np.ndarray, length: np.ndarray) -> np.ndarray:
    return (length >= 2) & (digit[ends - np.maximum(length, 1)] == 0)


def _u32_chunk_checked(
    strs: Sequence[str], buf: np.ndarray, is_nl: np.ndarray, sep_at: np.ndarray, digit: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """General path: find the well-formed values, convert those."""
    n = len(strs)
    line_ends = np.flatnonzero(is_nl[sep_at])  # index in sep_at of each value's newline
    if len(line_ends) != n:
        raise ValueError("a value contains a newline")
    ok = np.ones(n, bool)
    sep = np.zeros(len(buf), bool)
    sep[sep_at] = True
    bad_chars = np.flatnonzero((digit >= 10) & ~sep)
    if len(bad_chars):
        ok[np.searchsorted(sep_at[line_ends], bad_chars)] = False
    tokens = np.diff(line_ends, prepend=-1)
    ok &= tokens == 4
    keep = np.flatnonzero(np.repeat(ok, tokens))  # the 4 tokens of each well-formed value
    ends = sep_at[keep]
    if len(ends) == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.uint32)
    length = ends - np.concatenate(([-1], sep_at))[keep] - 1
    value = _token_values(digit, ends, length)
    good_tok = (length >= 1) & (length <= 3) & (value <= 255) & ~_leading_zero(digit, ends, length)
    good = good_tok.reshape(-1, 4).all(axis=1)
    v = value.reshape(-1, 4)[good].astype(np.uint32)
    u32 = (v[:, 0] << 24) | (v[:, 1] << 16) | (v[:, 2] << 8) | v[:, 3]
    return np.flatnonzero(ok)[good], u32


def _ipv4_batch(strs: list) -> tuple[list, np.ndarray, np.ndarray]:
    """(strings actually converted, valid indices, uint32 values), filtering values that cannot go
    through the bulk path (non-strings, embedded newlines)."""
    try:
        idx, u32 = ipv4_strings_to_u32(strs)
    except (TypeError, ValueError):
        strs = [v for v in strs if isinstance(v, str) and "\n" not in v]
        idx, u32 = ipv4_strings_to_u32(strs)
    return strs, idx, u32


# ---------------------------------------------------------------------------------- matcher


class CompiledMatcher:
    """Built-in feeds + threat lists + the trusted list, combined. Immutable once built."""

    def __init__(
        self,
        sources: Sequence[tuple[IndicatorHit, CompiledList]] = (),
        trusted: CompiledList | None = None,
        *,
        version: str = "",
        trusted_name: str = "",
    ) -> None:
        if len(sources) > MAX_SOURCES:
            raise ValueError(f"at most {MAX_SOURCES} lists can be combined")
        self.version = version or hashlib.sha256(repr([h for h, _ in sources]).encode()).hexdigest()[:16]
        self.trusted_name = trusted_name
        self.hits = tuple(h for h, _ in sources)
        parts = [(1 << bit, cl) for bit, (_, cl) in enumerate(sources)]
        if trusted is not None:
            parts.append((TRUSTED_BIT, trusted))
        self._build_v4(parts)
        self._build_v4_table()
        self._build_v6(parts)
        self._domains: dict[str, int] = {}
        self._wildcards: dict[str, int] = {}
        for bit, cl in parts:
            for name in cl.domains:
                self._domains[name] = self._domains.get(name, 0) | bit
            for name in cl.wildcards:
                self._wildcards[name] = self._wildcards.get(name, 0) | bit
        self._mask_hits: dict[int, tuple[IndicatorHit, ...]] = {}
        self.counts = {
            "ipv4_segments": len(self._v4_bounds),
            "ipv6_segments": len(self._v6_bounds),
            "domains": len(self._domains) + len(self._wildcards),
        }

    # -- build

    def _build_v4(self, parts: list[tuple[int, CompiledList]]) -> None:
        used = [(bit, cl) for bit, cl in parts if len(cl.v4_start)]
        if not used:
            self._v4_bounds = np.zeros(0, np.uint32)
            self._v4_masks = np.zeros(1, np.uint64)
            return
        bounds = np.unique(np.concatenate([x for _, cl in used for x in (cl.v4_start, cl.v4_end + 1)]))
        masks = np.zeros(len(bounds), np.uint64)
        for bit, cl in used:
            # Coverage of this list over the elementary segments, by a difference array: +1 where
            # one of its intervals starts, -1 where it ends (its intervals never overlap).
            opens = np.bincount(np.searchsorted(bounds, cl.v4_start), minlength=len(bounds) + 1)
            closes = np.bincount(np.searchsorted(bounds, cl.v4_end + 1), minlength=len(bounds) + 1)
            covered = np.cumsum(opens[: len(bounds)] - closes[: len(bounds)]) > 0
            masks[covered] |= np.uint64(bit)
        change = np.empty(len(bounds), bool)
        change[0] = True
        change[1:] = masks[1:] != masks[:-1]
        bounds, masks = bounds[change], masks[change]
        inside = bounds < _U32_LIMIT  # the boundary at 2**32 closes the last segment; nothing is above it
        self._v4_bounds = bounds[inside].astype(np.uint32)
        self._v4_masks = np.concatenate((np.zeros(1, np.uint64), masks[inside]))

    def _build_v6(self, parts: list[tuple[int, CompiledList]]) -> None:
        events: dict[int, list[int]] = {}
        for bit, cl in parts:
            for lo, hi in cl.v6:
                events.setdefault(lo, []).append(bit)
                events.setdefault(hi + 1, []).append(-bit)
        bounds: list[int] = []
        masks: list[int] = [0]
        current: dict[int, int] = {}
        for point in sorted(events):
            for delta in events[point]:
                bit = abs(delta)
                current[bit] = current.get(bit, 0) + (1 if delta > 0 else -1)
            mask = 0
            for bit, depth in current.items():
                if depth > 0:
                    mask |= bit
            if mask != masks[-1]:
                bounds.append(point)
                masks.append(mask)
        self._v6_bounds = bounds
        self._v6_masks = masks

    # -- masks -> hits

    def hits_for_mask(self, mask: int) -> tuple[IndicatorHit, ...]:
        hits = self._mask_hits.get(mask)
        if hits is None:
            hits = tuple(h for bit, h in enumerate(self.hits) if mask >> bit & 1)
            self._mask_hits[mask] = hits
        return hits

    def _build_v4_table(self) -> None:
        """Segments are mapped to a small "mask class" (index into the distinct masks, 0 = no list),
        and a direct table over the top 20 address bits holds the class of every /20 block without
        an internal boundary (a sentinel elsewhere). Random lookups then skip `searchsorted`, whose
        cache misses dominate, ~90 % of the time, and touch only small arrays otherwise."""
        distinct, classes = np.unique(self._v4_masks, return_inverse=True)  # distinct[0] == 0
        dtype = np.uint16 if len(distinct) < 0xFFFF else np.uint32
        self._mask_values = distinct
        self._v4_classes = classes.astype(dtype)
        self._sentinel = np.iinfo(dtype).max
        self._v4_table = None
        if len(self._v4_bounds) < 4096:  # small enough to stay in cache: search directly
            return
        starts = np.arange(1 << (32 - _TABLE_SHIFT), dtype=np.int64) << _TABLE_SHIFT
        bounds = self._v4_bounds.astype(np.int64)
        first = np.searchsorted(bounds, starts, side="right")
        last = np.searchsorted(bounds, starts + (1 << _TABLE_SHIFT) - 1, side="right")
        self._v4_table = np.where(first == last, self._v4_classes[first], self._sentinel).astype(dtype)

    def _ipv4_classes(self, u32: np.ndarray) -> np.ndarray:
        if self._v4_table is None:
            return self._v4_classes[np.searchsorted(self._v4_bounds, u32, side="right")]
        cls = self._v4_table[u32 >> _TABLE_SHIFT]
        need = np.flatnonzero(cls == self._sentinel)
        cls[need] = self._v4_classes[np.searchsorted(self._v4_bounds, u32[need], side="right")]
        return cls

    def ipv4_masks(self, u32: np.ndarray) -> np.ndarray:
        """Masks (uint64) for a uint32 array (for callers that already hold integer columns)."""
        return self._mask_values[self._ipv4_classes(u32)]

    def _v6_mask(self, value: int) -> int:
        return self._v6_masks[bisect_right(self._v6_bounds, value)]

    def _scalar_mask(self, text: str) -> int | None:
        """Slow path for what the bulk IPv4 converter refused: IPv6 (and IPv4-mapped IPv6)."""
        if ":" not in text:
            return None
        try:
            addr = ipaddress.IPv6Address(text.strip("[]"))
        except ValueError:
            return None
        mapped = addr.ipv4_mapped
        if mapped is not None:
            return int(self.ipv4_masks(np.array([int(mapped)], np.uint32))[0])
        return self._v6_mask(int(addr))

    def _ip_masks(self, values: Iterable) -> tuple[list[str], list[int]]:
        """Matched values and their masks (trusted included), IPv4 in bulk, the rest one by one."""
        strs, idx, u32 = _ipv4_batch(_distinct(values))
        classes = self._ipv4_classes(u32)
        matched = np.flatnonzero(classes)  # class 0 is "on no list"
        texts = [strs[i] for i in idx[matched].tolist()]
        found = self._mask_values[classes[matched]].tolist()
        if len(idx) < len(strs):
            rest = np.ones(len(strs), bool)
            rest[idx] = False
            for i in np.flatnonzero(rest).tolist():
                text = strs[i]
                if isinstance(text, str) and ":" in text:
                    mask = self._scalar_mask(text)
                    if mask:
                        texts.append(text)
                        found.append(mask)
        return texts, found

    # -- the contract

    def classify_ips(self, values: Iterable) -> tuple[dict[str, tuple[IndicatorHit, ...]], set[str]]:
        """(lookup_ips, trusted_ips) of the same values, converting each address once."""
        texts, masks = self._ip_masks(values)
        table = {m: self.hits_for_mask(m) for m in set(masks) if not m & TRUSTED_BIT}
        hits = {text: table[m] for text, m in zip(texts, masks, strict=True) if m in table}
        return hits, {text for text, m in zip(texts, masks, strict=True) if m & TRUSTED_BIT}

    def lookup_ips(self, values: Iterable) -> dict[str, tuple[IndicatorHit, ...]]:
        """Matched values only -> hits. Trusted IPs never appear."""
        return self.classify_ips(values)[0]

    def trusted_ips(self, values: Iterable) -> set[str]:
        return self.classify_ips(values)[1]

    def _domain_mask(self, value: str) -> int:
        name = value.strip().rstrip(".").lower()
        domains, wildcards = self._domains, self._wildcards
        mask = domains.get(name, 0)
        dot = name.find(".")
        while dot != -1:
            suffix = name[dot + 1 :]
            mask |= domains.get(suffix, 0) | wildcards.get(suffix, 0)
            dot = name.find(".", dot + 1)
        return mask

    def lookup_domains(self, values: Iterable) -> dict[str, tuple[IndicatorHit, ...]]:
        """Names match themselves and their subdomains; case-insensitive; trailing dot ignored."""
        out: dict[str, tuple[IndicatorHit, ...]] = {}
        if not self._domains and not self._wildcards:
            return out
        for value in _distinct(values):
            if not isinstance(value, str) or not value:
                continue
            mask = self._domain_mask(value)
            if mask and not mask & TRUSTED_BIT:
                out[value] = self.hits_for_mask(mask)
        return out

    def trusted_domains(self, values: Iterable) -> set[str]:
        return {v for v in _distinct(values) if isinstance(v, str) and v and self._domain_mask(v) & TRUSTED_BIT}

    def check(self, value: str) -> tuple[tuple[IndicatorHit, ...], bool]:
        """One indicator for the console's check box: (threat hits, on the trusted list). Unlike
        lookup_*, hits are returned even when the value is trusted, so the page can show both."""
        value = (value or "").strip()
        strs, idx, u32 = _ipv4_batch([value])
        if len(idx):
            mask = int(self.ipv4_masks(u32)[0])
        else:
            mask = self._scalar_mask(value)
            if mask is None:
                if "/" in value or not value:
                    return (), False
                mask = self._domain_mask(value)
        return self.hits_for_mask(mask & ~TRUSTED_BIT), bool(mask & TRUSTED_BIT)


# ---------------------------------------------------------------------------------- factories


def compile_parsed(parsed: ParsedList) -> CompiledList:
    return CompiledList.from_parsed(parsed)


def custom_hit(name: str) -> IndicatorHit:
    return IndicatorHit(list_name=name, source="custom", category="custom")


def matcher_from_files(
    *,
    threat_lists: Iterable[tuple[str, str, str]] = (),
    trusted_list: tuple[str, str, str] | None = None,
    include_builtin: bool = True,
) -> CompiledMatcher:
    """threat_lists: (name, path, format) triples; trusted_list: one triple or None."""
    sources: list[tuple[IndicatorHit, CompiledList]] = []
    digest = hashlib.sha256()
    for name, path, fmt in threat_lists:
        sources.append((custom_hit(name), compile_parsed(parse_file(path, fmt))))
        digest.update(f"{name}\0{path}\0{fmt}\0".encode())
    trusted = None
    trusted_name = ""
    if trusted_list is not None:
        trusted_name, path, fmt = trusted_list
        trusted = compile_parsed(parse_file(path, fmt))
        digest.update(f"trusted\0{trusted_name}\0{path}\0".encode())
    if include_builtin:
        from intel.builtin import builtin_sources, builtin_version

        sources.extend(builtin_sources())
        digest.update(builtin_version().encode())
    return CompiledMatcher(sources, trusted, version=digest.hexdigest()[:16], trusted_name=trusted_name)


def matcher_for(*, account_id: int, region: str) -> CompiledMatcher:
    """The matcher for an account (accounts.Account pk) in a region; see intel.services."""
    from intel.services import matcher_for as _matcher_for

    return _matcher_for(account_id=account_id, region=region)


__all__ = [
    "CompiledList",
    "CompiledMatcher",
    "IndicatorHit",
    "compile_parsed",
    "ipv4_strings_to_u32",
    "matcher_for",
    "matcher_from_files",
]
