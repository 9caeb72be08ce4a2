"""Public labelled captures turned into AWS log records at test time.

Stratosphere's datasets are GPL-2.0: they are read from /work/shared/data/external/ while the tests
run and never copied into the repository. A Zeek conn record becomes the VPC flow records the
interface of the watched host would write (the client's record, and the reply when the peer
answered); a Zeek dns.log record becomes a Route 53 Resolver query-log record.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ingest.synthetic import FLOW_V2_HEADER, dns_query

STRATOSPHERE = Path("/work/shared/data/external/stratosphere-security-datasets-for-testing")
ACCOUNT = "555566667777"
PROTO = {"tcp": 6, "udp": 17, "icmp": 1}


def zeek_conn_to_flow(path: Path, *, host: str, eni: str = "eni-0c0ffee0c0ffee001") -> bytes:
    """VPC flow log v2 text (with header) of every connection of `host` in a Zeek conn.log (JSON lines)."""
    lines = [FLOW_V2_HEADER]
    for raw in path.read_text().splitlines():
        if not raw.startswith("{"):
            continue
        conn = json.loads(raw)
        src, dst = conn["id.orig_h"], conn["id.resp_h"]
        if host not in (src, dst) or conn["proto"] not in PROTO:
            continue
        start = int(conn["ts"])
        end = start + max(1, int(conn.get("duration") or 0))
        sport, dport, proto = conn["id.orig_p"], conn["id.resp_p"], PROTO[conn["proto"]]
        if proto == 1:
            sport = dport = 0
        out_pkts, out_bytes = max(1, conn.get("orig_pkts", 0)), max(40, conn.get("orig_ip_bytes", 0))
        lines.append(f"2 {ACCOUNT} {eni} {src} {dst} {sport} {dport} {proto} {out_pkts} {out_bytes} {start} {end} ACCEPT OK")
        if conn.get("resp_pkts"):
            lines.append(f"2 {ACCOUNT} {eni} {dst} {src} {dport} {sport} {proto} {conn['resp_pkts']} "
                         f"{conn.get('resp_ip_bytes', 40)} {start} {end} ACCEPT OK")
    return ("\n".join(lines) + "\n").encode()


def zeek_dns_to_resolver(path: Path, *, start: datetime = datetime(2026, 11, 2, tzinfo=UTC),
                         instance_for: dict[str, str] | None = None) -> bytes:
    """Route 53 Resolver query-log JSON lines from a Zeek dns.log (TSV with a #fields header)."""
    fields: list[str] = []
    out: list[dict[str, Any]] = []
    for raw in path.read_text().splitlines():
        if raw.startswith("#fields"):
            fields = raw.split("\t")[1:]
            continue
        if raw.startswith("#") or not raw.strip():
            continue
        row = dict(zip(fields, raw.split("\t"), strict=False))
        if row.get("query", "-") in ("-", ""):
            continue
        src = row["id.orig_h"]
        rcode = row.get("rcode_name", "NOERROR")
        answer = (row.get("answers") or "-").split(",")[0]
        q = dns_query(t=start + timedelta(seconds=float(row["ts"])), account=ACCOUNT, region="us-east-1",
                      name=row["query"], instance=(instance_for or {}).get(src, f"i-0{abs(hash(src)) % 16**16:016x}"),
                      srcaddr=src, rcode=rcode if rcode != "-" else "NOERROR",
                      answer=answer if answer not in ("-", "") else "192.0.2.1")
        q["query_type"] = row.get("qtype_name", "A")
        out.append(q)
    return "".join(json.dumps(q) + "\n" for q in out).encode()
