"""Policy:IAMUser/RootCredentialUsage: the root user's credentials made an API call;
Policy:IAMUser/ShortTermRootCredentialUsage: a short-term, task-scoped root session (sts:AssumeRoot,
marked `sessionContext.assumedRoot`) made one.

Calls AWS services make on the root's behalf (invokedBy set, AwsServiceEvent) are not usage; calls
from a trusted IP produce nothing. Aggregates per (root principal, API).
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from ingest.rules import CLOUDTRAIL, Case, Detection, RuleContext, group_rows, rule
from ingest.rules.threat_intel import CT_EVIDENCE, _ct, api_call_detection

ROOT_CASES = [
    Case("root lists buckets", [{"Records": [_ct("ListBuckets", "198.51.100.20", source="s3.amazonaws.com", ui_type="Root")]}],
         expect=("Policy:IAMUser/RootCredentialUsage",), expect_severity={"Policy:IAMUser/RootCredentialUsage": 2.0}),
    Case("root twice, same API: one finding of two", [{"Records": [
        _ct("CreateUser", "198.51.100.20", source="iam.amazonaws.com", ui_type="Root"),
        _ct("CreateUser", "198.51.100.21", source="iam.amazonaws.com", ui_type="Root")]}],
         expect=("Policy:IAMUser/RootCredentialUsage",), expect_count={"Policy:IAMUser/RootCredentialUsage": 2}),
    Case("an IAM user is not root", [{"Records": [_ct("ListBuckets", "198.51.100.20", source="s3.amazonaws.com")]}]),
    Case("a service acting for root", [{"Records": [_ct("ListBuckets", "198.51.100.20", ui_type="Root",
                                                        userIdentity={"type": "Root", "principalId": "123456789012",
                                                                      "invokedBy": "cloudtrail.amazonaws.com"})]}]),
    Case("root from a trusted IP", [{"Records": [_ct("ListBuckets", "198.51.100.20", ui_type="Root")]}],
         trusted_list=("198.51.100.20",)),
]


@rule(source=CLOUDTRAIL, finding_types=("Policy:IAMUser/RootCredentialUsage",), cases=ROOT_CASES)
def root_credential_usage(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    calls = frame.filter(
        (pl.col("ui_type") == "Root")
        & pl.col("ui_invoked_by").is_null()
        & (pl.col("event_type").fill_null("AwsApiCall") != "AwsServiceEvent")
        & ~pl.col("source_ip").is_in(list(ctx.trusted_ips))
        & ~pl.col("ui_assumed_root").fill_null(False)
    )
    for group in group_rows(calls, ["ui_principal_id", "event_name"], time="event_time", evidence=CT_EVIDENCE):
        detection = api_call_detection(
            group, "Policy:IAMUser/RootCredentialUsage", None,
            title="API {api} was invoked using root credentials.",
            description="API {api} was invoked using root credentials from IP address {ip}.",
        )
        detection.dedup_key = f"{group['ui_principal_id']}|{group['event_name']}"
        yield detection


def _short_term(name: str, ip: str = "198.51.100.20") -> dict:
    record = _ct(name, ip, source="iam.amazonaws.com", ui_type="Root")
    record["userIdentity"]["sessionContext"] = {"attributes": {"creationDate": "2024-05-01T11:59:00Z",
                                                               "mfaAuthenticated": "false"}, "assumedRoot": "true"}
    return record


SHORT_TERM_CASES = [
    Case("an AssumeRoot session deletes a user's login profile", [{"Records": [_short_term("DeleteLoginProfile")]}],
         expect=("Policy:IAMUser/ShortTermRootCredentialUsage",),
         expect_severity={"Policy:IAMUser/ShortTermRootCredentialUsage": 2.0}),
    Case("long-term root credentials are the other type", [{"Records": [
        _ct("DeleteLoginProfile", "198.51.100.20", source="iam.amazonaws.com", ui_type="Root")]}]),
    Case("a short-term root session from a trusted IP", [{"Records": [_short_term("DeleteLoginProfile")]}],
         trusted_list=("198.51.100.20",)),
]


@rule(source=CLOUDTRAIL, finding_types=("Policy:IAMUser/ShortTermRootCredentialUsage",), cases=SHORT_TERM_CASES)
def short_term_root_credential_usage(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    calls = frame.filter(
        (pl.col("ui_type") == "Root") & pl.col("ui_assumed_root").fill_null(False)
        & pl.col("ui_invoked_by").is_null()
        & ~pl.col("source_ip").is_in(list(ctx.trusted_ips))
    )
    for group in group_rows(calls, ["ui_principal_id", "event_name"], time="event_time", evidence=CT_EVIDENCE):
        detection = api_call_detection(
            group, "Policy:IAMUser/ShortTermRootCredentialUsage", None,
            title="API {api} was invoked using short-term root credentials.",
            description="API {api} was invoked using a short-term (AssumeRoot) root session from IP address {ip}.",
        )
        detection.dedup_key = f"{group['ui_principal_id']}|{group['event_name']}|short-term"
        yield detection
