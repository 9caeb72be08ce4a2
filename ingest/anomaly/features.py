"""From a CloudTrail frame to per-principal, per-hour observations (feature -> value -> events).

Input frame schema (one row per CloudTrail event; `cloudtrail_frame_adapt` maps the ingest
pipeline's column names onto these and fills missing optional columns with nulls):

    event_time        Datetime (UTC)           required
    account_id        str (12 digits)           required (recipientAccountId)
    region            str                       required (awsRegion)
    event_source      str  e.g. iam.amazonaws.com   required
    event_name        str                       required
    principal_type    str  IAMUser | AssumedRole | Root | FederatedUser | AWSService | AWSAccount
    principal_arn     str
    principal_id      str
    user_name         str
    access_key_id     str
    session_issuer_arn str (the role behind an AssumedRole session)
    error_code        str | null
    source_ip         str  (an address, or a service name such as ec2.amazonaws.com)
    user_agent        str
    event_id          str | null                optional (evidence)
    request_parameters str (JSON) | null        optional (instance types/counts of RunInstances; S3 buckets)
    event_category    str  Management | Data    optional (S3 data events go to the S3 model, ingest/anomaly/s3.py)

Principals: an IAM user or root by ARN; an assumed role by its role (all sessions share one
baseline) except EC2 instance-role sessions (session name `i-…`), profiled per instance.
AWS services acting on their own behalf are not principals and are skipped.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import polars as pl

from ingest.anomaly.categories import category_of

REQUIRED = ("event_time", "account_id", "region", "event_source", "event_name")
OPTIONAL = ("principal_type", "principal_arn", "principal_id", "user_name", "access_key_id", "session_issuer_arn",
            "error_code", "source_ip", "user_agent", "event_id", "request_parameters", "event_category")

# Names the ingest pipeline (ingest.parsers.cloudtrail.SCHEMA: ui_* for userIdentity) or a raw
# CloudTrail flattening use for our columns.
ALIASES = {
    "ui_type": "principal_type", "ui_arn": "principal_arn", "ui_principal_id": "principal_id",
    "ui_user_name": "user_name", "ui_access_key_id": "access_key_id", "ui_issuer_arn": "session_issuer_arn",
    "eventTime": "event_time", "time": "event_time",
    "recipientAccountId": "account_id",
    "awsRegion": "region", "aws_region": "region",
    "eventSource": "event_source", "eventName": "event_name",
    "user_type": "principal_type", "identity_type": "principal_type", "userIdentity.type": "principal_type",
    "user_arn": "principal_arn", "arn": "principal_arn", "identity_arn": "principal_arn",
    "userIdentity.arn": "principal_arn",
    "principalId": "principal_id", "userName": "user_name", "accessKeyId": "access_key_id",
    "session_issuer": "session_issuer_arn", "sessionIssuerArn": "session_issuer_arn",
    "errorCode": "error_code", "sourceIPAddress": "source_ip", "source_ip_address": "source_ip",
    "userAgent": "user_agent", "eventID": "event_id", "requestParameters": "request_parameters",
    "eventCategory": "event_category",
}

SKIPPED_PRINCIPAL_TYPES = ("AWSService",)
INSTANCE_SESSION = re.compile(r"^i-[0-9a-f]{8,17}$")


def cloudtrail_frame_adapt(frame: pl.DataFrame) -> pl.DataFrame:
    """Rename known aliases to the schema above and add missing optional columns as nulls."""
    renames = {old: new for old, new in ALIASES.items() if old in frame.columns and new not in frame.columns}
    if renames:
        frame = frame.rename(renames)
    if "account_id" not in frame.columns:
        # The account the call was made in: recipientAccountId, else the caller's own account.
        sources = [c for c in ("recipient_account_id", "ui_account_id") if c in frame.columns]
        if sources:
            frame = frame.with_columns(pl.coalesce(sources).alias("account_id"))
    if "event_type" in frame.columns:
        # AWS's own service events are not anybody's behaviour.
        frame = frame.filter(pl.col("event_type").fill_null("") != "AwsServiceEvent")
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"CloudTrail frame lacks required columns {missing}")
    extra = [pl.lit(None, dtype=pl.String).alias(c) for c in OPTIONAL if c not in frame.columns]
    if extra:
        frame = frame.with_columns(extra)
    # Only the model's columns: joins and filters below then copy a fraction of the parser's frame.
    frame = frame.select(*REQUIRED, *OPTIONAL)
    if frame.schema["event_time"] == pl.String:
        frame = frame.with_columns(pl.col("event_time").str.to_datetime(time_zone="UTC"))
    elif getattr(frame.schema["event_time"], "time_zone", None) is None:
        frame = frame.with_columns(pl.col("event_time").dt.replace_time_zone("UTC"))
    return frame


# -- networks and ASNs ---------------------------------------------------------------------


@lru_cache(maxsize=200_000)
def network_of(source: str | None) -> str:
    """The /24 (IPv4) or /48 (IPv6) of an address; a service name or junk stays as it is."""
    if not source:
        return "-"
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        return source[:100]
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


class AsnLookup:
    """ASN organisation of an address, from geoip2fast's bundled data (loaded once, on first use).

    geoip2fast is MIT-licensed; its data files are built from MaxMind GeoLite2 (GeoLite2 EULA,
    attribution: "This product includes GeoLite2 data created by MaxMind, available from
    https://www.maxmind.com"). Vigil ships no copy of that data; it reads the installed package.
    """

    def __init__(self) -> None:
        self._db: Any = None
        self._failed = False

    def _load(self) -> Any:
        if self._db is None and not self._failed:
            try:
                from geoip2fast import GeoIP2Fast

                self._db = GeoIP2Fast(geoip2fast_data_file="geoip2fast-asn.dat.gz", verbose=False)
            except Exception:  # the ASN is an extra signal: without the data the model still works
                self._failed = True
        return self._db

    @lru_cache(maxsize=200_000)  # noqa: B019 - one process-wide instance, addresses repeat heavily
    def asn(self, source: str | None) -> str:
        if not source:
            return "-"
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return "service:" + source[:80] if "." in source else "-"
        if address.is_private or address.is_loopback or address.is_link_local:
            return "private"
        db = self._load()
        if db is None or address.version != 4:
            return "-"
        try:
            name = db.lookup(source).asn_name
        except Exception:
            return "-"
        return name or "-"


ASN = AsnLookup()


# -- user agents ---------------------------------------------------------------------------

_UA_KNOWN = re.compile(r"(Terraform|aws-cli|Boto3|botocore|aws-sdk-[a-z0-9]+|Mozilla|console\.amazonaws\.com|"
                       r"S3Console|AWSPowerShell|aws-internal|Pulumi|CloudFormation|HashiCorp)"
                       r"(?:/v?(\d+))?", re.I)
_UA_TOKEN = re.compile(r"^\[?([A-Za-z][A-Za-z0-9._-]*?)(?:[_-][0-9a-f-]{8,})?(?:/v?(\d+))?(?:[\s/;,.#\[\]()]|$)")


@lru_cache(maxsize=50_000)
def user_agent_family(user_agent: str | None) -> tuple[str, str]:
    """(family, family/major): `aws-cli/2.13.5 Python/3.11` -> ("aws-cli", "aws-cli/2"). Minor
    versions do not matter, so an upgrade within a major version is the same user agent."""
    if not user_agent:
        return "-", "-"
    ua = user_agent.strip()
    if "Terraform/" in ua:  # Terraform's UA starts with APN/HashiCorp tokens: name the tool
        match = re.search(r"Terraform/(\d+)", ua)
        return "Terraform", f"Terraform/{match.group(1) if match else '?'}"
    match = _UA_TOKEN.match(ua) or _UA_KNOWN.search(ua)
    if not match:
        return ua[:40], ua[:40]
    family = match.group(1)[:60]
    major = match.group(2)
    return family, f"{family}/{major}" if major else family


# -- principals ----------------------------------------------------------------------------


def principal_key(principal_type: str | None, arn: str | None, issuer_arn: str | None,
                  principal_id: str | None) -> str | None:
    """The baseline a call counts under, or None for service-originated calls."""
    kind = principal_type or ""
    if kind in SKIPPED_PRINCIPAL_TYPES:
        return None
    if kind == "AssumedRole":
        session = (arn or "").rsplit("/", 1)[-1]
        role = issuer_arn or (arn or "").rsplit("/", 1)[0]
        if INSTANCE_SESSION.match(session):
            return f"{role}#{session}"
        return role or principal_id
    return arn or principal_id or None


def principal_kind(principal_type: str | None, key: str) -> str:
    if principal_type == "AssumedRole" and "#i-" in key:
        return "InstanceRole"
    return principal_type or "Unknown"


# -- observations --------------------------------------------------------------------------

EVENT_FEATURES = ("region", "service", "api", "category", "network", "asn", "ua", "ua_family", "error")


def _error_values(codes: Iterable[str | None]) -> dict[str, int]:
    """Error codes with a log2 burst bucket, so 40 AccessDenied in an hour differs from one."""
    counts: dict[str, int] = {}
    for code in codes:
        if code:
            counts[code] = counts.get(code, 0) + 1
    return {f"{code}:x{min(n.bit_length(), 6)}": n for code, n in counts.items()}


def enrich(frame: pl.DataFrame, *, asn_lookup: bool = True) -> pl.DataFrame:
    """Add the derived columns the model reads: principal key/kind, hour, network, ASN, UA, category."""
    frame = cloudtrail_frame_adapt(frame)
    # Derived per distinct value (a few thousand at most), then joined back: no per-event Python.
    # principal_key() as one expression (same rules; tested against it).
    ptype, arn = pl.col("principal_type").fill_null(""), pl.col("principal_arn")
    session = arn.str.extract(r"/([^/]+)$")
    role = pl.coalesce(pl.col("session_issuer_arn"), arn.str.replace(r"/[^/]+$", ""))
    pkey = (pl.when(ptype.is_in(list(SKIPPED_PRINCIPAL_TYPES))).then(pl.lit(None, dtype=pl.String))
            .when((ptype == "AssumedRole") & session.str.contains(INSTANCE_SESSION.pattern).fill_null(False))
            .then(role + "#" + session)
            .when(ptype == "AssumedRole").then(pl.coalesce(role, pl.col("principal_id")))
            .otherwise(pl.coalesce(arn, pl.col("principal_id"))))
    ips = frame.select("source_ip").unique()
    ip_values = ips["source_ip"].to_list()
    ips = ips.with_columns(
        pl.Series("network", [network_of(v) for v in ip_values], dtype=pl.String),
        pl.Series("asn", [ASN.asn(v) if asn_lookup else "-" for v in ip_values], dtype=pl.String),
    )
    uas = frame.select("user_agent").unique()
    parsed = [user_agent_family(v) for v in uas["user_agent"].to_list()]
    uas = uas.with_columns(pl.Series("ua_family", [p[0] for p in parsed], dtype=pl.String),
                           pl.Series("ua", [p[1] for p in parsed], dtype=pl.String))
    apis = frame.select("event_source", "event_name").unique()
    apis = apis.with_columns(
        pl.Series("category", [category_of(s or "", n or "") for s, n in apis.iter_rows()], dtype=pl.String),
        (pl.col("event_source").fill_null("").str.replace(r"\.amazonaws\.com$", "")).alias("service"),
    ).with_columns((pl.col("service") + ":" + pl.col("event_name").fill_null("")).alias("api"))
    # A frame has a handful of principals: the key's regexes run once per distinct identity.
    identity = ["principal_type", "principal_arn", "session_issuer_arn", "principal_id"]
    principals = frame.select(identity).unique().with_columns(pkey.alias("pkey"))
    frame = (
        frame.join(principals, on=identity, how="left", nulls_equal=True)
        .join(ips, on="source_ip", how="left", nulls_equal=True)
        .join(uas, on="user_agent", how="left", nulls_equal=True)
        .join(apis, on=["event_source", "event_name"], how="left", nulls_equal=True)
        .filter(pl.col("pkey").is_not_null())
        .with_columns(
            (pl.col("event_time").dt.truncate("1h").dt.epoch("s")).alias("hour_ts"),
            pl.col("event_time").dt.hour().cast(pl.String).alias("hour"),
        )
    )
    return frame


def feature_counts(frame: pl.DataFrame, keys: list[str], features: dict[str, pl.Expr], *,
                   weight: str | None = None) -> dict[tuple, dict[str, dict[str, int]]]:
    """keys -> feature -> value (text, "-" for none) -> events (rows, or the sum of `weight`). One
    long (feature, value) frame and one group-by, instead of a group-by per feature."""
    counted = pl.col(weight) if weight else pl.lit(1, dtype=pl.UInt32)
    long = (frame.select(*keys, *(expr.cast(pl.String).fill_null("-").alias(name) for name, expr in features.items()),
                         counted.alias("_n"))
            .unpivot(index=[*keys, "_n"], on=list(features), variable_name="_f", value_name="_v")
            .group_by([*keys, "_f", "_v"]).agg(pl.col("_n").sum()))
    out: dict[tuple, dict[str, dict[str, int]]] = {}
    for *key, feature, value, n in long.iter_rows():
        out.setdefault(tuple(key), {}).setdefault(feature, {})[value or "-"] = n
    return out


def observations(frame: pl.DataFrame) -> dict[tuple[str, str, int], dict[str, dict[str, int]]]:
    """(account, principal key, hour) -> feature -> value -> events, from an enriched frame."""
    features = [f for f in EVENT_FEATURES if f != "error"] + ["hour"]
    # Events of one principal-hour repeat the same values: collapse identical rows first, so the
    # per-feature counts below work on distinct combinations, not on every event.
    keys = ["account_id", "pkey", "hour_ts"]
    combos = frame.group_by(keys + features).len()
    out = feature_counts(combos, keys, {f: pl.col(f) for f in features}, weight="len")
    errors = frame.filter(pl.col("error_code").is_not_null() & (pl.col("error_code") != ""))
    if errors.height:
        grouped = errors.group_by("account_id", "pkey", "hour_ts").agg(pl.col("error_code"))
        for account, pkey, hour_ts, codes in grouped.iter_rows():
            out.setdefault((account, pkey, hour_ts), {})["error"] = _error_values(codes)
    return out


def instance_launch(request_parameters: str | dict | None) -> tuple[str, int]:
    """(instance type, instance count) of a RunInstances-like request, from its parameters."""
    if not request_parameters:
        return "", 0
    try:
        params = json.loads(request_parameters) if isinstance(request_parameters, str) else request_parameters
    except (ValueError, TypeError):
        return "", 0
    if not isinstance(params, dict):
        return "", 0
    spec = params.get("launchSpecification") or {}
    kind = str(params.get("instanceType") or (spec.get("instanceType") if isinstance(spec, dict) else "") or "")
    target = params.get("targetCapacitySpecification") or {}
    count = (params.get("maxCount") or params.get("minCount") or params.get("instanceCount")
             or (target.get("totalTargetCapacity") if isinstance(target, dict) else None) or 1)
    try:
        count = int(count)
    except (TypeError, ValueError):
        count = 1
    instances = params.get("instancesSet", {})
    if isinstance(instances, dict) and isinstance(instances.get("items"), list):
        items = instances["items"]
        count = max(count, sum(int(i.get("maxCount") or i.get("minCount") or 1) for i in items if isinstance(i, dict)))
    return kind, count
