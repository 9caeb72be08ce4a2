"""Shared pieces of the CloudTrail (IAM and S3) rules: finding blocks in GuardDuty's shape, request
parameter access, address facts, and a compact way to write labelled CloudTrail records for cases.

Not a rule module (the leading underscore keeps the registry from importing it as one).
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec
import polars as pl

from ingest.rules import EVIDENCE_ROWS, Detection, threat_service
from ingest.rules.threat_intel import access_key_resource

ACCOUNT = "123456789012"
CT_EVIDENCE = ["event_time", "event_id", "event_source", "event_name", "source_ip", "user_agent", "error_code",
               "ui_type", "ui_arn", "ui_access_key_id", "request_parameters"]

# --- request parameters ---------------------------------------------------------------------------


def req(path: str) -> pl.Expr:
    """A scalar from requestParameters (JSONPath), as text; null when absent or not JSON."""
    return pl.col("request_parameters").str.json_path_match(path)


def bucket_expr() -> pl.Expr:
    return req("$.bucketName")


def decode(text: str | None) -> Any:
    """JSON text (requestParameters, a policy document inside it) to Python; None if it is not JSON."""
    if not text:
        return None
    try:
        return msgspec.json.decode(text)
    except (msgspec.DecodeError, TypeError):
        return None


def succeeded() -> pl.Expr:
    return pl.col("error_code").is_null() | (pl.col("error_code") == "")


def by_caller() -> pl.Expr:
    """Calls made by a principal, not by AWS on its behalf (service events, invokedBy)."""
    return (pl.col("ui_invoked_by").is_null() & (pl.col("event_type").fill_null("AwsApiCall") != "AwsServiceEvent")
            & (pl.col("ui_type").fill_null("") != "AWSService"))


# --- addresses --------------------------------------------------------------------------------------


def not_service() -> pl.Expr:
    """Calls a principal is answerable for, including those a service such as CloudFormation made
    with the principal's credentials (invokedBy): only AWS's own service events are left out."""
    return (pl.col("event_type").fill_null("AwsApiCall") != "AwsServiceEvent") & (pl.col("ui_type").fill_null("") != "AWSService")


def parse_ip(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address, or None for hostnames ('ec2.amazonaws.com'), 'AWS Internal' and anonymised junk
    such as '08.1.250.216' (which the public detonation logs contain)."""
    if not value:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def is_private(value: str | None) -> bool:
    addr = parse_ip(value)
    return bool(addr and (addr.is_private or addr.is_link_local or addr in _CGNAT))


_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_geo_lock = threading.Lock()
_geo: Any = None


def _geoip() -> Any:
    global _geo
    with _geo_lock:
        if _geo is None:
            from geoip2fast import GeoIP2Fast

            _geo = GeoIP2Fast(geoip2fast_data_file="geoip2fast-asn.dat.gz")
    return _geo


def country_of(value: str | None) -> tuple[str, str]:
    """(country code, country name) of a public address; ('', '') when unknown."""
    addr = parse_ip(value)
    if addr is None or addr.is_private:
        return "", ""
    result = _geoip().lookup(str(addr))
    code = getattr(result, "country_code", "") or ""
    return code, (getattr(result, "country_name", "") or "") if code else ""


def remote_ip_details(value: str | None) -> dict[str, Any]:
    """GuardDuty's remoteIpDetails: address, country and organisation (ASN name) when known."""
    if not value:
        return {}
    addr = parse_ip(value)
    if addr is None:
        return {"ipAddressV4": value}  # kept as logged (a hostname or anonymised value)
    details: dict[str, Any] = {"ipAddressV6" if addr.version == 6 else "ipAddressV4": str(addr)}
    if not addr.is_private:
        result = _geoip().lookup(str(addr))
        if getattr(result, "country_code", ""):
            details["country"] = {"countryCode": result.country_code, "countryName": result.country_name}
        if getattr(result, "asn_name", ""):
            details["organization"] = {"asnOrg": result.asn_name, "org": result.asn_name, "isp": result.asn_name}
    return details


# --- finding blocks ---------------------------------------------------------------------------------


def bucket_details(name: str | None, *, public: bool | None = None, kind: str = "Destination") -> list[dict[str, Any]]:
    if not name:
        return []
    entry: dict[str, Any] = {"arn": f"arn:aws:s3:::{name}", "name": name, "type": kind}
    if public is not None:
        entry["publicAccess"] = {"effectivePermission": "PUBLIC" if public else "NOT_PUBLIC"}
    return [entry]


def _dt(value: Any) -> datetime:
    return value


def ct_detection(rows: list[dict[str, Any]] | dict[str, Any], finding_type: str, *, dedup_key: str, title: str,
                 description: str, hits: tuple | None = None, bucket: str | None = None, public: bool | None = None,
                 severity: float | None = None, resource_type: str | None = None,
                 extra_info: dict[str, Any] | None = None, caller_type: str = "Remote IP") -> Detection:
    """One Detection from CloudTrail rows (dicts of the frame's columns) or a group_rows() group.

    The latest row's details go into the action (GuardDuty replaces them with the latest
    occurrence); the rows themselves, up to ten, are the evidence.
    """
    if isinstance(rows, dict):
        latest, first, last, count, evidence = (rows["_latest"], rows["_first"], rows["_last"], rows["_count"],
                                                rows["_evidence"])
    else:
        ordered = sorted(rows, key=lambda r: r["event_time"])
        latest, first, last, count = ordered[-1], ordered[0]["event_time"], ordered[-1]["event_time"], len(ordered)
        evidence = [{k: r.get(k) for k in CT_EVIDENCE} for r in ordered[:EVIDENCE_ROWS]]
    resource = access_key_resource(latest)
    if resource_type:
        resource["resourceType"] = resource_type
    if bucket:
        resource["s3BucketDetails"] = bucket_details(bucket, public=public)
    api: dict[str, Any] = {
        "api": latest.get("event_name"), "serviceName": latest.get("event_source"), "callerType": caller_type,
        "userAgent": latest.get("user_agent") or "", "errorCode": latest.get("error_code") or "",
        "remoteIpDetails": remote_ip_details(latest.get("source_ip")),
    }
    if bucket:
        api["affectedResources"] = {"AWS::S3::Bucket": bucket}
    service: dict[str, Any] = {"resourceRole": "TARGET", "action": {"actionType": "AWS_API_CALL", "awsApiCallAction": api}}
    if hits:
        service.update(threat_service(hits))
    if extra_info:
        service.setdefault("additionalInfo", {}).update(extra_info)
    return Detection(type=finding_type, dedup_key=dedup_key, title=title, description=description, first_seen=first,
                     last_seen=last, count=count, resource=resource, service=service, severity=severity,
                     region=latest.get("region"), evidence=evidence)


def principal_key(row: dict[str, Any]) -> str:
    """A stable name for the calling principal (role sessions collapse to the role)."""
    if row.get("ui_type") == "AssumedRole" and row.get("ui_issuer_arn"):
        return row["ui_issuer_arn"]
    return row.get("ui_arn") or row.get("ui_principal_id") or row.get("ui_access_key_id") or "unknown"


def principal_name(row: dict[str, Any]) -> str:
    return access_key_resource(row)["accessKeyDetails"]["userName"] or row.get("ui_principal_id") or "unknown"


def rows_of(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.sort("event_time").to_dicts()


# --- cases ------------------------------------------------------------------------------------------


def event(name: str, *, source: str = "s3.amazonaws.com", ip: str = "198.51.100.20", user: str = "alice",
          ui_type: str = "IAMUser", t: str = "2024-05-01T12:00:00Z", request: Any = None, response: Any = None,
          error: str | None = None, agent: str = "aws-cli/2.15.0 Python/3.11.8 Linux/6.1.0", role: str | None = None,
          session: str | None = None, category: str = "Management", region: str = "us-east-1",
          **extra: Any) -> dict[str, Any]:
    """A CloudTrail record as AWS writes it, for labelled cases."""
    if ui_type == "Root":
        identity: dict[str, Any] = {"type": "Root", "principalId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root",
                                    "accountId": ACCOUNT, "accessKeyId": "ASIAROOTEXAMPLE00001"}
    elif ui_type == "AssumedRole":
        role = role or "app-role"
        session = session or "session"
        identity = {"type": "AssumedRole", "principalId": f"AROAEXAMPLE{role.upper()[:8]}:{session}",
                    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}", "accountId": ACCOUNT,
                    "accessKeyId": "ASIA" + f"{abs(hash((role, session))) % 10**16:016d}",
                    "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": f"AROAEXAMPLE{role.upper()[:8]}",
                                                         "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}", "userName": role},
                                       "attributes": {"creationDate": t, "mfaAuthenticated": "false"}}}
    else:
        identity = {"type": ui_type, "principalId": f"AIDA{user.upper()[:12]:0<12}EX",
                    "arn": f"arn:aws:iam::{ACCOUNT}:user/{user}", "accountId": ACCOUNT,
                    "accessKeyId": f"AKIA{user.upper()[:12]:0<12}EXMP", "userName": user}
    record: dict[str, Any] = {
        "eventVersion": "1.09", "userIdentity": identity, "eventTime": t, "eventSource": source, "eventName": name,
        "awsRegion": region, "sourceIPAddress": ip, "userAgent": agent, "requestParameters": request,
        "responseElements": response, "eventID": f"ev-{name}-{ip}-{t}-{user}", "eventType": "AwsApiCall",
        "managementEvent": category == "Management", "eventCategory": category, "recipientAccountId": ACCOUNT,
    }
    if error:
        record["errorCode"] = error
    record.update(extra)
    return record


def envelope(*records: dict[str, Any]) -> list[dict[str, Any]]:
    """Case records: one CloudTrail object holding these events."""
    return [{"Records": list(records)}]


def first_of(values: Iterable[Any]) -> Any:
    return next(iter(values), None)
