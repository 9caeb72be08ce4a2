"""The CloudTrail rules against real public data: Stratus Red Team detonations, the Invictus IR hour
(set-up, detonation and tear-down of the whole Stratus suite in one account), the OTRF SSRF dataset
and Panther's labelled rule tests. Expectations come from the datasets' own labels."""

from __future__ import annotations

import csv
import glob
import io
import json
import os
from pathlib import Path

import pytest

from ingest.pipeline import Pipeline
from ingest.rules import REGISTRY, load_rules
from intel.matching import matcher_from_files

EXTERNAL = Path(os.environ.get("VIGIL_EXTERNAL_DATA", Path(__file__).resolve().parents[3] / "shared" / "data" / "external"))
if not EXTERNAL.exists():
    EXTERNAL = Path("/work/shared/data/external")
STRATUS = EXTERNAL / "stratus-red-team"
pytestmark = pytest.mark.skipif(not STRATUS.exists(), reason="public datasets not present")

load_rules()
CT_RULE_MODULES = ("stealth", "s3_policy", "pentest", "callers", "credential_exfiltration", "console_login",
                   "attack_sequence")
MY_TYPES = {t for r in REGISTRY.values() if r.name.split(".")[0] in CT_RULE_MODULES for t in r.finding_types}
TRAIL = "Stealth:IAMUser/CloudTrailLoggingDisabled"
OUTSIDE = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"
INSIDE = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS"


@pytest.fixture(scope="module")
def matcher():
    return matcher_from_files()


def run(matcher, *blobs: bytes, account: str = "123456789012", pipeline: Pipeline | None = None):
    pipeline = pipeline or Pipeline(matcher=matcher)
    detections, malformed = [], 0
    for blob in blobs:
        result = pipeline.process("cloudtrail", io.BytesIO(blob), aws_account_id=account, region="us-east-1")
        detections += result.detections
        malformed += result.stats.malformed
    return detections, malformed


def stratus_rows() -> list[dict[str, str]]:
    with open(STRATUS / "DERIVED_stratus_guardduty_map.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["detonation_log"]]


# Techniques for which GuardDuty names one of these types (Stratus's own column), plus the published
# GuardDuty blind spot Vigil closes: event selectors that drop management events.
EXTENSIONS = {"aws.defense-evasion.cloudtrail-event-selectors": {TRAIL}}


def expected_for(row: dict[str, str]) -> set[str]:
    named = {t.strip() for t in row["stratus_documented_guardduty_finding"].split(";") if t.strip()}
    return ({t for t in named if t in MY_TYPES}) | EXTENSIONS.get(row["technique_id"], set())


@pytest.mark.parametrize("row", stratus_rows(), ids=lambda r: r["technique_id"])
def test_stratus_detonation(row: dict[str, str], matcher) -> None:
    path = STRATUS / row["detonation_log"]
    detections, malformed = run(matcher, path.read_bytes())
    assert malformed == 0
    mine = {d.type for d in detections if d.type in MY_TYPES}
    expected = expected_for(row)
    if expected:
        # Stratus names both exfiltration variants for one technique: either is the right answer.
        assert mine & expected, f"{row['technique_id']}: expected one of {expected}, got {mine}"
        assert mine <= expected | {"AttackSequence:IAM/CompromisedCredentials"}
    else:
        assert not mine, f"{row['technique_id']}: GuardDuty names no such finding, Vigil raised {mine}"


def test_invictus_hour_finds_the_detonations_and_not_the_terraform_noise(matcher) -> None:
    files = sorted(glob.glob(str(EXTERNAL / "invictus-ir-aws-dataset" / "CloudTrail" / "*.json")))
    assert len(files) == 55
    pipeline = Pipeline(matcher=matcher)
    detections, malformed = run(matcher, *(Path(f).read_bytes() for f in files), account="123837392027",
                                pipeline=pipeline)
    assert malformed == 0
    mine = [d for d in detections if d.type in MY_TYPES]
    for d in mine:
        agents = {str(e.get("user_agent") or "") for e in d.evidence if isinstance(e, dict)}
        assert not any("Terraform" in a for a in agents), (d.type, d.title)
    types = {d.type for d in mine}
    # ec2-steal-instance-credentials: the instance's session used from the operator's (anonymised) address.
    assert OUTSIDE in types
    assert any(d.type == OUTSIDE and "i-0dbc91f429e48eeed" in d.title for d in mine)
    # cloudtrail-event-selectors succeeded; the StopLogging/DeleteTrail detonations failed (TrailNotFound).
    trail = [d for d in mine if d.type == TRAIL]
    assert len(trail) == 1 and trail[0].evidence[0]["event_name"] == "PutEventSelectors"
    # Nothing else: the tear-down's DeleteTrail/DeleteBucket of the stacks' own trails stays quiet.
    assert types == {OUTSIDE, TRAIL}


def test_otrf_ssrf_instance_credentials_used_outside(matcher) -> None:
    path = EXTERNAL / "otrf-security-datasets" / "aws" / "ec2_proxy_s3_exfiltration_2020-09-14011940.json"
    detections, malformed = run(matcher, path.read_bytes())
    assert malformed == 0
    hits = [d for d in detections if d.type == OUTSIDE]
    assert hits and all("BankingWAFRole" in json.dumps(d.resource) or "i-" in d.title for d in hits)


# --- Panther's labelled tests ---------------------------------------------------------------------

S3_POLICY = {"Policy:S3/BucketAnonymousAccessGranted", "Policy:S3/BucketPublicAccessGranted"}
PANTHER_RULES = {
    # Panther rule -> (our types, which of its tests cover the same behaviour)
    "AWS.CloudTrail.Stopped": ({TRAIL}, lambda log: True),
    "AWS.CloudTrail.EventSelectorsDisabled": ({TRAIL}, lambda log: True),
    "AWS.CloudTrail.SecurityConfigurationChange": ({TRAIL}, lambda log: log.get("eventSource") == "cloudtrail.amazonaws.com"),
    "AWS.CloudTrail.IMDSCredentialExfiltration": ({OUTSIDE, INSIDE}, lambda log: True),
    "AWS.CloudTrail.ResourceMadePublic": (S3_POLICY, lambda log: log.get("eventName") in ("PutBucketPolicy", "PutBucketAcl")),
    "AWS.S3.DeletePublicAccessBlock": ({"Policy:S3/BucketBlockPublicAccessDisabled"}, lambda log: True),
    "AWS.S3.DisableBucketLogging": ({"Stealth:S3/ServerAccessLoggingDisabled"}, lambda log: True),
    "AWS.S3.SecurityControlDisabling": ({"Stealth:S3/ServerAccessLoggingDisabled"},
                                        lambda log: log.get("eventName") == "PutBucketLogging"),
}
# Where Panther's label and GuardDuty's semantics part ways (reason given).
PANTHER_DISAGREES: dict[tuple[str, str], str] = {}


def panther_tests() -> list[dict]:
    rows = []
    with open(EXTERNAL / "panther-analysis" / "DERIVED_panther_aws_rule_tests.jsonl") as fh:
        for line in fh:
            row = json.loads(line)
            spec = PANTHER_RULES.get(row["rule_id"])
            if spec and not row["has_mocks"] and isinstance(row["log"], dict) and spec[1](row["log"]):
                rows.append(row)
    return rows


@pytest.mark.parametrize("row", panther_tests(), ids=lambda r: f"{r['rule_id']}: {r['test_name']}")
def test_panther_labelled(row: dict, matcher) -> None:
    log = dict(row["log"])
    log.setdefault("eventTime", "2024-01-15T10:30:00Z")
    detections, malformed = run(matcher, json.dumps({"Records": [log]}).encode())
    assert malformed == 0
    types, _ = PANTHER_RULES[row["rule_id"]]
    fired = bool({d.type for d in detections} & types)
    expected = row["expected_result"]
    if (row["rule_id"], row["test_name"]) in PANTHER_DISAGREES:
        expected = not expected
    assert fired == expected, f"{row['rule_id']} / {row['test_name']}: fired={fired}"


# --- no public file crashes the CloudTrail path ---------------------------------------------------------


@pytest.mark.slow
def test_every_public_file_parses_or_is_refused_cleanly(matcher) -> None:
    """Every file of the public datasets goes through the CloudTrail parser and all rules: each is
    analysed or refused as unreadable (UnreadableObject), never crashes; anonymised or invalid
    addresses (`08.1.250.216`, '1.2.3.4', 'AWS Internal', hostnames) are kept without an address."""
    from ingest.parsers import UnreadableObject

    analysed = refused = records = 0
    for path in sorted(p for p in EXTERNAL.rglob("*") if p.is_file()):
        if path.suffix.lower() not in (".json", ".jsonl", ".cloudtrail", ".log", ".csv", ".txt", ".lst", ".yml", ".yaml"):
            continue
        pipeline = Pipeline(matcher=matcher)
        try:
            result = pipeline.process("cloudtrail", io.BytesIO(path.read_bytes()), aws_account_id="123456789012",
                                      region="us-east-1")
        except UnreadableObject:
            refused += 1
            continue
        analysed += 1
        records += result.stats.records
    assert analysed >= 35 + 55 + 500  # Stratus, Invictus, TrailDiscover samples at least
    assert records >= 310 + 2900
