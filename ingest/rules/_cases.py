"""Builders for the labelled records that sit beside the network rules (AWS's own formats)."""

from __future__ import annotations

import json
from typing import Any

FLOW_HEADER = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
EPOCH = 1714564800  # 2024-05-01T12:00:00Z
ACCOUNT = "123456789012"
ENI = "eni-0a1b2c3d4e5f60001"
LOCAL = "10.0.1.20"


def flow(src: str, dst: str, sport: int, dport: int, *, t: int = 0, proto: int = 6, packets: int = 10,
         size: int = 840, action: str = "ACCEPT", eni: str = ENI) -> str:
    return f"2 {ACCOUNT} {eni} {src} {dst} {sport} {dport} {proto} {packets} {size} {EPOCH + t} {EPOCH + t + 60} {action} OK"


def flows(records: list[str]) -> list[str]:
    return [FLOW_HEADER, *records]


def dns(name: str, *, t: int = 0, rcode: str = "NOERROR", answers: list[str] | None = None,
        instance: str = "i-0123456789abcdef0", srcaddr: str = LOCAL, qtype: str = "A") -> dict[str, Any]:
    stamp = f"2024-05-01T12:{t // 60 % 60:02d}:{t % 60:02d}Z"
    return {"version": "1.100000", "account_id": ACCOUNT, "region": "us-east-1", "vpc_id": "vpc-0abc",
            "query_timestamp": stamp, "query_name": name + ".", "query_type": qtype, "query_class": "IN",
            "rcode": rcode, "answers": [{"Rdata": a, "Type": "A", "Class": "IN"} for a in (answers or [])],
            "srcaddr": srcaddr, "srcport": "53211", "transport": "UDP", "srcids": {"instance": instance}}


def as_json(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)
