"""Parsers for the six list formats GuardDuty accepts (TXT, STIX, OTX_CSV, ALIEN_VAULT, PROOF_POINT,
FIRE_EYE), extended to IPv6 and domains in every format.

Pure Python, no Django: the offline `analyze` command and the Celery activation task share it.
Forgiving by design: a bad line is recorded (line number + reason) and skipped; only a file that is
not the declared format at all (or not text) is refused as a whole with `ListFormatError`.
"""

from __future__ import annotations

import csv
import gzip
import io
import ipaddress
import json
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

FORMATS = ("TXT", "STIX", "OTX_CSV", "ALIEN_VAULT", "PROOF_POINT", "FIRE_EYE")
MAX_FILE_BYTES = 35 * 1024 * 1024  # GuardDuty's per-file limit
MAX_REJECTED_KEPT = 100
MAX_TEXT_KEPT = 200

_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_LOOKS_NUMERIC = re.compile(r"^[0-9.]+$")
_ALIEN_VAULT_LINE = re.compile(r"^[^#\s]+#\d+#\d+#")  # value#reliability#risk#...
_INET_PTON = socket.inet_pton
_AF_INET = socket.AF_INET


class ListFormatError(ValueError):
    """The whole file is refused: not the declared format, not text, or too large."""


class EntryError(ValueError):
    """One entry is not an IP address, CIDR or domain name; the message is the reason shown."""


@dataclass(frozen=True, slots=True)
class RejectedLine:
    line: int  # 1-based line number (for STIX: the position of the indicator/observable)
    reason: str
    text: str = ""


@dataclass
class ParsedList:
    """Everything a list contributes to matching, plus what was refused."""

    format: str
    ipv4: list[tuple[int, int]] = field(default_factory=list)  # inclusive [start, end] integer ranges
    ipv6: list[tuple[int, int]] = field(default_factory=list)
    domains: set[str] = field(default_factory=set)  # match the name and every subdomain
    wildcards: set[str] = field(default_factory=set)  # "*.example.org": subdomains only
    counts: dict[str, int] = field(default_factory=lambda: {"ip": 0, "cidr": 0, "domain": 0, "ipv6": 0})
    rejected: list[RejectedLine] = field(default_factory=list)
    rejected_total: int = 0
    ignored_total: int = 0  # valid records that carry no IP or domain (e.g. STIX file-hash indicators)

    @property
    def entries(self) -> int:
        return self.counts["ip"] + self.counts["cidr"] + self.counts["domain"]

    def reject(self, line: int, reason: str, text: str = "") -> None:
        self.rejected_total += 1
        if len(self.rejected) < MAX_REJECTED_KEPT:
            self.rejected.append(RejectedLine(line, reason, text[:MAX_TEXT_KEPT]))

    def add(self, value: str, line: int, *, text: str | None = None) -> bool:
        """Classify one value and add it; a bad value is recorded as rejected. Returns success."""
        try:
            self.add_value(value)
        except EntryError as exc:
            self.reject(line, str(exc), value if text is None else text)
            return False
        return True

    def add_value(self, value: str) -> None:
        kind, family, payload = classify(value)
        if kind == "domain":
            if payload.startswith("*."):
                self.wildcards.add(payload[2:])
            else:
                self.domains.add(payload)
            self.counts["domain"] += 1
            return
        (self.ipv4 if family == 4 else self.ipv6).append(payload)
        self.counts[kind] += 1
        if family == 6:
            self.counts["ipv6"] += 1


# ---------------------------------------------------------------------------------- entries


def ipv4_to_int(text: str) -> int:
    """Strict dotted quad -> int (raises OSError/TypeError on anything else, as inet_pton does)."""
    return int.from_bytes(_INET_PTON(_AF_INET, text), "big")


def _network_range(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[int, int]:
    return int(net.network_address), int(net.broadcast_address)


def _mapped_v4(addr: ipaddress.IPv6Address) -> int | None:
    mapped = addr.ipv4_mapped
    return int(mapped) if mapped is not None else None


def classify(value: str) -> tuple[str, int, object]:
    """Return (kind, family, payload): kind "ip"/"cidr" with payload (start, end), or "domain" with
    the normalised name (lower case, no trailing dot, IDNA-encoded; "*.x" kept for wildcards)."""
    v = value.strip()
    if not v:
        raise EntryError("empty value")
    try:  # the overwhelmingly common case, ~10x cheaper than ipaddress
        n = ipv4_to_int(v)
        return "ip", 4, (n, n)
    except (OSError, ValueError):
        pass
    if "/" in v:
        try:
            net = ipaddress.ip_network(v, strict=False)
        except ValueError:
            raise EntryError(f"not a valid CIDR block: {v[:60]!r}")
        if net.version == 6:
            lo, hi = _network_range(net)
            mapped = _mapped_v4(net.network_address)
            if mapped is not None and net.prefixlen >= 96:
                return "cidr", 4, (mapped, mapped + (hi - lo))
            return "cidr", 6, (lo, hi)
        return "cidr", 4, _network_range(net)
    if v.count(":") == 1 and "." in v:
        raise EntryError(f"an address with a port is not an entry; drop the ':port': {v[:60]!r}")
    if ":" in v:
        try:
            addr = ipaddress.IPv6Address(v.strip("[]"))
        except ValueError:
            raise EntryError(f"not a valid IPv6 address: {v[:60]!r}")
        mapped = _mapped_v4(addr)
        if mapped is not None:
            return "ip", 4, (mapped, mapped)
        return "ip", 6, (int(addr), int(addr))
    if _LOOKS_NUMERIC.match(v):
        raise EntryError(f"not a valid IPv4 address: {v[:60]!r}")
    return "domain", 0, normalize_domain(v)


def normalize_domain(value: str) -> str:
    name = value.strip().rstrip(".").lower()
    wildcard = name.startswith("*.")
    if wildcard:
        name = name[2:]
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise EntryError(f"not a valid domain name: {value[:60]!r}")
    if len(name) > 253:
        raise EntryError("domain name longer than 253 characters")
    labels = name.split(".")
    if len(labels) < 2:
        raise EntryError(f"not an IP address, CIDR or domain name: {value[:60]!r}")
    for label in labels:
        if not _DOMAIN_LABEL.match(label):
            raise EntryError(f"not a valid domain name: {value[:60]!r}")
    return "*." + name if wildcard else name


def ip_range(first: str, last: str) -> tuple[int, tuple[int, int]]:
    """An inclusive address range (STIX 1.x InclusiveBetween) -> (family, (start, end))."""
    try:
        a, b = ipaddress.ip_address(first.strip()), ipaddress.ip_address(last.strip())
    except ValueError:
        raise EntryError(f"not a valid address range: {first[:40]!r} - {last[:40]!r}")
    if a.version != b.version or int(a) > int(b):
        raise EntryError(f"not a valid address range: {first[:40]!r} - {last[:40]!r}")
    return a.version, (int(a), int(b))


# ---------------------------------------------------------------------------------- files


def decode_file(data: bytes) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise ListFormatError(f"The file is {len(data):,} bytes; the limit is {MAX_FILE_BYTES:,} bytes (35 MB).")
    if data[:2] == b"\x1f\x8b":  # forgiving: gzip-compressed lists are common in S3
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
                data = gz.read(MAX_FILE_BYTES + 1)
        except (OSError, EOFError):
            raise ListFormatError("The file starts like gzip but cannot be decompressed.")
        if len(data) > MAX_FILE_BYTES:
            raise ListFormatError(f"The decompressed file is larger than {MAX_FILE_BYTES:,} bytes (35 MB).")
    if b"\x00" in data[:8192]:
        raise ListFormatError("This is a binary file, not a text list.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ListFormatError(f"The file is not UTF-8 text (bad byte at offset {exc.start}).")


def parse_list(data: bytes | str, fmt: str) -> ParsedList:
    """Parse a whole list file in the declared format."""
    fmt = (fmt or "").upper()
    parser = _PARSERS.get(fmt)
    if parser is None:
        raise ListFormatError(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    text = decode_file(data) if isinstance(data, bytes) else data
    result = parser(text)
    if result.entries == 0 and result.rejected_total:
        first = result.rejected[0]
        raise ListFormatError(
            f"No entry of this file is valid {fmt} ({result.rejected_total} rejected; "
            f"first: line {first.line}: {first.reason})."
        )
    return result


def parse_file(path: str, fmt: str) -> ParsedList:
    with open(path, "rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)
    return parse_list(data, fmt)


def _first_content_line(text: str) -> str:
    for raw in text.splitlines():
        s = raw.strip()
        if s and not s.startswith("#"):
            return s
    return ""


def _sniff(text: str) -> str | None:
    """Name the format a file looks like, when that is clear from its start."""
    head = text.lstrip()[:1]
    if head in ("{", "["):
        return "STIX"  # JSON: a STIX 2 bundle is the only JSON format
    if head == "<":
        return "STIX"  # XML: STIX 1.x
    first = _first_content_line(text).lower().replace(" ", "")
    if first.startswith("indicatortype,"):
        return "OTX_CSV"
    if first.startswith(("ip,category", "domain,category")):
        return "PROOF_POINT"
    if first.startswith("reportid,"):
        return "FIRE_EYE"
    if _ALIEN_VAULT_LINE.match(first):
        return "ALIEN_VAULT"
    return None


def _refuse_if_other(text: str, fmt: str, hint: str) -> None:
    other = _sniff(text)
    if other and other != fmt:
        raise ListFormatError(f"This file looks like {other}, not {fmt}. {hint}")


def _content_lines(text: str) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        if s and not s.startswith(("#", "//", ";")):
            yield number, s


# TXT ---------------------------------------------------------------------------------------

_INLINE_COMMENT = re.compile(r"\s+(#|//|;).*$")


def parse_txt(text: str) -> ParsedList:
    _refuse_if_other(text, "TXT", "TXT lists hold one IP address, CIDR block or domain per line.")
    out = ParsedList("TXT")
    for number, line in _content_lines(text):
        value = _INLINE_COMMENT.sub("", line)
        out.add(value, number, text=line)
    return out


# CSV family --------------------------------------------------------------------------------


def _csv_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    try:
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            if row[0].lstrip().startswith("#"):
                continue
            yield reader.line_num, [c.strip() for c in row]
    except csv.Error as exc:
        raise ListFormatError(f"Not readable as CSV at line {reader.line_num}: {exc}")


_OTX_TYPES = {
    "ipv4": ("ip",),
    "ipv6": ("ip",),
    "cidr": ("cidr",),
    "domain": ("domain",),
    "domain name": ("domain",),
    "hostname": ("domain",),
    "fqdn": ("domain",),
}


def parse_otx_csv(text: str) -> ParsedList:
    rows = _csv_rows(text)
    header = next(rows, None)
    if header is None or header[1][0].lower().replace(" ", "") != "indicatortype":
        _refuse_if_other(text, "OTX_CSV", "")
        raise ListFormatError(
            "This is not an OTX_CSV file: it must start with the header line 'Indicator type, Indicator, Description'."
        )
    out = ParsedList("OTX_CSV")
    for number, row in rows:
        if len(row) < 2:
            out.reject(number, "expected 'Indicator type, Indicator, Description'", ",".join(row))
            continue
        itype, value = row[0], row[1]
        expected = _OTX_TYPES.get(itype.lower())
        if expected is None:
            out.ignored_total += 1
            out.reject(number, f"indicator type {itype[:40]!r} is not IPv4, IPv6, CIDR or Domain name", ",".join(row))
            continue
        try:
            kind, _, _ = classify(value)
        except EntryError as exc:
            out.reject(number, str(exc), ",".join(row))
            continue
        if kind not in expected:
            out.reject(number, f"declared {itype} but the value is a {'CIDR block' if kind == 'cidr' else kind}", ",".join(row))
            continue
        out.add(value, number, text=",".join(row))
    return out


def parse_proof_point(text: str) -> ParsedList:
    rows = _csv_rows(text)
    header = next(rows, None)
    if header is None or header[1][0].lower() not in ("ip", "domain") or len(header[1]) < 5:
        _refuse_if_other(text, "PROOF_POINT", "")
        raise ListFormatError(
            "This is not a PROOF_POINT file: it must start with the header line "
            "'ip, category, score, first_seen, last_seen, ports (|)' (or 'domain, ...')."
        )
    out = ParsedList("PROOF_POINT")
    for number, row in rows:
        if len(row) < 5:
            out.reject(number, "expected at least 5 columns: value, category, score, first_seen, last_seen", ",".join(row))
            continue
        if not row[2].lstrip("-").replace(".", "", 1).isdigit():
            out.reject(number, f"score {row[2][:20]!r} is not a number", ",".join(row))
            continue
        out.add(row[0], number, text=",".join(row))
    return out


FIRE_EYE_COLUMNS = (
    "reportId, title, threatScape, audience, intelligenceType, publishDate, reportLink, webLink, emailIdentifier, "
    "senderAddress, senderName, sourceDomain, sourceIp, subject, recipient, emailLanguage, fileName, fileSize, "
    "fuzzyHash, fileIdentifier, md5, sha1, sha256, description, fileType, packer, userAgent, registry, "
    "fileCompilationDateTime, filePath, asn, cidr, domain, domainTimeOfLookup, networkIdentifier, ip, port, "
    "protocol, registrantEmail, registrantName, networkType, url, malwareFamily, malwareFamilyId, actor, actorId, "
    "observationTime"
).split(", ")


def parse_fire_eye(text: str) -> ParsedList:
    rows = _csv_rows(text)
    header = next(rows, None)
    names = [c.lower() for c in header[1]] if header else []
    if not names or names[0] != "reportid" or not ({"ip", "cidr", "domain"} & set(names)):
        _refuse_if_other(text, "FIRE_EYE", "")
        raise ListFormatError(
            "This is not a FIRE_EYE file: it must start with the iSIGHT CSV header 'reportId, title, threatScape, ...' "
            "including the columns cidr, domain and ip."
        )
    columns = [names.index(c) for c in ("cidr", "ip", "domain") if c in names]
    out = ParsedList("FIRE_EYE")
    for number, row in rows:
        values = [row[i] for i in columns if i < len(row) and row[i]]
        if len(row) != len(names):
            out.reject(number, f"expected {len(names)} columns, found {len(row)}", ",".join(row))
            continue
        if not values:
            out.ignored_total += 1
            out.reject(number, "no value in the cidr, ip or domain columns", ",".join(row))
            continue
        for value in values:
            out.add(value, number, text=",".join(row))
    return out


# AlienVault reputation ---------------------------------------------------------------------


def parse_alien_vault(text: str) -> ParsedList:
    _refuse_if_other(text, "ALIEN_VAULT", "")
    lines = list(_content_lines(text))
    if lines and not any("#" in line for _, line in lines[:1000]):
        raise ListFormatError(
            "This is not an ALIEN_VAULT file: each line must be value#reliability#risk#type#country#city#lat,lon#x."
        )
    out = ParsedList("ALIEN_VAULT")
    for number, line in lines:
        parts = line.split("#")
        if len(parts) < 4:
            out.reject(number, "expected value#reliability#risk#type#country#city#lat,lon#x", line)
            continue
        if not (parts[1].strip().isdigit() and parts[2].strip().isdigit()):
            out.reject(number, "reliability and risk must be whole numbers", line)
            continue
        out.add(parts[0], number, text=line)
    return out


# STIX ----------------------------------------------------------------------------------------

_SIMPLE_PATTERN = re.compile(r"^\[\s*(ipv4-addr|ipv6-addr|domain-name):value\s*=\s*'((?:[^'\\]|\\.)*)'\s*\]$")
_STIX_TYPES = ("ipv4-addr", "ipv6-addr", "domain-name")


def _pattern_values(pattern: str, spec_version: str) -> list[str]:
    """IP/domain values a STIX 2 pattern compares for equality. Simple single-comparison patterns take
    a fast path; everything else goes through the reference grammar (stix2-patterns)."""
    m = _SIMPLE_PATTERN.match(pattern.strip())
    if m:
        return [m.group(2).replace("\\'", "'").replace("\\\\", "\\")]
    if spec_version.startswith("2.0"):
        from stix2patterns.v20.pattern import Pattern
    else:
        from stix2patterns.v21.pattern import Pattern
    try:
        comparisons = Pattern(pattern).inspect().comparisons
    except Exception as exc:  # the grammar raises its own ParseException types
        raise EntryError(f"invalid STIX pattern: {str(exc)[:120]}")
    values: list[str] = []
    for object_type in _STIX_TYPES:
        for path, op, value in comparisons.get(object_type, []):
            if path == ["value"] and op in ("=", "ISSUBSET") and isinstance(value, str) and value.startswith("'"):
                values.append(value[1:-1].replace("\\'", "'").replace("\\\\", "\\"))
    return values


def _parse_stix2(text: str) -> ParsedList:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ListFormatError(f"This is not a STIX file: invalid JSON at line {exc.lineno}, column {exc.colno}.")
    if isinstance(doc, dict) and doc.get("type") == "indicator":
        doc = {"type": "bundle", "objects": [doc]}
    if not isinstance(doc, dict) or doc.get("type") != "bundle" or not isinstance(doc.get("objects"), list):
        raise ListFormatError('This is not a STIX 2 bundle: expected a JSON object {"type": "bundle", "objects": [...]}.')
    bundle_version = str(doc.get("spec_version", ""))
    out = ParsedList("STIX")
    indicators = 0
    for position, obj in enumerate(doc["objects"], 1):
        if not isinstance(obj, dict) or obj.get("type") != "indicator":
            continue
        indicators += 1
        ident = str(obj.get("id", ""))
        pattern = obj.get("pattern")
        if obj.get("pattern_type", "stix") != "stix":
            out.ignored_total += 1
            out.reject(position, f"pattern type {str(obj.get('pattern_type'))[:30]!r} is not supported (only 'stix')", ident)
            continue
        if not isinstance(pattern, str):
            out.reject(position, "indicator has no pattern", ident)
            continue
        version = str(obj.get("spec_version") or bundle_version or "2.1")
        try:
            values = _pattern_values(pattern, version)
        except EntryError as exc:
            out.reject(position, str(exc), ident)
            continue
        if not values:
            out.ignored_total += 1
            out.reject(position, "pattern has no IP address or domain name (e.g. only file hashes)", pattern)
            continue
        for value in values:
            out.add(value, position, text=pattern)
    if indicators == 0:
        raise ListFormatError("This STIX bundle contains no indicator objects.")
    return out


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xsi_type(elem: ET.Element) -> str:
    for key, value in elem.attrib.items():
        if _local(key) == "type":
            return value.rsplit(":", 1)[-1]
    return ""


def _parse_stix1(text: str) -> ParsedList:
    # expat >= 2.4 refuses entity-expansion bombs, and ElementTree never fetches external entities.
    try:
        root = ET.fromstring(text)  # noqa: S314 - see the import note
    except ET.ParseError as exc:
        raise ListFormatError(f"This is not a STIX file: invalid XML ({exc}).")
    if "stix" not in root.tag.lower() and "cybox" not in root.tag.lower():
        raise ListFormatError("This XML document is not a STIX 1.x package (root element is not STIX_Package).")
    out = ParsedList("STIX")
    position = 0
    for props in root.iter():
        if _local(props.tag) != "Properties":
            continue
        kind = _xsi_type(props)
        if kind not in ("AddressObjectType", "DomainNameObjectType"):
            continue
        position += 1
        for value_elem in props:
            name = _local(value_elem.tag)
            if name not in ("Address_Value", "Value"):
                continue
            raw = (value_elem.text or "").strip()
            condition = value_elem.attrib.get("condition", "Equals")
            parts = [p.strip() for p in raw.split("##comma##")] if raw else []
            if not parts:
                out.reject(position, "empty value", raw)
                continue
            if kind == "AddressObjectType" and condition == "InclusiveBetween":
                if len(parts) != 2:
                    out.reject(position, "InclusiveBetween needs two addresses separated by ##comma##", raw)
                    continue
                try:
                    family, rng = ip_range(parts[0], parts[1])
                except EntryError as exc:
                    out.reject(position, str(exc), raw)
                    continue
                (out.ipv4 if family == 4 else out.ipv6).append(rng)
                out.counts["cidr"] += 1
                out.counts["ipv6"] += family == 6
                continue
            if condition not in ("Equals", ""):
                out.reject(position, f"condition {condition[:30]!r} is not supported (Equals or InclusiveBetween)", raw)
                continue
            for part in parts:
                out.add(part, position, text=raw)
    if position == 0:
        raise ListFormatError("This STIX 1.x package has no AddressObject or DomainNameObject observables.")
    return out


def parse_stix(text: str) -> ParsedList:
    head = text.lstrip()[:1]
    if head in ("{", "["):
        return _parse_stix2(text)
    if head == "<":
        return _parse_stix1(text)
    other = _sniff(text)
    hint = f"This file looks like {other}, not STIX. " if other else ""
    raise ListFormatError(f"{hint}A STIX list is a STIX 2 JSON bundle or a STIX 1.x XML package.")


_PARSERS = {
    "TXT": parse_txt,
    "STIX": parse_stix,
    "OTX_CSV": parse_otx_csv,
    "ALIEN_VAULT": parse_alien_vault,
    "PROOF_POINT": parse_proof_point,
    "FIRE_EYE": parse_fire_eye,
}


def parse_values(values: Iterable[str], fmt: str = "TXT") -> ParsedList:
    """Build a list from values already in hand (the built-in feeds and tests)."""
    out = ParsedList(fmt)
    for number, value in enumerate(values, 1):
        out.add(value, number)
    return out


def trail_value(line: str) -> str | None:
    """One maltrail/feed line -> an IP, CIDR or domain: drops comments, URL schemes, paths and ports
    ("http://1.2.3.4:8080/x" -> "1.2.3.4"). None for lines carrying nothing usable."""
    s = line.split("#", 1)[0].strip()
    if not s:
        return None
    if "://" in s:
        s = s.split("://", 1)[1]
    s = s.split("/", 1)[0] if not re.match(r"^[0-9.]+/\d{1,2}$", s) else s
    if s.startswith("["):  # [v6]:port
        return s[1 : s.index("]")] if "]" in s else None
    if s.count(":") == 1:
        s = s.split(":", 1)[0]
    return s or None


__all__ = [
    "FIRE_EYE_COLUMNS",
    "FORMATS",
    "MAX_FILE_BYTES",
    "EntryError",
    "ListFormatError",
    "ParsedList",
    "RejectedLine",
    "classify",
    "parse_file",
    "parse_list",
    "parse_values",
    "trail_value",
]
