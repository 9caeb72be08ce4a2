"""Realistic log records in AWS's exact formats and S3 key layouts, for the demo, tests and `make bench`.

Benign background (IAM users and roles calling common APIs, instances talking to the internet and
resolving popular names) with optional injected activity the threat-intel rules must find.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

FLOW_V2_HEADER = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"

READ_APIS = [("ec2.amazonaws.com", "DescribeInstances"), ("s3.amazonaws.com", "ListBuckets"),
             ("iam.amazonaws.com", "GetUser"), ("sts.amazonaws.com", "GetCallerIdentity"),
             ("ec2.amazonaws.com", "DescribeSecurityGroups"), ("lambda.amazonaws.com", "ListFunctions20150331"),
             ("cloudtrail.amazonaws.com", "LookupEvents"), ("kms.amazonaws.com", "Decrypt")]
WRITE_APIS = [("ec2.amazonaws.com", "CreateTags"), ("s3.amazonaws.com", "PutBucketTagging"),
              ("ssm.amazonaws.com", "PutParameter"), ("logs.amazonaws.com", "CreateLogStream")]
POPULAR = ["amazonaws.com", "ubuntu.com", "github.com", "pypi.org", "debian.org", "google.com", "cloudflare.com",
           "docker.io", "npmjs.org", "microsoft.com"]


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cloudtrail_event(*, t: datetime, account: str, region: str, name: str, source: str, ip: str,
                     user: str = "alice", root: bool = False, role: str | None = None,
                     rng: random.Random | None = None, request: dict | None = None,
                     response: dict | None = None) -> dict[str, Any]:
    rng = rng or random
    if root:
        identity: dict[str, Any] = {"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root",
                                    "accountId": account, "accessKeyId": "ASIA" + "ROOTKEY0000000001"}
    elif role:
        identity = {"type": "AssumedRole", "principalId": f"AROAEXAMPLE{role.upper()}:session",
                    "arn": f"arn:aws:sts::{account}:assumed-role/{role}/session", "accountId": account,
                    "accessKeyId": "ASIA" + f"{abs(hash(role)) % 10**16:016d}",
                    "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": f"AROAEXAMPLE{role.upper()}",
                                                         "arn": f"arn:aws:iam::{account}:role/{role}", "userName": role},
                                       "attributes": {"creationDate": iso(t), "mfaAuthenticated": "false"}}}
    else:
        identity = {"type": "IAMUser", "principalId": f"AIDA{user.upper():0<17}"[:21],
                    "arn": f"arn:aws:iam::{account}:user/{user}", "accountId": account,
                    "accessKeyId": f"AKIA{user.upper():0<16}"[:20], "userName": user}
    event = {
        "eventVersion": "1.08", "userIdentity": identity, "eventTime": iso(t), "eventSource": source,
        "eventName": name, "awsRegion": region, "sourceIPAddress": ip,
        "userAgent": "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.ubuntu.22 prompt/off command/x",
        "requestParameters": request if request is not None else {"maxResults": 100, "filterSet": {}},
        "responseElements": response, "requestID": str(uuid.UUID(int=rng.getrandbits(128))),
        "eventID": str(uuid.UUID(int=rng.getrandbits(128))), "readOnly": name.startswith(("Describe", "List", "Get")),
        "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": source.replace("amazonaws.com", f"{region}.amazonaws.com")},
    }
    return event


def benign_cloudtrail(*, n: int, account: str, region: str, start: datetime, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    users = ["alice", "bob", "carol", "deploy-bot"]
    events = []
    for i in range(n):
        source, name = rng.choice(READ_APIS if rng.random() < 0.8 else WRITE_APIS)
        t = start + timedelta(seconds=i * 3600 / max(n, 1))
        if rng.random() < 0.3:
            events.append(cloudtrail_event(t=t, account=account, region=region, name=name, source=source,
                                           ip=f"10.0.{rng.randrange(4)}.{rng.randrange(2, 250)}", role="app-role", rng=rng))
        else:
            events.append(cloudtrail_event(t=t, account=account, region=region, name=name, source=source,
                                           ip=f"203.0.113.{rng.randrange(1, 60)}", user=rng.choice(users), rng=rng))
    return events


def flow_line(*, account: str, eni: str, src: str, dst: str, sport: int, dport: int, start: datetime,
              action: str = "ACCEPT", protocol: int = 6, packets: int = 10, size: int = 840) -> str:
    epoch = int(start.timestamp())
    return f"2 {account} {eni} {src} {dst} {sport} {dport} {protocol} {packets} {size} {epoch} {epoch + 60} {action} OK"


def benign_flow(*, n: int, account: str, start: datetime, seed: int = 2) -> list[str]:
    """Instances talking to a Zipf-distributed pool of remote services (as real VPCs do: the same
    endpoints, CDNs and update servers again and again), plus ~10 % inbound internet background
    noise from random addresses, some of it REJECTed."""
    rng = random.Random(seed)
    pool = [f"{rng.choice([52, 54, 35, 104, 151, 13, 18])}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            for _ in range(5000)]
    lines = []
    for i in range(n):
        eni = f"eni-{rng.randrange(16):017x}"
        local = f"10.0.{rng.randrange(4)}.{rng.randrange(2, 250)}"
        t = start + timedelta(seconds=i * 600 / max(n, 1))
        roll = rng.random()
        if roll < 0.1:
            noise = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            lines.append(flow_line(account=account, eni=eni, src=noise, dst=local, sport=rng.randrange(1024, 65535),
                                   dport=rng.choice([22, 23, 80, 443, 3389, 8080]), start=t,
                                   action="REJECT" if rng.random() < 0.7 else "ACCEPT", packets=1, size=44))
            continue
        remote = pool[min(int(rng.paretovariate(1.1)) - 1, len(pool) - 1)]
        if roll < 0.55:
            # No port 53: instances resolve names through the Amazon DNS server, whose traffic flow logs
            # do not record (AWS, "Flow log limitations"); lookups to public resolvers are not benign.
            lines.append(flow_line(account=account, eni=eni, src=local, dst=remote, sport=rng.randrange(32768, 61000),
                                   dport=rng.choice([443, 443, 80, 123]), start=t))
        else:
            lines.append(flow_line(account=account, eni=eni, src=remote, dst=local, sport=rng.choice([443, 80]),
                                   dport=rng.randrange(32768, 61000), start=t))
    return lines


def dns_query(*, t: datetime, account: str, region: str, name: str, instance: str, srcaddr: str,
              vpc: str = "vpc-0a1b2c3d4e5f60718", rcode: str = "NOERROR", answer: str = "93.184.216.34") -> dict[str, Any]:
    return {"version": "1.100000", "account_id": account, "region": region, "vpc_id": vpc, "query_timestamp": iso(t),
            "query_name": name + ".", "query_type": "A", "query_class": "IN", "rcode": rcode,
            "answers": [{"Rdata": answer, "Type": "A", "Class": "IN"}] if rcode == "NOERROR" else [],
            "srcaddr": srcaddr, "srcport": "53211", "transport": "UDP", "srcids": {"instance": instance}}


def benign_dns(*, n: int, account: str, region: str, start: datetime, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = min(int(rng.paretovariate(1.2)), 400)  # Zipf-like: a few names dominate, as in real resolver logs
        name = f"{['www', 'api', 'cdn', 'static', 's3'][k % 5]}{k // 5 or ''}.{POPULAR[k % len(POPULAR)]}"
        host = rng.randrange(24)
        out.append(dns_query(t=start + timedelta(seconds=i * 600 / max(n, 1)), account=account, region=region,
                             name=name, instance=f"i-{host:017x}", srcaddr=f"10.0.1.{host + 10}"))
    return out


def cloudtrail_key(account: str, region: str, t: datetime, suffix: str) -> str:
    return (f"AWSLogs/{account}/CloudTrail/{region}/{t:%Y/%m/%d}/"
            f"{account}_CloudTrail_{region}_{t:%Y%m%dT%H%MZ}_{suffix}.json.gz")


def flow_key(account: str, region: str, t: datetime, eni: str = "eni-0123456789abcdef0", suffix: str = "a1b2") -> str:
    return (f"AWSLogs/{account}/vpcflowlogs/{region}/{t:%Y/%m/%d}/"
            f"{account}_vpcflowlogs_{region}_fl-0123456789abcdef0_{t:%Y%m%dT%H%MZ}_{suffix}.log.gz")


def dns_key(account: str, vpc: str, t: datetime, suffix: str = "a1b2") -> str:
    return f"AWSLogs/{account}/vpcdnsquerylogs/{vpc}/{t:%Y/%m/%d}/{vpc}_vpcdnsquerylogs_{account}_{t:%Y%m%dT%H%MZ}_{suffix}.log.gz"


def cloudtrail_body(events: list[dict[str, Any]]) -> bytes:
    return json.dumps({"Records": events}, separators=(",", ":")).encode()


def flow_body(lines: list[str]) -> bytes:
    return (FLOW_V2_HEADER + "\n" + "\n".join(lines) + "\n").encode()


def dns_body(queries: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(q, separators=(",", ":")) + "\n" for q in queries).encode()
