"""Every labelled case beside every rule, through the real parser, intel matcher and rule."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ingest.pipeline import Pipeline
from ingest.rules import CLOUDTRAIL, FLOW, REGISTRY, Case, Rule, load_rules
from intel.matching import matcher_from_files

load_rules()
CASES = [(rule, case) for rule in REGISTRY.values() for case in rule.cases]


def case_bytes(source: str, records: list) -> bytes:
    if source == FLOW:
        return ("\n".join(records) + "\n").encode()
    if source == CLOUDTRAIL:
        return json.dumps(records[0]).encode()
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def case_matcher(case: Case, tmp_path: Path):
    threat_lists = []
    if case.threat_list:
        path = tmp_path / "threats.txt"
        path.write_text("\n".join(case.threat_list) + "\n")
        threat_lists.append((case.threat_list_name, str(path), "TXT"))
    trusted = None
    if case.trusted_list:
        path = tmp_path / "trusted.txt"
        path.write_text("\n".join(case.trusted_list) + "\n")
        trusted = ("Trusted", str(path), "TXT")
    return matcher_from_files(threat_lists=threat_lists, trusted_list=trusted, include_builtin=case.builtin)


@pytest.mark.parametrize(("rule", "case"), CASES, ids=[f"{r.name}: {c.name}" for r, c in CASES])
def test_rule_case(rule: Rule, case: Case, tmp_path: Path) -> None:
    pipeline = Pipeline(matcher=case_matcher(case, tmp_path))
    result = pipeline.process(rule.source, io.BytesIO(case_bytes(rule.source, case.records)),
                              aws_account_id="123456789012", region="us-east-1")
    assert result.stats.malformed == 0, result.stats.malformed_samples
    mine = [d for d in result.detections if d.type in rule.finding_types]
    assert sorted({d.type for d in mine}) == sorted(set(case.expect))
    for detection in mine:
        if detection.type in case.expect_severity:
            assert detection.resolved_severity() == case.expect_severity[detection.type]
        if detection.type in case.expect_count:
            assert detection.count == case.expect_count[detection.type]
        if case.threat_list and ".Custom" in detection.type:
            assert detection.service["additionalInfo"]["threatListName"] == case.threat_list_name
        assert detection.evidence and detection.title


def test_registry_covers_this_issues_types() -> None:
    types = {t for rule in REGISTRY.values() for t in rule.finding_types}
    assert {
        "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom", "Recon:IAMUser/MaliciousIPCaller.Custom",
        "Backdoor:EC2/C&CActivity.B!DNS", "UnauthorizedAccess:IAMUser/TorIPCaller",
        "CryptoCurrency:EC2/BitcoinTool.B!DNS", "Policy:IAMUser/RootCredentialUsage",
    } <= types
    assert all(rule.cases for rule in REGISTRY.values())


def test_registry_rejects_unknown_type_and_duplicates() -> None:
    from ingest.rules import rule

    with pytest.raises(ValueError, match="not a GuardDuty finding type"):
        rule(source=FLOW, finding_types=("Made:Up/Thing",), name="x.bad")(lambda frame, ctx: [])
    with pytest.raises(ValueError, match="duplicate"):
        rule(source=FLOW, finding_types=("Recon:EC2/Portscan",), name=next(iter(REGISTRY)))(lambda frame, ctx: [])
