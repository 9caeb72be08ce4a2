"""`manage.py analyze` (offline) and the Celery pipeline (S3 on a moto server, eager tasks, database
state and findings) give the same findings for the same scenario logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.models import Account, Detector
from findings.models import Finding
from findings.serialize import finding_to_sdk
from ingest.models import LogSource
from ingest.tasks import discover_all_task
from intel.services import intel_set_create
from tests.scenarios.generator import build, write


def _key(f: dict) -> tuple:
    service = f["Service"]
    return (f["Type"], f["Severity"], service["Count"], service["EventFirstSeen"], service["EventLastSeen"],
            service["Action"]["ActionType"], service.get("ResourceRole"))


@pytest.mark.slow  # 85 s: the whole small scenario through both paths; run by .ci/run
@pytest.mark.django_db(transaction=False)
def test_analyze_and_workers_agree(tmp_path: Path, member_factory, factory, django_capture_on_commit_callbacks) -> None:
    scenario = build(accounts=1, days=2, scale=0.2, seed=5, object_minutes=60)
    write(scenario, tmp_path / "logs")
    threats, trusted = tmp_path / "ScenarioThreats.txt", tmp_path / "ScenarioTrusted.txt"
    threats.write_text("\n".join(scenario.threat_list) + "\n")
    trusted.write_text("\n".join(scenario.trusted_list) + "\n")
    out = tmp_path / "findings.json"
    call_command("analyze", str(tmp_path / "logs"), "--threat-list", str(threats), "--trusted-list", str(trusted),
                 "--output", str(out))
    offline = sorted(_key(f) for f in json.loads(out.read_text())["Findings"])

    aws_account_id = scenario.labels[0].account
    member = member_factory(aws_account_id, "net-logs")
    for key, body in scenario.objects:
        member.put("net-logs", key, body, compress=False)
    account = Account.objects.create(aws_account_id=aws_account_id, name="Net", role_arn=member.role_arn,
                                     external_id=member.external_id)
    detector = Detector.objects.create(account=account, region="us-east-1")
    admin = factory.user()
    factory.grant(admin, account, "admin")
    with django_capture_on_commit_callbacks(execute=True):
        intel_set_create(actor=admin, account=account, region="us-east-1", kind="THREAT", name="ScenarioThreats",
                         fmt="TXT", content=threats.read_bytes(), upload_name=threats.name)
        intel_set_create(actor=admin, account=account, region="us-east-1", kind="TRUSTED", name="ScenarioTrusted",
                         fmt="TXT", content=trusted.read_bytes(), upload_name=trusted.name)
    for kind in ("flow", "dns"):
        LogSource.objects.create(detector=detector, kind=kind, bucket="net-logs")
    discover_all_task.delay()
    online = sorted(_key(finding_to_sdk(f)) for f in Finding.objects.filter(account=account))

    assert len(offline) >= 30   # the scenario's attacks, one finding each (or more)
    assert online == offline
    custom = Finding.objects.get(account=account, type="UnauthorizedAccess:EC2/MaliciousIPCaller.Custom")
    assert custom.threat_list_name == "ScenarioThreats"
    # GuardDuty's shapes survive the store: probe details, brute-force counts, DNS actions, feed names.
    probe = Finding.objects.get(account=account, type="Recon:EC2/PortProbeUnprotectedPort")
    details = probe.service["action"]["portProbeAction"]["portProbeDetails"]
    assert probe.severity == 8.0 and details[0]["localPortDetails"] == {"port": 9200, "portName": "Elasticsearch"}
    assert probe.service["additionalInfo"]["threatListName"] == "KnownScanners"
    ssh = Finding.objects.filter(account=account, type="UnauthorizedAccess:EC2/SSHBruteForce")
    assert sorted(f.count for f in ssh) == [40, 60]   # the IPv6 attack and the one across two objects
    rebind = Finding.objects.get(account=account, type="UnauthorizedAccess:EC2/MetadataDNSRebind")
    assert rebind.service["action"]["dnsRequestAction"]["domain"] == "7f000001.a9fea9fe.rbndr.us"
    assert rebind.resource["instanceDetails"]["instanceId"].startswith("i-")
