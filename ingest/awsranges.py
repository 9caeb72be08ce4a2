"""AWS's published IP address ranges: is an address inside AWS, and in which Region.

The data file (ingest/data/aws_ip_ranges.tsv) is a compaction of AWS's `ip-ranges.json`: the
AMAZON prefixes (every AWS service) collapsed per Region, each marked EC2 when an instance's public
address (its own, an Elastic IP or a NAT gateway's) can come from it. `python -m ingest.awsranges
ip-ranges.json > ingest/data/aws_ip_ranges.tsv` rebuilds it from a newer download.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parent / "data" / "aws_ip_ranges.tsv"


@dataclass(frozen=True)
class AwsRange:
    region: str
    ec2: bool


def compact(document: dict) -> str:
    """The TSV text for one ip-ranges.json document (header lines start with '#')."""
    ec2: dict[str, list] = {}
    amazon: dict[str, list] = {}
    for key, field in (("prefixes", "ip_prefix"), ("ipv6_prefixes", "ipv6_prefix")):
        for p in document.get(key, []):
            net = ipaddress.ip_network(p[field], strict=False)
            target = ec2 if p["service"] == "EC2" else amazon
            target.setdefault(p["region"], []).append(net)
    lines = [
        "# AWS IP address ranges, compacted: cidr<TAB>region<TAB>EC2|AMAZON (EC2 wins where both apply).",
        f"# Source: https://ip-ranges.amazonaws.com/ip-ranges.json syncToken={document.get('syncToken')} "
        f"createDate={document.get('createDate')} (AWS publishes it for this use).",
    ]
    rows = []
    for kind, table in (("EC2", ec2), ("AMAZON", amazon)):
        for region, nets in table.items():
            for version in (4, 6):
                same = [n for n in nets if n.version == version]
                rows += [(n, region, kind) for n in ipaddress.collapse_addresses(same)]
    rows.sort(key=lambda r: (r[0].version, int(r[0].network_address), r[2] != "EC2"))
    lines += [f"{net}\t{region}\t{kind}" for net, region, kind in rows]
    return "\n".join(lines) + "\n"


class AwsRanges:
    """Longest-prefix lookups: one dict per prefix length, probed from the most specific down (a
    few dozen probes per address; rules look up only the handful of addresses they consider)."""

    def __init__(self, text: str) -> None:
        self.meta = [line[2:] for line in text.splitlines() if line.startswith("# Source")]
        self._tables: dict[int, dict[int, dict[int, AwsRange]]] = {4: {}, 6: {}}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            cidr, region, kind = line.split("\t")
            net = ipaddress.ip_network(cidr)
            table = self._tables[net.version].setdefault(net.prefixlen, {})
            key = int(net.network_address)
            if key not in table or kind == "EC2":  # EC2 wins over the AMAZON superset
                table[key] = AwsRange(region, kind == "EC2")
        self._lengths = {v: sorted(t, reverse=True) for v, t in self._tables.items()}

    def lookup(self, ip: str | None) -> AwsRange | None:
        """The AWS range an address falls in, or None (not AWS, or not an address at all)."""
        if not ip:
            return None
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        bits = 32 if addr.version == 4 else 128
        value = int(addr)
        tables = self._tables[addr.version]
        for length in self._lengths[addr.version]:
            hit = tables[length].get(value >> (bits - length) << (bits - length))
            if hit is not None:
                return hit
        return None


_lock = threading.Lock()
_ranges: AwsRanges | None = None


def aws_ranges() -> AwsRanges:
    global _ranges
    with _lock:
        if _ranges is None:
            _ranges = AwsRanges(DATA_FILE.read_text())
    return _ranges


if __name__ == "__main__":  # pragma: no cover - data maintenance
    sys.stdout.write(compact(json.load(open(sys.argv[1]))))
