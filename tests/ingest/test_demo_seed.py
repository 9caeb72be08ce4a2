"""seed_demo puts real pipeline findings in the demo member accounts, once."""

from __future__ import annotations

import io

from django.core.management import call_command

from findings.models import Finding
from ingest.models import UsageRecord


def test_seed_demo_creates_pipeline_findings_once(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", stdout=io.StringIO())
    types = set(Finding.objects.filter(account__aws_account_id="222222222222").values_list("type", flat=True))
    assert {"UnauthorizedAccess:IAMUser/TorIPCaller", "Recon:IAMUser/TorIPCaller", "Policy:IAMUser/RootCredentialUsage",
            "Backdoor:EC2/C&CActivity.B!DNS", "CryptoCurrency:EC2/BitcoinTool.B!DNS",
            "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom", "Recon:IAMUser/MaliciousIPCaller.Custom"} <= types
    flow = Finding.objects.get(type="UnauthorizedAccess:EC2/MaliciousIPCaller.Custom")
    assert flow.instance_id == "i-0demo1234567890ab" and flow.threat_list_name == "Acme blocklist"
    assert Finding.objects.filter(account__aws_account_id="333333333333").exists()
    assert UsageRecord.objects.filter(account__aws_account_id="222222222222", data_source="FLOW_LOGS").exists()
    before = list(Finding.objects.order_by("id").values_list("id", "count"))
    call_command("seed_demo", stdout=io.StringIO())
    assert list(Finding.objects.order_by("id").values_list("id", "count")) == before
