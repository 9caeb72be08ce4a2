"""Stealth: CloudTrail logging turned off, the password policy weakened, S3 server access logging
disabled (Stealth:IAMUser/CloudTrailLoggingDisabled, Stealth:IAMUser/PasswordPolicyChange,
Stealth:S3/ServerAccessLoggingDisabled).

The frame is filtered to the few configuration calls involved (vectorised); those rows are then
walked in time order against what ctx.state knows of each trail, bucket and password policy,
because whether a call disables anything depends on the state it changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from ingest.rules import CLOUDTRAIL, Case, Detection, RuleContext, Setting, rule
from ingest.rules._ct import (
    bucket_expr,
    ct_detection,
    decode,
    envelope,
    event,
    not_service,
    principal_key,
    principal_name,
    rows_of,
    succeeded,
)

CT = "cloudtrail.amazonaws.com"
TRAIL_TYPE = "Stealth:IAMUser/CloudTrailLoggingDisabled"
TRAIL_EVENTS = ["CreateTrail", "UpdateTrail", "StartLogging", "StopLogging", "DeleteTrail", "PutEventSelectors"]


def trail_name(value: str | None) -> str:
    """Trails are named by name or ARN (arn:aws:cloudtrail:region:account:trail/NAME)."""
    value = value or ""
    return value.rsplit("trail/", 1)[-1] if value.startswith("arn:") else value


def selectors_blind(params: dict[str, Any]) -> bool | None:
    """Whether PutEventSelectors leaves the trail without management events (what GuardDuty and
    Vigil read): True = blinded, False = still logs them, None = not a selector update we can read."""
    if params.get("eventSelectors") is not None:
        return not any(s.get("includeManagementEvents", True) for s in params["eventSelectors"] or [])
    if params.get("advancedEventSelectors") is not None:
        for selector in params["advancedEventSelectors"] or []:
            for field in selector.get("fieldSelectors") or []:
                if field.get("field") == "eventCategory" and "Management" in (field.get("equals") or []):
                    return False
        return True
    return None


def _iso(value: datetime) -> str:
    return value.isoformat()


def _trail_cases() -> list[Case]:
    stop = event("StopLogging", source=CT, request={"name": "arn:aws:cloudtrail:us-east-1:123456789012:trail/main"})
    return [
        Case("StopLogging on an existing trail", envelope(stop), expect=(TRAIL_TYPE,),
             expect_severity={TRAIL_TYPE: 2.0}),
        Case("DeleteTrail", envelope(event("DeleteTrail", source=CT, request={"name": "org-trail"})), expect=(TRAIL_TYPE,)),
        Case("a failed StopLogging (trail not found)", envelope(
            event("StopLogging", source=CT, request={"name": "gone"}, error="TrailNotFoundException"))),
        Case("StartLogging is the opposite", envelope(event("StartLogging", source=CT, request={"name": "main"}))),
        Case("event selectors that drop management events", envelope(event(
            "PutEventSelectors", source=CT, request={"trailName": "main", "eventSelectors": [
                {"readWriteType": "ReadOnly", "includeManagementEvents": False,
                 "dataResources": [{"type": "AWS::S3::Object", "values": []}]}]})), expect=(TRAIL_TYPE,)),
        Case("event selectors that keep management events", envelope(event(
            "PutEventSelectors", source=CT, request={"trailName": "main", "eventSelectors": [
                {"readWriteType": "All", "includeManagementEvents": True, "dataResources": []}]}))),
        Case("UpdateTrail that stops logging other Regions", envelope(event(
            "UpdateTrail", source=CT, request={"name": "main", "isMultiRegionTrail": False})), expect=(TRAIL_TYPE,)),
        Case("UpdateTrail that only changes the prefix", envelope(event(
            "UpdateTrail", source=CT, request={"name": "main", "s3KeyPrefix": "logs"}))),
        Case("deleting the trail's bucket", envelope(
            event("CreateTrail", source=CT, request={"name": "main", "s3BucketName": "trail-logs"}, user="admin",
                  t="2024-04-01T12:00:00Z"),
            event("StartLogging", source=CT, request={"name": "main"}, user="admin", t="2024-04-01T12:00:01Z"),
            event("DeleteBucket", request={"bucketName": "trail-logs"})), expect=(TRAIL_TYPE,)),
        Case("deleting some other bucket", envelope(
            event("CreateTrail", source=CT, request={"name": "main", "s3BucketName": "trail-logs"}, user="admin",
                  t="2024-04-01T12:00:00Z"),
            event("DeleteBucket", request={"bucketName": "scratch"}))),
        Case("Terraform tears down the trail it created minutes ago", envelope(
            event("CreateTrail", source=CT, request={"name": "tmp", "s3BucketName": "tmp-logs"}, t="2024-05-01T11:50:00Z"),
            event("StartLogging", source=CT, request={"name": "tmp"}, t="2024-05-01T11:50:01Z"),
            event("DeleteTrail", source=CT, request={"name": "tmp"}, t="2024-05-01T11:58:00Z"),
            event("DeleteBucket", request={"bucketName": "tmp-logs"}, t="2024-05-01T11:58:02Z"))),
        Case("deleting a trail that was already stopped", envelope(
            event("StopLogging", source=CT, request={"name": "main"}, t="2024-05-01T11:00:00Z"),
            event("DeleteTrail", source=CT, request={"name": "main"}, t="2024-05-01T12:00:00Z")),
             expect=(TRAIL_TYPE,), expect_count={TRAIL_TYPE: 1}),
    ]


@rule(source=CLOUDTRAIL, finding_types=(TRAIL_TYPE,), cases=_trail_cases(),
      settings={"teardown_minutes": Setting(120, "a trail deleted by its own creator within this many minutes of its "
                                                 "creation is clean-up (test stacks), not evasion")},
      state="per trail: status (created/logging/stopped/blind/deleted), bucket, creator and creation time; "
            "per trail bucket: its trail")
def cloudtrail_logging_disabled(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    calls = frame.filter(
        not_service() & succeeded() & (
            ((pl.col("event_source") == CT) & pl.col("event_name").is_in(TRAIL_EVENTS))
            | ((pl.col("event_source") == "s3.amazonaws.com") & (pl.col("event_name") == "DeleteBucket"))))
    if calls.is_empty():
        return
    rows = rows_of(calls)
    teardown = timedelta(minutes=ctx.setting("teardown_minutes"))
    keys = set()
    for row in rows:
        params = decode(row["request_parameters"]) or {}
        row["_params"] = params
        if row["event_name"] == "DeleteBucket":
            keys.add(f"bucket:{params.get('bucketName')}")
        else:
            keys.add(f"trail:{trail_name(params.get('name') or params.get('trailName'))}")
    state = ctx.state_get(sorted(keys))
    for key in [k for k in keys if k.startswith("bucket:") and k in state]:
        trail_key = f"trail:{state[key]}"
        state.update(ctx.state_get([trail_key]))
    found: dict[str, list[dict[str, Any]]] = {}
    reasons: dict[str, str] = {}

    def put(key: str, value: Any) -> None:
        state[key] = value
        ctx.state_put(key, value)

    for row in rows:
        params, name = row["_params"], row["event_name"]
        who = principal_key(row)
        if name == "DeleteBucket":
            bucket = params.get("bucketName")
            trail = state.get(f"bucket:{bucket}")
            info = state.get(f"trail:{trail}") if trail else None
            if not info or info.get("status") == "deleted":
                continue
            if _torn_down_by_creator(info, who, row["event_time"], teardown):
                continue
            key = f"{trail}|bucket"
            found.setdefault(key, []).append(row)
            reasons[key] = f"the S3 bucket {bucket} that receives the trail {trail}'s logs was deleted"
            continue
        trail = trail_name(params.get("name") or params.get("trailName"))
        key = f"trail:{trail}"
        info = dict(state.get(key) or {"status": "unknown"})
        status = info["status"]
        reason = None
        if name == "CreateTrail":
            info = {"status": "created", "bucket": params.get("s3BucketName"), "creator": who,
                    "created": _iso(row["event_time"])}
        elif name == "StartLogging":
            info["status"] = "logging"
        elif name == "StopLogging":
            if status in ("unknown", "logging", "created"):
                reason = f"logging of the trail {trail} was stopped"
            info["status"] = "stopped"
        elif name == "DeleteTrail":
            if status in ("unknown", "logging") and not _torn_down_by_creator(info, who, row["event_time"], teardown):
                reason = f"the trail {trail} was deleted"
            info["status"] = "deleted"
        elif name == "PutEventSelectors":
            blind = selectors_blind(params)
            if blind and status in ("unknown", "logging", "created"):
                reason = f"the trail {trail}'s event selectors no longer include management events"
                info["status"] = "blind"
            elif blind is False and status == "blind":
                info["status"] = "logging"
        elif name == "UpdateTrail":
            if params.get("s3BucketName"):
                info["bucket"] = params["s3BucketName"]
            if status != "deleted" and (params.get("isMultiRegionTrail") is False
                                        or params.get("includeGlobalServiceEvents") is False):
                what = "other Regions" if params.get("isMultiRegionTrail") is False else "global service events"
                reason = f"the trail {trail} was updated to stop logging {what}"
        if info.get("bucket"):
            put(f"bucket:{info['bucket']}", trail)
        put(key, info)
        if reason:
            found.setdefault(trail, []).append(row)
            reasons[trail] = reason
    for trail, hits in found.items():
        latest = hits[-1]
        yield ct_detection(
            hits, TRAIL_TYPE, dedup_key=f"{trail}|{principal_key(latest)}",
            title=f"CloudTrail logging was disabled by {principal_name(latest)}.",
            description=f"{principal_name(latest)} called {latest['event_name']}: {reasons[trail]}. "
                        "Activity in the account may no longer be recorded.",
            bucket=(latest["_params"].get("bucketName") if latest["event_name"] == "DeleteBucket" else None),
        )


def _torn_down_by_creator(info: dict[str, Any], who: str, when: datetime, window: timedelta) -> bool:
    created = info.get("created")
    if not created or info.get("creator") != who:
        return False
    return when - datetime.fromisoformat(created) <= window


# --- password policy ------------------------------------------------------------------------------

POLICY_TYPE = "Stealth:IAMUser/PasswordPolicyChange"
# What an account without a custom policy enforces (IAM's default password policy).
AWS_DEFAULT_POLICY = {"minimumPasswordLength": 8, "requireSymbols": False, "requireNumbers": False,
                      "requireUppercaseCharacters": False, "requireLowercaseCharacters": False,
                      "maxPasswordAge": 0, "passwordReusePrevention": 0, "hardExpiry": False}
REQUIREMENTS = ("requireSymbols", "requireNumbers", "requireUppercaseCharacters", "requireLowercaseCharacters")


def weakening(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What the change from `before` to `after` weakened, one phrase per weakened control."""
    out = []
    old_len = int(before.get("minimumPasswordLength") or 8)
    new_len = int(after.get("minimumPasswordLength") or 8)
    if new_len < old_len:
        out.append(f"minimum length {old_len} -> {new_len}")
        if old_len - new_len >= 4 or new_len < 8:
            out.append("much shorter passwords allowed")
    for req_name in REQUIREMENTS:
        if before.get(req_name) and not after.get(req_name):
            out.append(f"{req_name} dropped")
    old_age, new_age = int(before.get("maxPasswordAge") or 0), int(after.get("maxPasswordAge") or 0)
    if old_age and (not new_age or new_age > old_age):
        out.append(f"maximum age {old_age} -> {new_age or 'never'}")
    old_reuse, new_reuse = int(before.get("passwordReusePrevention") or 0), int(after.get("passwordReusePrevention") or 0)
    if new_reuse < old_reuse:
        out.append(f"reuse prevention {old_reuse} -> {new_reuse}")
    if before.get("hardExpiry") and not after.get("hardExpiry"):
        out.append("hard expiry dropped")
    return out


def policy_severity(weakened: list[str]) -> float:
    """Low for one weakened control, Medium for two or three, High beyond (or much shorter passwords)."""
    if len(weakened) >= 4 or any("much shorter" in w for w in weakened):
        return 8.0
    return 5.0 if len(weakened) >= 2 else 2.0


STRONG = {"minimumPasswordLength": 14, "requireSymbols": True, "requireNumbers": True,
          "requireUppercaseCharacters": True, "requireLowercaseCharacters": True, "maxPasswordAge": 90,
          "passwordReusePrevention": 24}
IAM = "iam.amazonaws.com"


def _policy_cases() -> list[Case]:
    set_strong = event("UpdateAccountPasswordPolicy", source=IAM, request=STRONG, user="admin", t="2024-04-01T00:00:00Z")
    return [
        Case("a strong policy gutted", envelope(set_strong, event(
            "UpdateAccountPasswordPolicy", source=IAM, request={"minimumPasswordLength": 6}, user="mallory")),
             expect=(POLICY_TYPE,), expect_severity={POLICY_TYPE: 8.0}),
        Case("one requirement dropped", envelope(set_strong, event(
            "UpdateAccountPasswordPolicy", source=IAM, request={**STRONG, "requireSymbols": False})),
             expect=(POLICY_TYPE,), expect_severity={POLICY_TYPE: 2.0}),
        Case("two requirements dropped", envelope(set_strong, event(
            "UpdateAccountPasswordPolicy", source=IAM,
            request={**STRONG, "requireSymbols": False, "passwordReusePrevention": 5})),
             expect=(POLICY_TYPE,), expect_severity={POLICY_TYPE: 5.0}),
        Case("the policy deleted", envelope(set_strong, event("DeleteAccountPasswordPolicy", source=IAM)),
             expect=(POLICY_TYPE,), expect_severity={POLICY_TYPE: 8.0}),
        Case("a policy made stronger", envelope(event(
            "UpdateAccountPasswordPolicy", source=IAM, request={**STRONG, "minimumPasswordLength": 16}))),
        Case("the same strong policy set again", envelope(set_strong, event(
            "UpdateAccountPasswordPolicy", source=IAM, request=STRONG, t="2024-05-01T00:00:00Z"))),
        Case("a failed weakening", envelope(set_strong, event(
            "UpdateAccountPasswordPolicy", source=IAM, request={"minimumPasswordLength": 6}, error="AccessDenied"))),
    ]


@rule(source=CLOUDTRAIL, finding_types=(POLICY_TYPE,), cases=_policy_cases(),
      state="the account's current password policy (as last set), to measure how much a change weakens it")
def password_policy_change(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    calls = frame.filter(not_service() & succeeded() & (pl.col("event_source") == IAM)
                         & pl.col("event_name").is_in(["UpdateAccountPasswordPolicy", "DeleteAccountPasswordPolicy"]))
    if calls.is_empty():
        return
    key = f"policy:{ctx.aws_account_id}"
    current = ctx.state_get([key]).get(key)
    for row in rows_of(calls):
        known = current is not None
        before = current or AWS_DEFAULT_POLICY
        if row["event_name"] == "DeleteAccountPasswordPolicy":
            after = AWS_DEFAULT_POLICY
            weakened = weakening(before, after) if known else ["previous policy unknown"]
            weakened = [*weakened, "policy deleted"] if weakened else []
            severity = 8.0 if known and weakened else 5.0
        else:
            after = {**AWS_DEFAULT_POLICY, **(decode(row["request_parameters"]) or {})}
            weakened = weakening(before, after)
            severity = policy_severity(weakened)
        current = after
        if not weakened:
            continue
        yield ct_detection(
            [row], POLICY_TYPE, dedup_key=f"{ctx.aws_account_id}|{row['event_time'].isoformat()}",
            title=f"The account password policy was weakened by {principal_name(row)}.",
            description=f"{principal_name(row)} called {row['event_name']}: " + "; ".join(weakened) + ".",
            severity=severity, extra_info={"weakened": weakened},
        )
    ctx.state_put(key, current)


# --- S3 server access logging ----------------------------------------------------------------------

S3_LOG_TYPE = "Stealth:S3/ServerAccessLoggingDisabled"


def _logging_cases() -> list[Case]:
    off = event("PutBucketLogging", request={"bucketName": "critical-data", "logging": "",
                                             "BucketLoggingStatus": {"xmlns": "http://s3.amazonaws.com/doc/2006-03-01/"}})
    on = event("PutBucketLogging", request={"bucketName": "critical-data", "logging": "", "BucketLoggingStatus": {
        "LoggingEnabled": {"TargetBucket": "log-bucket", "TargetPrefix": "logs/"}}}, t="2024-05-01T11:00:00Z")
    return [
        Case("logging turned off", envelope(on, off), expect=(S3_LOG_TYPE,), expect_severity={S3_LOG_TYPE: 2.0}),
        Case("logging off on a bucket not seen before", envelope(off), expect=(S3_LOG_TYPE,)),
        Case("logging turned on", envelope(on)),
        Case("turning off failed", envelope({**off, "errorCode": "AccessDenied"})),
        Case("no logging status in the request", envelope(event("PutBucketLogging", request={"bucketName": "b"}))),
        Case("off twice: one finding", envelope(on, off, {**off, "eventTime": "2024-05-01T12:05:00Z", "eventID": "x2"}),
             expect=(S3_LOG_TYPE,), expect_count={S3_LOG_TYPE: 1}),
    ]


@rule(source=CLOUDTRAIL, finding_types=(S3_LOG_TYPE,), cases=_logging_cases(),
      state="per bucket: whether server access logging is on, so that switching off a bucket already off is quiet")
def server_access_logging_disabled(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    calls = frame.filter(not_service() & succeeded() & (pl.col("event_name") == "PutBucketLogging")
                         & (pl.col("event_source") == "s3.amazonaws.com")
                         & pl.col("request_parameters").str.contains("BucketLoggingStatus", literal=True)
                         ).with_columns(bucket_expr().alias("bucket"),
                                        pl.col("request_parameters").str.contains('"LoggingEnabled"', literal=True)
                                        .alias("enabled"))
    if calls.is_empty():
        return
    keys = [f"log:{b}" for b in calls["bucket"].drop_nulls().unique().to_list()]
    known = ctx.state_get(keys)
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows_of(calls):
        key = f"log:{row['bucket']}"
        if not row["enabled"] and known.get(key, True):
            found.setdefault(row["bucket"], []).append(row)
        known[key] = row["enabled"]
        ctx.state_put(key, row["enabled"])
    for bucket, rows in found.items():
        latest = rows[-1]
        yield ct_detection(
            rows, S3_LOG_TYPE, dedup_key=bucket, bucket=bucket,
            title=f"Server access logging was disabled for the S3 bucket {bucket}.",
            description=f"{principal_name(latest)} turned off server access logging for {bucket}; requests to the "
                        "bucket are no longer recorded.",
        )
