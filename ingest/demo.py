"""Demo findings for `manage.py seed_demo`: demo logs run through the real pipeline (offline mode,
stored), so the console shows findings the rules actually produced, with usage to match."""

from __future__ import annotations

import gzip
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone

from findings.models import Finding
from ingest import synthetic as syn

PROD, STAGING = "222222222222", "333333333333"
REGION = "us-east-1"
DEMO_LIST_IP = "203.0.113.66"  # on the demo threat list "Acme blocklist"
TOR_EXIT = "185.220.101.1"


def _write(base: Path, key: str, body: bytes) -> None:
    path = base / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(body))


def write_demo_logs(base: Path, *, days: int = 3) -> None:
    """A few days of background activity for two accounts, with a handful of incidents."""
    start = (timezone.now() - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    for d in range(days):
        t = start + timedelta(days=d)
        for account in (PROD, STAGING):
            events = syn.benign_cloudtrail(n=200, account=account, region=REGION, start=t, seed=d + int(account[:1]))
            _write(base, syn.cloudtrail_key(account, REGION, t, f"bg{d}"), syn.cloudtrail_body(events))
            _write(base, syn.flow_key(account, REGION, t, suffix=f"bg{d}"),
                   syn.flow_body(syn.benign_flow(n=1000, account=account, start=t, seed=d)))
            _write(base, syn.dns_key(account, "vpc-0a1b2c3d4e5f60718", t, suffix=f"bg{d}"),
                   syn.dns_body(syn.benign_dns(n=500, account=account, region=REGION, start=t, seed=d)))
    t = start + timedelta(days=days - 1, hours=3)
    incidents = [
        syn.cloudtrail_event(t=t, account=PROD, region=REGION, name="ConsoleLogin", source="signin.amazonaws.com",
                             ip=TOR_EXIT, user="bob"),
        syn.cloudtrail_event(t=t + timedelta(minutes=2), account=PROD, region=REGION, name="ListUsers",
                             source="iam.amazonaws.com", ip=TOR_EXIT, user="bob"),
        syn.cloudtrail_event(t=t + timedelta(minutes=5), account=PROD, region=REGION, name="DescribeInstances",
                             source="ec2.amazonaws.com", ip=DEMO_LIST_IP, user="deploy-bot"),
        syn.cloudtrail_event(t=t + timedelta(minutes=9), account=PROD, region=REGION, name="CreateAccessKey",
                             source="iam.amazonaws.com", ip="198.51.100.20", root=True),
    ]
    _write(base, syn.cloudtrail_key(PROD, REGION, t, "incident"), syn.cloudtrail_body(incidents))
    _write(base, syn.cloudtrail_key(STAGING, REGION, t, "incident"), syn.cloudtrail_body([
        syn.cloudtrail_event(t=t, account=STAGING, region=REGION, name="GetAccountSummary", source="iam.amazonaws.com",
                             ip="198.51.100.31", root=True)]))
    queries = [syn.dns_query(t=t + timedelta(seconds=30 * i), account=PROD, region=REGION, name=name,
                             instance="i-0demo1234567890ab", srcaddr="10.0.1.23")
               for i, name in enumerate(["c2.guarddutyc2activityb.com"] * 3 + ["xmr.pool.minergate.com"] * 2)]
    _write(base, syn.dns_key(PROD, "vpc-0a1b2c3d4e5f60718", t, suffix="incident"), syn.dns_body(queries))
    flows = [syn.flow_line(account=PROD, eni="eni-0demo000000000001", src="10.0.1.23", dst=DEMO_LIST_IP,
                           sport=50000 + i, dport=443, start=t + timedelta(minutes=10)) for i in range(4)]
    _write(base, syn.flow_key(PROD, REGION, t + timedelta(minutes=10), suffix="incident"), syn.flow_body(flows))


def seed_demo_findings(stdout: Any = None) -> int:
    """Run the demo logs through the pipeline and store the findings; once only (idempotent)."""
    from ingest.offline import analyze_paths
    from intel.matching import matcher_from_files

    if Finding.objects.filter(account__aws_account_id__in=[PROD, STAGING], is_sample=False).exists():
        return 0
    with tempfile.TemporaryDirectory(prefix="vigil-demo-") as tmp:
        base = Path(tmp)
        write_demo_logs(base / "logs")
        blocklist = base / "Acme blocklist.txt"
        blocklist.write_text(f"{DEMO_LIST_IP}\n")
        matcher = matcher_from_files(threat_lists=[("Acme blocklist", str(blocklist), "TXT")])
        run = analyze_paths([str(base / "logs")], matcher=matcher, store=True)
    if stdout is not None:
        stdout.write(f"  {len(run.findings)} demo findings from {run.records:,} log records (real pipeline)")
    return len(run.findings)
