"""manage.py analyze: local files in AWS's layouts (and the real public samples) to GuardDuty JSON."""

from __future__ import annotations

import gzip
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Account, Detector
from findings.models import Finding
from ingest import synthetic as syn

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
A = "222222222222"
EXTERNAL = Path("/work/shared/data/external")


def write(base: Path, key: str, body: bytes) -> None:
    path = base / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(body))


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    base = tmp_path / "logs"
    # Two CloudTrail files written out of order: processing follows event time, not file order.
    later = [syn.cloudtrail_event(t=T0 + timedelta(hours=1), account=A, region="us-east-1", name="ListBuckets",
                                  source="s3.amazonaws.com", ip="198.51.100.21", root=True)]
    earlier = [syn.cloudtrail_event(t=T0 + timedelta(minutes=i), account=A, region="us-east-1", name="ListBuckets",
                                    source="s3.amazonaws.com", ip="198.51.100.20", root=True) for i in range(2)]
    write(base, syn.cloudtrail_key(A, "us-east-1", T0 + timedelta(hours=1), "b"), syn.cloudtrail_body(later))
    write(base, syn.cloudtrail_key(A, "us-east-1", T0, "a"), syn.cloudtrail_body(earlier))
    flows = [syn.flow_line(account=A, eni="eni-0aaa", src="10.0.0.5", dst="198.51.100.7", sport=40000 + i, dport=443,
                           start=T0) for i in range(5)]
    write(base, syn.flow_key(A, "us-east-1", T0), syn.flow_body(flows + syn.benign_flow(n=100, account=A, start=T0)))
    (tmp_path / "MyThreats.txt").write_text("198.51.100.7\n")
    (tmp_path / "trusted.txt").write_text("198.51.100.99\n")
    return base


def run(*args: str) -> tuple[dict, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("analyze", *args, stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


def test_analyze_prints_guardduty_json_in_event_order(logs: Path, db) -> None:
    doc, err = run(str(logs), "--threat-list", str(logs.parent / "MyThreats.txt"),
                   "--trusted-list", str(logs.parent / "trusted.txt"))
    by_type = {f["Type"]: f for f in doc["Findings"]}
    assert set(by_type) == {"Policy:IAMUser/RootCredentialUsage", "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom"}
    root = by_type["Policy:IAMUser/RootCredentialUsage"]
    assert root["Service"]["Count"] == 3
    assert root["Service"]["EventFirstSeen"] == "2024-05-01T12:00:00.000Z"
    # The latest occurrence's details win, which only holds if the later file was processed last.
    assert root["Service"]["Action"]["AwsApiCallAction"]["RemoteIpDetails"]["IpAddressV4"] == "198.51.100.21"
    custom = by_type["UnauthorizedAccess:EC2/MaliciousIPCaller.Custom"]
    assert custom["Service"]["Count"] == 5 and custom["AccountId"] == A
    assert json.loads(custom["Service"]["AdditionalInfo"]["Value"])["threatListName"] == "MyThreats"
    assert custom["Arn"].startswith(f"arn:aws:guardduty:us-east-1:{A}:detector/")
    assert "analyze [" in err and "2 findings from 3 files" in err
    assert not Finding.objects.exists()


def test_analyze_store_creates_accounts_detectors_and_findings(logs: Path, db, tmp_path: Path) -> None:
    output = tmp_path / "out.json"
    call_command("analyze", str(logs), "--store", "--output", str(output), stdout=io.StringIO(), stderr=io.StringIO())
    doc = json.loads(output.read_text())
    account = Account.objects.get(aws_account_id=A)
    assert Detector.objects.filter(account=account, region="us-east-1").exists()
    stored = Finding.objects.get(account=account)
    assert stored.type == "Policy:IAMUser/RootCredentialUsage" and stored.count == 3
    assert [f["Id"] for f in doc["Findings"]] == [stored.finding_id]


def test_analyze_public_samples_never_crash(db) -> None:
    doc, err = run(str(EXTERNAL / "stratus-red-team"), str(EXTERNAL / "invictus-ir-aws-dataset"),
                   str(EXTERNAL / "otrf-security-datasets/aws"))
    summary = re.search(r"(\d+) findings from (\d+) files, ([\d,]+) records", err)
    assert summary and int(summary.group(2)) >= 90 and int(summary.group(3).replace(",", "")) > 3000
    # Anonymised private/invalid source IPs: no reputation findings, and nothing crashes.
    assert all(f["Type"] != "UnauthorizedAccess:IAMUser/TorIPCaller" for f in doc["Findings"])


def test_analyze_missing_path_is_an_error(db) -> None:
    with pytest.raises(CommandError):
        call_command("analyze", "/nonexistent/path", stdout=io.StringIO(), stderr=io.StringIO())


def test_small_files_are_analysed_together_and_an_unreadable_one_alone(tmp_path: Path, db) -> None:
    """Consecutive small files of one account, type and region go through the pipeline together (as
    workers batch them); when one of them is unreadable the others are analysed one by one, with the
    same findings, and only that file is reported."""
    from ingest.offline import _groups, analyze_paths, describe_file
    from ingest.pipeline import iter_local_files
    from intel.matching import matcher_from_files

    base = tmp_path / "logs"
    for i in range(4):
        t = T0 + timedelta(minutes=5 * i)
        events = [syn.cloudtrail_event(t=t, account=A, region="us-east-1", name="ListBuckets", source="s3.amazonaws.com",
                                       ip="198.51.100.20", root=True)]
        write(base, syn.cloudtrail_key(A, "us-east-1", t, f"s{i}"), syn.cloudtrail_body(events))
    other = syn.cloudtrail_key("333333333333", "us-east-1", T0 + timedelta(minutes=7), "x")
    write(base, other, syn.cloudtrail_body(syn.benign_cloudtrail(n=3, account="333333333333", region="us-east-1", start=T0)))
    files = sorted((describe_file(p) for p in iter_local_files([str(base)])), key=lambda f: (f.sort_time, f.path))
    # Another account's file between them starts a new group.
    assert [len(g) for g in _groups(files)] == [2, 1, 2]

    matcher = matcher_from_files()
    together = analyze_paths([str(base)], matcher=matcher)
    assert together.files == 5 and not together.skipped
    broken = base / syn.cloudtrail_key(A, "us-east-1", T0 + timedelta(minutes=30), "zz")
    broken.write_bytes(b"\x1f\x8b not gzip")
    alone = analyze_paths([str(base)], matcher=matcher)
    assert alone.files == 5 and [path for path, _ in alone.skipped] == [str(broken)]
    root = [f for f in alone.findings if f.type == "Policy:IAMUser/RootCredentialUsage"]
    assert len(root) == 1 and root[0].count == 4
    assert [(f.type, f.count) for f in together.findings] == [(f.type, f.count) for f in alone.findings]
