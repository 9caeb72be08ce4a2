"""Real log objects carrying the hostile corpus, put into a member account's bucket (moto S3) and
processed by the real pipeline. Shared by the API tests and the browser test."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from accounts.models import Account, Detector
from ingest import synthetic as syn
from ingest.models import LogSource
from tests.security.hostile import HOSTILE, HOSTILE_BYTES

AWS_ID = "555555555555"
REGION = "us-east-1"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
C2_SUFFIX = ".c2.guarddutyc2activityb.com"
TOR_EXIT = "185.220.101.1"
BUCKET = "hostile-trail"
# S3 keys (after AWS's layout prefix) that are themselves hostile; '/' would change the layout.
HOSTILE_KEY_SUFFIXES = [
    "<script>window.__pwned=1</script>", "\"><img src=x onerror=window.__pwned=1>", "{{7*7}}{% debug %}",
    "' OR '1'='1", "\u202eexe", "zero\u200bwidth",
]


@dataclass
class HostileWorld:
    account: Account
    sources: list[LogSource]
    # what went in, to compare with what comes out
    root_apis: list[str] = field(default_factory=list)
    tor_users: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    malformed_expected: int = 0
    dns_malformed_expected: int = 0
    keys: list[str] = field(default_factory=list)

    @property
    def tried(self) -> int:
        return len(HOSTILE) + len(HOSTILE_BYTES) + len(HOSTILE_KEY_SUFFIXES)


def _root_event(i: int, s: str) -> dict:
    event = syn.cloudtrail_event(t=T0 + timedelta(seconds=i), account=AWS_ID, region=REGION, name=s,
                                 source="iam.amazonaws.com", ip="198.51.100.20", root=True)
    event.update(userAgent=s, errorCode=s, errorMessage=s, requestParameters={"userName": s, "policyDocument": s},
                 responseElements={"message": s})
    return event


def _tor_event(i: int, s: str) -> dict:
    event = syn.cloudtrail_event(t=T0 + timedelta(seconds=i), account=AWS_ID, region=REGION, name="ConsoleLogin",
                                 source="signin.amazonaws.com", ip=TOR_EXIT, user=f"u{i}")
    event["userIdentity"].update(userName=s, arn=f"arn:aws:iam::{AWS_ID}:user/{s}", principalId=f"AIDAHOSTILE{i:04d}")
    event.update(userAgent=s, errorMessage=s, additionalEventData={"LoginTo": s, "MobileVersion": s})
    return event


def stored_text(s: str) -> str:
    return s.replace("\x00", "\ufffd")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def hostile_world(member) -> HostileWorld:
    """Fill `member`'s bucket with CloudTrail and Resolver logs carrying every hostile string."""
    account = Account.objects.create(aws_account_id=AWS_ID, name="Hostile <b>Corp</b> {{x}}", role_arn=member.role_arn,
                                     external_id=member.external_id)
    detector = Detector.objects.create(account=account, region=REGION)
    world = HostileWorld(account, [LogSource.objects.create(detector=detector, kind=kind, bucket=BUCKET)
                                   for kind in ("cloudtrail", "dns")])
    distinct = list(dict.fromkeys(HOSTILE))
    # What Vigil stores: NUL becomes U+FFFD (PostgreSQL text cannot hold it); everything else exact.
    stored = [stored_text(s) for s in distinct]
    # Root usage: one finding per distinct API name; user agent, error and parameters carry the string too.
    root = [_root_event(i, s) for i, s in enumerate(distinct)]
    tor = [_tor_event(i, s) for i, s in enumerate(distinct)]
    world.root_apis, world.tor_users = stored, stored
    for n, suffix in enumerate(HOSTILE_KEY_SUFFIXES):
        key = syn.cloudtrail_key(AWS_ID, REGION, T0 + timedelta(minutes=n), f"{n}{suffix}")
        part = slice(n * len(root) // len(HOSTILE_KEY_SUFFIXES), (n + 1) * len(root) // len(HOSTILE_KEY_SUFFIXES))
        member.put(BUCKET, key, syn.cloudtrail_body(root[part] + tor[part]))
        world.keys.append(key)
    # Raw bytes JSON cannot carry as text: invalid UTF-8 and raw NULs make a record malformed
    # (counted, sampled); the same payloads \u-escaped are valid strings and go through.
    records = []
    for i, payload in enumerate(HOSTILE_BYTES):
        base = json.dumps(_root_event(1000 + i, f"BytesApi{i}"), separators=(",", ":")).encode()
        records.append(base.replace(b'"userAgent":"BytesApi%d"' % i, b'"userAgent":"' + payload + b'"'))
        text = payload.decode("utf-8", "surrogateescape")
        records.append(json.dumps(_root_event(2000 + i, f"EscapedApi{i}{text}"), separators=(",", ":")).encode())
    # Every raw record is malformed; an escaped one too when it holds a lone surrogate (\udcff:
    # valid JSON syntax, but no UTF-8 text, so it could not be stored or shown).
    world.malformed_expected = len(HOSTILE_BYTES) + sum(1 for p in HOSTILE_BYTES if not _is_utf8(p))
    key = syn.cloudtrail_key(AWS_ID, REGION, T0 + timedelta(minutes=59), "bytes")
    member.put(BUCKET, key, b'{"Records":[' + b",".join(records) + b"]}")
    world.keys.append(key)
    # Resolver queries: hostile labels under a C2 domain of the built-in feeds.
    queries = []
    for i, s in enumerate(distinct):
        name = s + C2_SUFFIX
        queries.append(syn.dns_query(t=T0 + timedelta(seconds=i), account=AWS_ID, region=REGION, name=name,
                                     instance="i-0aaa1111bbbb2222c", srcaddr="10.0.1.7"))
    # Names longer than DNS allows (255 octets) are forged: malformed records, not findings.
    world.domains = list(dict.fromkeys(stored_text(q["query_name"].lower().removesuffix(".")) for q in queries
                                       if len(q["query_name"]) <= 256))
    world.dns_malformed_expected = sum(1 for q in queries if len(q["query_name"]) > 256)
    key = syn.dns_key(AWS_ID, "vpc-0a1b2c3d4e5f60718", T0, "<svg onload=window.__pwned=1>")
    member.put(BUCKET, key, syn.dns_body(queries))
    world.keys.append(key)
    return world
