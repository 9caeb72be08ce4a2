"""Callers on threat lists: known malicious IPs (built-in feeds), the customer's own lists and Tor exits.

IAM (management events): Recon:IAMUser/MaliciousIPCaller for recon-type APIs (Get/List/Describe…),
UnauthorizedAccess:IAMUser/MaliciousIPCaller for the rest. The `.Custom` and Tor variants live in
threat_intel.py (cloudtrail_custom_ip, cloudtrail_tor) and share its helpers.

S3 (data events): the API decides the purpose — discovery (List/Head/Get…Acl), exfiltration (reads of
object data) or impact (writes, deletes, ACL changes) — and the list decides the family:
built-in malicious → Discovery/Exfiltration/Impact:S3/MaliciousIPCaller; custom list →
Discovery:S3/MaliciousIPCaller.Custom or UnauthorizedAccess:S3/MaliciousIPCaller.Custom; Tor →
Discovery:S3/TorIPCaller or UnauthorizedAccess:S3/TorIPCaller. One finding per bucket, caller IP and type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import polars as pl

from ingest.rules import CLOUDTRAIL, Case, Detection, RuleContext, group_rows, rule
from ingest.rules._ct import CT_EVIDENCE, by_caller, ct_detection, envelope, event, principal_name
from ingest.rules.threat_intel import CASE_LIST_IP, TOR_EXIT, _listed_callers

# Built-in feed categories that mean "a known malicious host" (scanners, mining pools and Tor have
# their own meaning and types).
MALICIOUS_CATEGORIES = {"malicious", "c2", "malware", "drop_point", "phishing"}

S3_DISCOVERY_PREFIXES = ("List", "Head", "GetBucket")
S3_DISCOVERY = {"GetObjectAcl", "GetObjectAttributes", "GetObjectTagging", "GetObjectLegalHold", "GetObjectRetention"}
S3_EXFILTRATION = {"GetObject", "GetObjectTorrent", "SelectObjectContent", "CopyObject", "UploadPartCopy"}


def _hits_where(ctx: RuleContext, keep: Callable[[Any], bool], *, skip_tor: bool = False) -> dict[str, tuple]:
    """The threat-intel hits of each caller address that `keep` accepts (addresses with none left out)."""
    out = {}
    for ip, hits in ctx.ip_hits.items():
        if skip_tor and any(h.category == "tor_exit" for h in hits):
            continue
        chosen = tuple(h for h in hits if keep(h))
        if chosen:
            out[ip] = chosen
    return out


def malicious_hits(ctx: RuleContext) -> dict[str, tuple]:
    # A Tor exit gets the Tor types (the exits also appear on reputation lists).
    return _hits_where(ctx, lambda h: h.source == "builtin" and h.category in MALICIOUS_CATEGORIES, skip_tor=True)


def custom_hits(ctx: RuleContext) -> dict[str, tuple]:
    return _hits_where(ctx, lambda h: h.source == "custom")


def tor_hits(ctx: RuleContext) -> dict[str, tuple]:
    return _hits_where(ctx, lambda h: h.category == "tor_exit")


# --- IAM: built-in malicious lists ------------------------------------------------------------------

# An address of the GuardDuty tester's malicious list is not an IP; IPsum's level-3 list is.
def _first_listed_ip() -> str:
    from intel.builtin import DATA_DIR

    for line in (DATA_DIR / "ipsum_level3.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            return line.split()[0]
    raise RuntimeError("the built-in IPsum list is empty")


LISTED = _first_listed_ip()

IAM_CASES = [
    Case("recon from a known malicious IP", envelope(event("ListUsers", source="iam.amazonaws.com", ip=LISTED)),
         expect=("Recon:IAMUser/MaliciousIPCaller",), expect_severity={"Recon:IAMUser/MaliciousIPCaller": 5.0}),
    Case("a write from a known malicious IP", envelope(event("CreateAccessKey", source="iam.amazonaws.com", ip=LISTED)),
         expect=("UnauthorizedAccess:IAMUser/MaliciousIPCaller",)),
    Case("a malicious IP on the trusted list", envelope(event("ListUsers", source="iam.amazonaws.com", ip=LISTED)),
         trusted_list=(LISTED,)),
    Case("an unlisted address", envelope(event("ListUsers", source="iam.amazonaws.com", ip="198.51.100.99"))),
    Case("a Tor exit is the Tor type, not this one", envelope(event("ListUsers", source="iam.amazonaws.com", ip=TOR_EXIT))),
]


@rule(source=CLOUDTRAIL, finding_types=("Recon:IAMUser/MaliciousIPCaller", "UnauthorizedAccess:IAMUser/MaliciousIPCaller"),
      cases=IAM_CASES)
def iam_malicious_ip(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    yield from _listed_callers(frame.filter(by_caller()), malicious_hits(ctx), "Recon:IAMUser/MaliciousIPCaller",
                               "UnauthorizedAccess:IAMUser/MaliciousIPCaller",
                               what="a known malicious IP address", list_kind=" on the threat list {list}")


# --- S3 data events ------------------------------------------------------------------------------------


def _purpose() -> pl.Expr:
    name = pl.col("event_name")
    discovery = pl.any_horizontal([name.str.starts_with(p) for p in S3_DISCOVERY_PREFIXES]) | name.is_in(list(S3_DISCOVERY))
    return (pl.when(discovery).then(pl.lit("discovery"))
            .when(name.is_in(list(S3_EXFILTRATION))).then(pl.lit("exfiltration"))
            .otherwise(pl.lit("impact")))


FAMILIES = {
    "malicious": {"discovery": "Discovery:S3/MaliciousIPCaller", "exfiltration": "Exfiltration:S3/MaliciousIPCaller",
                  "impact": "Impact:S3/MaliciousIPCaller"},
    "custom": {"discovery": "Discovery:S3/MaliciousIPCaller.Custom",
               "exfiltration": "UnauthorizedAccess:S3/MaliciousIPCaller.Custom",
               "impact": "UnauthorizedAccess:S3/MaliciousIPCaller.Custom"},
    "tor": {"discovery": "Discovery:S3/TorIPCaller", "exfiltration": "UnauthorizedAccess:S3/TorIPCaller",
            "impact": "UnauthorizedAccess:S3/TorIPCaller"},
}
WHAT = {"malicious": "a known malicious IP address", "custom": "an IP address on a custom threat list",
        "tor": "a Tor exit node"}
S3_TYPES = tuple(sorted({t for family in FAMILIES.values() for t in family.values()}))


def _data(name: str, ip: str, **kw: object) -> dict:
    return event(name, ip=ip, category="Data", request={"bucketName": "payroll", "key": "2024/june.csv"}, **kw)


S3_CASES = [
    Case("objects listed from a malicious IP", envelope(_data("ListObjects", LISTED)),
         expect=("Discovery:S3/MaliciousIPCaller",), expect_severity={"Discovery:S3/MaliciousIPCaller": 8.0}),
    Case("an object read from a malicious IP", envelope(_data("GetObject", LISTED)),
         expect=("Exfiltration:S3/MaliciousIPCaller",)),
    Case("objects deleted from a malicious IP", envelope(_data("DeleteObjects", LISTED)),
         expect=("Impact:S3/MaliciousIPCaller",)),
    Case("listing from a custom-list IP", envelope(_data("ListObjectsV2", CASE_LIST_IP)), threat_list=(CASE_LIST_IP,),
         expect=("Discovery:S3/MaliciousIPCaller.Custom",)),
    Case("a write from a custom-list IP", envelope(_data("PutObject", CASE_LIST_IP)), threat_list=(CASE_LIST_IP,),
         expect=("UnauthorizedAccess:S3/MaliciousIPCaller.Custom",)),
    Case("HeadBucket from a Tor exit", envelope(_data("HeadBucket", TOR_EXIT)), expect=("Discovery:S3/TorIPCaller",),
         expect_severity={"Discovery:S3/TorIPCaller": 5.0}),
    Case("GetObject from a Tor exit", envelope(_data("GetObject", TOR_EXIT)), expect=("UnauthorizedAccess:S3/TorIPCaller",)),
    Case("GetObject from an ordinary address", envelope(_data("GetObject", "198.51.100.20"))),
    Case("a management S3 call from a Tor exit is the IAM type", envelope(event("ListBuckets", ip=TOR_EXIT))),
    Case("a trusted Tor exit", envelope(_data("GetObject", TOR_EXIT)), trusted_list=(TOR_EXIT,)),
]


@rule(source=CLOUDTRAIL, finding_types=S3_TYPES, cases=S3_CASES)
def s3_listed_callers(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    lists = {"malicious": malicious_hits(ctx), "custom": custom_hits(ctx), "tor": tor_hits(ctx)}
    listed = set().union(*lists.values())
    if not listed:
        return
    data = frame.filter((pl.col("event_category") == "Data") & (pl.col("event_source") == "s3.amazonaws.com")
                        & pl.col("source_ip").is_in(list(listed)) & by_caller()).with_columns(
        _purpose().alias("purpose"), pl.col("request_parameters").str.json_path_match("$.bucketName").alias("bucket"))
    for family, hits_by_ip in lists.items():
        part = data.filter(pl.col("source_ip").is_in(list(hits_by_ip)))
        if part.is_empty():
            continue
        part = part.with_columns(pl.col("purpose").replace_strict(FAMILIES[family]).alias("finding_type"))
        for group in group_rows(part, ["bucket", "source_ip", "finding_type"], time="event_time", evidence=CT_EVIDENCE):
            latest = group["_latest"]
            bucket, ip, finding_type = group["bucket"], group["source_ip"], group["finding_type"]
            yield ct_detection(
                group, finding_type, dedup_key=f"{bucket}|{ip}|{finding_type}", bucket=bucket,
                resource_type="S3Bucket", hits=hits_by_ip[ip],
                title=f"S3 API {latest['event_name']} was invoked on {bucket} from {WHAT[family]} {ip}.",
                description=f"{principal_name(latest)} called {latest['event_name']} on the S3 bucket {bucket} from "
                            f"{ip}, {WHAT[family]} ({hits_by_ip[ip][0].list_name}).",
            )
