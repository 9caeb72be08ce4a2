"""S3 exposure: Block Public Access turned off (account or bucket) and bucket policies or ACLs that
grant access to everyone (Policy:S3/AccountBlockPublicAccessDisabled,
Policy:S3/BucketBlockPublicAccessDisabled, Policy:S3/BucketAnonymousAccessGranted,
Policy:S3/BucketPublicAccessGranted).

The decision reads the documents in requestParameters: the four Block Public Access flags, each
policy statement (Allow, a wildcard principal, and no condition that pins callers to an address,
network, organisation or account), and each ACL grant (the AllUsers / AuthenticatedUsers groups,
canned ACLs, x-amz-grant-* headers). Block Public Access settings seen earlier are kept in
ctx.state so that a grant BPA already neutralises stays quiet.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl

from ingest.rules import CLOUDTRAIL, Case, Detection, RuleContext, rule
from ingest.rules._ct import (
    bucket_expr,
    ct_detection,
    decode,
    envelope,
    event,
    not_service,
    principal_name,
    rows_of,
    succeeded,
)

ACCOUNT_BPA = "Policy:S3/AccountBlockPublicAccessDisabled"
BUCKET_BPA = "Policy:S3/BucketBlockPublicAccessDisabled"
ANONYMOUS = "Policy:S3/BucketAnonymousAccessGranted"
AUTHENTICATED = "Policy:S3/BucketPublicAccessGranted"
FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
BPA_RULE = "s3_policy.block_public_access_disabled"
ALL_USERS = "acs.amazonaws.com/groups/global/AllUsers"
AUTH_USERS = "acs.amazonaws.com/groups/global/AuthenticatedUsers"
# Condition keys that confine a wildcard principal to known callers (any one of them suffices:
# conditions are ANDed).
RESTRICTING_KEYS = {
    "aws:sourceip", "aws:sourcevpc", "aws:sourcevpce", "aws:principalorgid", "aws:principalorgpaths",
    "aws:principalaccount", "aws:principalarn", "aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid",
    "aws:sourceorgpaths", "aws:userid", "aws:username", "aws:calledvia", "s3:dataaccesspointaccount",
    "s3:dataaccesspointarn", "aws:principalservicename", "aws:resourceaccount", "aws:resourceorgid",
}


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def bpa_config(params: dict[str, Any]) -> dict[str, bool] | None:
    config = params.get("PublicAccessBlockConfiguration")
    if not isinstance(config, dict):
        return None
    return {flag: _flag(config.get(flag)) for flag in FLAGS}


def _cases_bpa() -> list[Case]:
    off = {"PublicAccessBlockConfiguration": {f: False for f in FLAGS}}
    on = {"PublicAccessBlockConfiguration": {f: True for f in FLAGS}}
    return [
        Case("bucket BPA deleted", envelope(event("DeleteBucketPublicAccessBlock",
                                                  request={"bucketName": "corporate-documents", "publicAccessBlock": ""})),
             expect=(BUCKET_BPA,), expect_severity={BUCKET_BPA: 2.0}),
        Case("bucket BPA flags switched off", envelope(event("PutBucketPublicAccessBlock",
                                                             request={"bucketName": "docs", **off})), expect=(BUCKET_BPA,)),
        Case("bucket BPA switched on", envelope(event("PutBucketPublicAccessBlock", request={"bucketName": "docs", **on}))),
        Case("bucket BPA call without a readable configuration", envelope(event(
            "PutBucketPublicAccessBlock", request={"bucketName": "docs"}))),
        Case("deleting BPA failed", envelope(event("DeleteBucketPublicAccessBlock", request={"bucketName": "docs"},
                                                   error="AccessDenied"))),
        Case("account BPA off", envelope(event("PutAccountPublicAccessBlock", request={
            **off, "Host": "123456789012.s3-control.us-east-1.amazonaws.com"})), expect=(ACCOUNT_BPA,)),
        Case("account BPA deleted", envelope(event("DeleteAccountPublicAccessBlock", request={})), expect=(ACCOUNT_BPA,)),
        Case("account BPA tightened", envelope(event("PutAccountPublicAccessBlock", request=on))),
        Case("the same flag switched off twice: one finding of one", envelope(
            event("PutBucketPublicAccessBlock", request={"bucketName": "docs", "PublicAccessBlockConfiguration": {
                **{f: True for f in FLAGS}, "BlockPublicPolicy": False}}, t="2024-05-01T11:00:00Z"),
            event("PutBucketPublicAccessBlock", request={"bucketName": "docs", "PublicAccessBlockConfiguration": {
                **{f: True for f in FLAGS}, "BlockPublicPolicy": False}})), expect=(BUCKET_BPA,),
             expect_count={BUCKET_BPA: 1}),
    ]


@rule(source=CLOUDTRAIL, finding_types=(ACCOUNT_BPA, BUCKET_BPA), cases=_cases_bpa(),
      state="Block Public Access flags per bucket and for the account (unknown = on, the default for new buckets)")
def block_public_access_disabled(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    calls = frame.filter(not_service() & succeeded() & (pl.col("event_source") == "s3.amazonaws.com")
                         & pl.col("event_name").is_in([
        "PutBucketPublicAccessBlock", "DeleteBucketPublicAccessBlock",
        "PutAccountPublicAccessBlock", "DeleteAccountPublicAccessBlock"])).with_columns(bucket_expr().alias("bucket"))
    if calls.is_empty():
        return
    rows = rows_of(calls)
    keys = {f"bpa:{r['bucket']}" if "Bucket" in r["event_name"] else "bpa:account" for r in rows}
    known = ctx.state_get(sorted(keys))
    found: dict[tuple[str, str], tuple[list[dict[str, Any]], list[str]]] = {}
    for row in rows:
        account = "Account" in row["event_name"]
        key = "bpa:account" if account else f"bpa:{row['bucket']}"
        if row["event_name"].startswith("Delete"):
            new = dict.fromkeys(FLAGS, False)
        else:
            new = bpa_config(decode(row["request_parameters"]) or {})
            if new is None:
                continue
        old = known.get(key) or dict.fromkeys(FLAGS, True)
        turned_off = [f for f in FLAGS if old.get(f) and not new[f]]
        known[key] = new
        ctx.state_put(key, new)
        if turned_off:
            finding_type = ACCOUNT_BPA if account else BUCKET_BPA
            entry = found.setdefault((finding_type, key), ([], []))
            entry[0].append(row)
            entry[1].extend(f for f in turned_off if f not in entry[1])
    for (finding_type, key), (hits, flags) in found.items():
        latest = hits[-1]
        bucket = None if finding_type == ACCOUNT_BPA else latest["bucket"]
        where = "the account" if bucket is None else f"the S3 bucket {bucket}"
        yield ct_detection(
            hits, finding_type, dedup_key=key, bucket=bucket,
            title=f"Amazon S3 Block Public Access was disabled for {where}.",
            description=f"{principal_name(latest)} called {latest['event_name']}, turning off "
                        f"{', '.join(flags)} for {where}; policies and ACLs may now expose data publicly.",
            extra_info={"disabledSettings": flags},
        )


# --- grants to everyone ----------------------------------------------------------------------------


def _principals(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal is None:
        return []
    if isinstance(principal, str):
        return [principal]
    out: list[str] = []
    if isinstance(principal, dict):
        for key in ("AWS", "CanonicalUser"):
            value = principal.get(key)
            out += [value] if isinstance(value, str) else [v for v in (value or []) if isinstance(v, str)]
    return out


def _restricted(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition")
    if not isinstance(condition, dict):
        return False
    for clauses in condition.values():
        if isinstance(clauses, dict) and any(k.lower() in RESTRICTING_KEYS for k in clauses):
            return True
    return False


def policy_public_statements(policy: Any) -> list[dict[str, Any]]:
    """Allow statements open to any principal without a restricting condition."""
    if isinstance(policy, str):
        policy = decode(policy)
    if not isinstance(policy, dict):
        return []
    statements = policy.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    out = []
    for statement in statements or []:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        if "*" in _principals(statement) and not _restricted(statement):
            out.append(statement)
    return out


def acl_grantees(params: dict[str, Any]) -> set[str]:
    """'anonymous' and/or 'authenticated' for the groups an ACL change grants access to."""
    out: set[str] = set()
    canned = params.get("x-amz-acl")
    for value in canned if isinstance(canned, list) else [canned]:
        if value in ("public-read", "public-read-write"):
            out.add("anonymous")
        elif value == "authenticated-read":
            out.add("authenticated")
    for header, value in params.items():
        if header.startswith("x-amz-grant-"):
            text = " ".join(value) if isinstance(value, list) else str(value)
            out |= _groups(text)
    acl = (params.get("AccessControlPolicy") or {}) if isinstance(params.get("AccessControlPolicy"), dict) else {}
    grants = ((acl.get("AccessControlList") or {}).get("Grant")) if isinstance(acl.get("AccessControlList"), dict) else None
    if isinstance(grants, dict):
        grants = [grants]
    for grant in grants or []:
        grantee = grant.get("Grantee") if isinstance(grant, dict) else None
        if isinstance(grantee, dict):
            out |= _groups(str(grantee.get("URI") or ""))
    return out


def _groups(text: str) -> set[str]:
    found = set()
    if ALL_USERS in text:
        found.add("anonymous")
    if AUTH_USERS in text:
        found.add("authenticated")
    return found


PUBLIC_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Public", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject",
     "Resource": "arn:aws:s3:::site/*"}]}


def _cases_grants() -> list[Case]:
    grant_all = {"AccessControlList": {"Grant": [
        {"Grantee": {"xsi:type": "CanonicalUser", "ID": "abc"}, "Permission": "FULL_CONTROL"},
        {"Grantee": {"xsi:type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "READ"}]}}
    grant_auth = {"AccessControlList": {"Grant": {
        "Grantee": {"xsi:type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"},
        "Permission": "READ"}}}
    return [
        Case("bucket policy open to everyone", envelope(event("PutBucketPolicy", request={
            "bucketName": "site", "bucketPolicy": PUBLIC_POLICY, "policy": [""]})),
             expect=(ANONYMOUS,), expect_severity={ANONYMOUS: 8.0}),
        Case("policy given as a JSON string, Principal '*'", envelope(event("PutBucketPolicy", request={
            "bucketName": "site", "bucketPolicy": '{"Statement":[{"Effect":"Allow","Principal":"*",'
                                                  '"Action":"s3:*","Resource":"*"}]}'})), expect=(ANONYMOUS,)),
        Case("policy for the CloudTrail service", envelope(event("PutBucketPolicy", request={
            "bucketName": "logs", "bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": {
                "Service": "cloudtrail.amazonaws.com"}, "Action": "s3:GetBucketAcl", "Resource": "*"}]}}))),
        Case("policy for another account (cross-account, not public)", envelope(event("PutBucketPolicy", request={
            "bucketName": "share", "bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": {
                "AWS": "arn:aws:iam::193672423079:root"}, "Action": "s3:GetObject", "Resource": "*"}]}}))),
        Case("wildcard principal pinned to an organisation and network", envelope(event("PutBucketPolicy", request={
            "bucketName": "internal", "bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": "*",
                                                                      "Action": "s3:GetObject", "Resource": "*",
                                                                      "Condition": {"StringEquals": {
                                                                          "aws:PrincipalOrgID": "o-abc123"}}}]}}))),
        Case("public policy refused (Block Public Access)", envelope(event("PutBucketPolicy", request={
            "bucketName": "site", "bucketPolicy": PUBLIC_POLICY}, error="AccessDenied"))),
        Case("Deny statement with a wildcard principal", envelope(event("PutBucketPolicy", request={
            "bucketName": "b", "bucketPolicy": {"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                                                              "Resource": "*", "Condition": {"Bool": {
                                                                  "aws:SecureTransport": "false"}}}]}}))),
        Case("ACL grant to AllUsers", envelope(event("PutBucketAcl", request={
            "bucketName": "site", "acl": "", "AccessControlPolicy": grant_all})), expect=(ANONYMOUS,)),
        Case("ACL grant to AuthenticatedUsers", envelope(event("PutBucketAcl", request={
            "bucketName": "site", "AccessControlPolicy": grant_auth})), expect=(AUTHENTICATED,)),
        Case("canned public-read ACL on a new bucket", envelope(event("CreateBucket", request={
            "bucketName": "site", "x-amz-acl": ["public-read"]})), expect=(ANONYMOUS,)),
        Case("canned private ACL", envelope(event("CreateBucket", request={"bucketName": "site", "x-amz-acl": "private"}))),
        Case("grant header to authenticated users", envelope(event("PutBucketAcl", request={
            "bucketName": "site", "x-amz-grant-read": ["uri=http://acs.amazonaws.com/groups/global/AuthenticatedUsers"]})),
             expect=(AUTHENTICATED,)),
        Case("public ACL on a bucket whose BPA ignores public ACLs", envelope(
            event("PutBucketPublicAccessBlock", request={"bucketName": "site", "PublicAccessBlockConfiguration": {
                f: True for f in FLAGS}}, t="2024-05-01T11:00:00Z"),
            event("PutBucketAcl", request={"bucketName": "site", "AccessControlPolicy": grant_all}))),
    ]


@rule(source=CLOUDTRAIL, finding_types=(ANONYMOUS, AUTHENTICATED), cases=_cases_grants(),
      state="reads the Block Public Access flags kept by s3_policy.block_public_access_disabled")
def bucket_access_granted(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    calls = frame.filter(not_service() & succeeded() & (pl.col("event_source") == "s3.amazonaws.com")
                         & pl.col("event_name").is_in(["PutBucketPolicy", "PutBucketAcl",
                                                                                  "CreateBucket"])
                         & pl.col("request_parameters").str.contains(
                             r'\*|AllUsers|AuthenticatedUsers|public-read|authenticated-read')
                         ).with_columns(bucket_expr().alias("bucket"))
    if calls.is_empty():
        return
    rows = rows_of(calls)
    bpa = ctx.state.get(BPA_RULE, ["bpa:account", *{f"bpa:{r['bucket']}" for r in rows}]) if ctx.state else {}
    found: dict[tuple[str, str], tuple[list[dict[str, Any]], list[str]]] = {}
    for row in rows:
        params = decode(row["request_parameters"]) or {}
        grants: list[tuple[str, str]] = []
        if row["event_name"] == "PutBucketPolicy":
            for statement in policy_public_statements(params.get("bucketPolicy")):
                actions = statement.get("Action")
                grants.append((ANONYMOUS, f"policy statement {statement.get('Sid') or ''} allows {actions} to any "
                                          "principal".replace("  ", " ")))
        else:
            blocked = any((bpa.get(k) or {}).get("IgnorePublicAcls") for k in ("bpa:account", f"bpa:{row['bucket']}"))
            if blocked:
                continue  # Block Public Access makes S3 ignore public ACLs
            for group in sorted(acl_grantees(params)):
                grants.append((ANONYMOUS if group == "anonymous" else AUTHENTICATED,
                               "ACL grants access to " + ("everyone (AllUsers)" if group == "anonymous"
                                                          else "all authenticated AWS users")))
        for finding_type, why in grants:
            entry = found.setdefault((finding_type, row["bucket"] or ""), ([], []))
            entry[0].append(row)
            if why not in entry[1]:
                entry[1].append(why)
    for (finding_type, bucket), (hits, why) in found.items():
        latest = hits[-1]
        who = "anyone on the internet" if finding_type == ANONYMOUS else "all authenticated AWS users"
        yield ct_detection(
            hits, finding_type, dedup_key=bucket, bucket=bucket, public=True,
            title=f"The S3 bucket {bucket} now grants access to {who}.",
            description=f"{principal_name(latest)} called {latest['event_name']} on {bucket}: {'; '.join(why)}.",
            extra_info={"grants": why},
        )
