"""The real AWS CLI (awscli from PyPI, with its own vendored botocore) against the live server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

AWS = Path(sys.executable).with_name("aws")


def _aws(endpoint: str, principal, *args: str, secret: str | None = None) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": principal.key.access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret or principal.secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
    }
    return subprocess.run([str(AWS), "guardduty", *args, "--endpoint-url", endpoint, "--output", "json"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def _ok(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}


pytestmark = pytest.mark.skipif(not AWS.exists(), reason="awscli is installed from requirements.lock")


def test_aws_cli_list_and_refusal(principal_factory, endpoint):
    alice = principal_factory(region="us-east-1")
    [detector_id] = _ok(_aws(endpoint, alice, "list-detectors"))["DetectorIds"]
    assert detector_id == alice.account.detectors.get().detector_id
    refused = _aws(endpoint, alice, "list-detectors", secret="y" * 40)
    assert refused.returncode != 0
    assert "InvalidSignatureException" in refused.stderr and "DetectorIds" not in refused.stdout


@pytest.mark.slow  # fourteen CLI start-ups, about 15 s
def test_aws_cli_detector_members_and_tags(principal_factory, endpoint):
    alice = principal_factory()
    detector_id = _ok(_aws(endpoint, alice, "create-detector", "--enable",
                           "--finding-publishing-frequency", "FIFTEEN_MINUTES"))["DetectorId"]
    assert _ok(_aws(endpoint, alice, "list-detectors"))["DetectorIds"] == [detector_id]
    detector = _ok(_aws(endpoint, alice, "get-detector", "--detector-id", detector_id))
    assert (detector["Status"], detector["FindingPublishingFrequency"]) == ("ENABLED", "FIFTEEN_MINUTES")
    created = _ok(_aws(endpoint, alice, "create-members", "--detector-id", detector_id, "--account-details",
                       "AccountId=111122223333,Email=sec@example.com"))
    assert created["UnprocessedAccounts"] == []
    members = _ok(_aws(endpoint, alice, "list-members", "--detector-id", detector_id, "--only-associated", "false"))
    assert [(m["AccountId"], m["RelationshipStatus"]) for m in members["Members"]] == [("111122223333", "Created")]
    arn = f"arn:aws:guardduty:us-east-1:{alice.account.aws_account_id}:detector/{detector_id}"
    _ok(_aws(endpoint, alice, "tag-resource", "--resource-arn", arn, "--tags", "env=prod"))
    assert _ok(_aws(endpoint, alice, "list-tags-for-resource", "--resource-arn", arn))["Tags"] == {"env": "prod"}

    refused = _aws(endpoint, alice, "list-detectors", secret="y" * 40)
    assert refused.returncode != 0
    assert "InvalidSignatureException" in refused.stderr and "DetectorIds" not in refused.stdout

    _ok(_aws(endpoint, alice, "create-sample-findings", "--detector-id", detector_id, "--finding-types",
             "Recon:EC2/PortProbeUnprotectedPort", "UnauthorizedAccess:EC2/TorClient"))
    high = _ok(_aws(endpoint, alice, "list-findings", "--detector-id", detector_id, "--finding-criteria",
                    '{"Criterion": {"severity": {"Gte": 7}}}'))["FindingIds"]
    assert len(high) == 1
    got = _ok(_aws(endpoint, alice, "get-findings", "--detector-id", detector_id, "--finding-ids", *high))
    assert got["Findings"][0]["Type"] == "UnauthorizedAccess:EC2/TorClient"
    _ok(_aws(endpoint, alice, "archive-findings", "--detector-id", detector_id, "--finding-ids", *high))
    stats = _ok(_aws(endpoint, alice, "get-findings-statistics", "--detector-id", detector_id,
                     "--finding-statistic-types", "COUNT_BY_SEVERITY", "--finding-criteria",
                     '{"Criterion": {"service.archived": {"Eq": ["false"]}}}'))
    assert sum(stats["FindingStatistics"]["CountBySeverity"].values()) == 1
