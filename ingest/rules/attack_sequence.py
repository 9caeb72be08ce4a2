"""Attack sequences: AttackSequence:IAM/CompromisedCredentials and AttackSequence:S3/CompromisedData
(Critical). A correlate-stage rule: it reads the frame's CloudTrail detections (ctx.detections) as
signals, files each under its principal and the buckets it names, keeps them in ctx.state for
`window_hours`, and raises a sequence when one principal's (or bucket's) signals span several MITRE
tactics including a damaging one. The finding lists its member findings and the tactics they span.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from findings.catalog import FINDING_TYPES
from ingest.rules import CLOUDTRAIL, Case, Detection, RuleContext, Setting, rule
from ingest.rules._ct import envelope, event
from ingest.rules.pentest import KALI_CLI
from ingest.rules.threat_intel import TOR_EXIT

IAM_SEQ = "AttackSequence:IAM/CompromisedCredentials"
S3_SEQ = "AttackSequence:S3/CompromisedData"
KEEP = 50

BY_PURPOSE = {"Recon": "Discovery", "Discovery": "Discovery", "PenTest": "Discovery", "Stealth": "Defense Evasion",
              "DefenseEvasion": "Defense Evasion", "CredentialAccess": "Credential Access", "Exfiltration": "Exfiltration",
              "Impact": "Impact", "InitialAccess": "Initial Access", "Persistence": "Persistence",
              "PrivilegeEscalation": "Privilege Escalation", "UnauthorizedAccess": "Initial Access"}
BY_TYPE = {
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS": "Credential Access",
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS": "Credential Access",
    "Policy:IAMUser/RootCredentialUsage": "Privilege Escalation",
    "Policy:IAMUser/ShortTermRootCredentialUsage": "Privilege Escalation",
    "Policy:S3/BucketAnonymousAccessGranted": "Exfiltration",
    "Policy:S3/BucketPublicAccessGranted": "Exfiltration",
    "Policy:S3/AccountBlockPublicAccessDisabled": "Defense Evasion",
    "Policy:S3/BucketBlockPublicAccessDisabled": "Defense Evasion",
    "UnauthorizedAccess:S3/TorIPCaller": "Collection",
    "UnauthorizedAccess:S3/MaliciousIPCaller.Custom": "Collection",
}
DAMAGING = {"Defense Evasion", "Credential Access", "Exfiltration", "Impact", "Persistence", "Privilege Escalation"}
DATA_DAMAGE = {"Exfiltration", "Impact", "Collection"}


def tactic_of(finding_type: str) -> str:
    return BY_TYPE.get(finding_type) or BY_PURPOSE.get(finding_type.split(":", 1)[0], "Discovery")


def _principal(detection: Detection) -> str | None:
    details = (detection.resource or {}).get("accessKeyDetails") or {}
    name = details.get("userName") or details.get("principalId")
    return f"{details.get('userType') or 'Unknown'}:{name}" if name else None


def _buckets(detection: Detection) -> list[str]:
    return [b["name"] for b in (detection.resource or {}).get("s3BucketDetails") or [] if b.get("name")]


def _cases() -> list[Case]:
    tor_recon = event("ListUsers", source="iam.amazonaws.com", ip=TOR_EXIT, user="dev", t="2024-05-01T12:00:00Z")
    stop = event("StopLogging", source="cloudtrail.amazonaws.com", ip=TOR_EXIT, user="dev", t="2024-05-01T12:05:00Z",
                 request={"name": "main"})
    public = event("PutBucketPolicy", ip=TOR_EXIT, user="dev", t="2024-05-01T12:10:00Z", request={
        "bucketName": "payroll", "bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": "*",
                                                                 "Action": "s3:GetObject", "Resource": "*"}]}})
    read = event("GetObject", ip=TOR_EXIT, user="dev", t="2024-05-01T12:12:00Z", category="Data",
                 request={"bucketName": "payroll", "key": "all.csv"})
    return [
        Case("Tor recon, then CloudTrail stopped, by one user", envelope(tor_recon, stop), expect=(IAM_SEQ,),
             expect_severity={IAM_SEQ: 9.0}),
        Case("bucket made public and read from Tor", envelope(tor_recon, public, read), expect=(IAM_SEQ, S3_SEQ)),
        Case("one finding alone is no sequence", envelope({**stop, "sourceIPAddress": "198.51.100.20"})),
        Case("two discovery-only signals", envelope(tor_recon, event("ListRoles", source="iam.amazonaws.com",
                                                                     agent=KALI_CLI, user="dev"))),
        Case("signals of two different users", envelope(tor_recon, {**stop, "sourceIPAddress": "198.51.100.20",
                                                                   "userIdentity": {
            **stop["userIdentity"], "arn": "arn:aws:iam::123456789012:user/ops", "userName": "ops",
            "principalId": "AIDAOPS"}})),
    ]


@rule(source=CLOUDTRAIL, finding_types=(IAM_SEQ, S3_SEQ), stage="correlate", cases=_cases(),
      settings={"window_hours": Setting(24, "signals this close together belong to one sequence"),
                "min_tactics": Setting(2, "distinct MITRE tactics a sequence must span")},
      state="per principal and per bucket: recent signals (finding type, tactic, time, title)")
def attack_sequence(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    signals = [d for d in ctx.detections if not d.type.startswith("AttackSequence:") and d.type in FINDING_TYPES]
    if not signals:
        return
    window = timedelta(hours=ctx.setting("window_hours"))
    by_key: dict[str, list[Detection]] = {}
    for detection in signals:
        principal = _principal(detection)
        if principal:
            by_key.setdefault(f"p:{principal}", []).append(detection)
        for bucket in _buckets(detection):
            by_key.setdefault(f"b:{bucket}", []).append(detection)
    # A principal's signals also count for the buckets it touched in this frame.
    for key, members in list(by_key.items()):
        if key.startswith("p:"):
            for bucket in {b for d in members for b in _buckets(d)}:
                extra = [d for d in members if d not in by_key[f"b:{bucket}"]]
                by_key[f"b:{bucket}"].extend(extra)
    known = ctx.state_get(sorted(by_key))
    for key, members in by_key.items():
        history: list[dict[str, Any]] = list(known.get(key) or [])
        seen = {(h["type"], h["key"]) for h in history}
        for d in members:
            if (d.type, d.dedup_key) not in seen:
                history.append({"type": d.type, "key": d.dedup_key, "tactic": tactic_of(d.type), "title": d.title,
                                "first": d.first_seen.isoformat(), "last": d.last_seen.isoformat(),
                                "severity": d.resolved_severity()})
                seen.add((d.type, d.dedup_key))
            else:
                for h in history:
                    if (h["type"], h["key"]) == (d.type, d.dedup_key):
                        h["last"] = max(h["last"], d.last_seen.isoformat())
        newest = max(datetime.fromisoformat(h["last"]) for h in history)
        history = [h for h in history if newest - datetime.fromisoformat(h["last"]) <= window][-KEEP:]
        ctx.state_put(key, history)
        tactics = sorted({h["tactic"] for h in history})
        types = {h["type"] for h in history}
        if len(types) < 2 or len(tactics) < ctx.setting("min_tactics"):
            continue
        is_bucket = key.startswith("b:")
        if not (set(tactics) & (DATA_DAMAGE if is_bucket else DAMAGING)):
            continue
        yield _sequence(key, history, tactics, members, S3_SEQ if is_bucket else IAM_SEQ)


def _sequence(key: str, history: list[dict[str, Any]], tactics: list[str], members: list[Detection],
              finding_type: str) -> Detection:
    latest = max(members, key=lambda d: d.last_seen)
    name = key.split(":", 1)[1] if finding_type == S3_SEQ else key.split(":", 2)[-1]
    first = min(datetime.fromisoformat(h["first"]) for h in history)
    last = max(datetime.fromisoformat(h["last"]) for h in history)
    if finding_type == S3_SEQ:
        resource = {"resourceType": "S3Bucket",
                    "s3BucketDetails": [{"arn": f"arn:aws:s3:::{name}", "name": name, "type": "Destination"}]}
        if latest.resource.get("accessKeyDetails"):
            resource["accessKeyDetails"] = latest.resource["accessKeyDetails"]
        title = f"Potential data compromise of the S3 bucket {name}."
    else:
        resource = {k: v for k, v in latest.resource.items() if k in ("accessKeyDetails", "s3BucketDetails")}
        resource["resourceType"] = "AccessKey"
        title = f"Potential credential compromise of {name}."
    signals = [{"type": h["type"], "tactic": h["tactic"], "title": h["title"], "firstSeen": h["first"],
                "lastSeen": h["last"], "severity": h["severity"]} for h in history]
    description = (f"{len(signals)} related findings within the window span the MITRE ATT&CK tactics "
                   f"{', '.join(tactics)}: " + "; ".join(f"{s['type']} ({s['tactic']})" for s in signals) + ".")
    service = {
        "resourceRole": "TARGET",
        "action": latest.service.get("action", {}),
        "additionalInfo": {"memberFindings": signals, "tactics": tactics},
        "detection": {"sequence": {"title": title, "description": description, "signals": signals,
                                   "sequenceIndicators": [{"key": "ATTACK_TACTIC", "values": tactics}]}},
    }
    return Detection(type=finding_type, dedup_key=key, title=title, description=description, first_seen=first,
                     last_seen=last, count=len(signals), resource=resource, service=service, region=latest.region,
                     evidence=signals)
