"""AWS's guardduty-tester: each of its DNS test names raises exactly the finding type AWS says it
produces (lib/common/testResources/definitions.json), and its DNS-tunnelling queries, which all sit
under the tester's C2 domain, raise DNSDataExfiltration and no C&C finding."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.pipeline import Pipeline
from ingest.state import MemoryStateStore
from ingest.synthetic import dns_body, dns_query
from intel.matching import matcher_from_files

TESTER = Path("/work/shared/data/external/amazon-guardduty-tester")
T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
DNS_DEFINITIONS = [d for d in json.loads((TESTER / "definitions.json").read_text())["definitions"]
                   if d["logSource"] == "dns" and d.get("indicator")]


@pytest.fixture(scope="module")
def matcher():
    return matcher_from_files()


def _types(matcher, names: list[str]) -> list[str]:
    queries = [dns_query(t=T0 + timedelta(seconds=i), account="123456789012", region="us-east-1", name=name,
                         instance="i-0123456789abcdef0", srcaddr="10.0.0.5") for i, name in enumerate(names)]
    result = Pipeline(matcher=matcher, state=MemoryStateStore()).process(
        "dns", io.BytesIO(dns_body(queries)), aws_account_id="123456789012", region="us-east-1")
    return sorted(d.type for d in result.detections)


def test_the_tester_defines_every_dns_reputation_type() -> None:
    types = {d["findingType"] for d in DNS_DEFINITIONS}
    assert {"Impact:EC2/BitcoinDomainRequest.Reputation", "Impact:EC2/SuspiciousDomainRequest.Reputation",
            "Backdoor:EC2/C&CActivity.B!DNS", "CryptoCurrency:EC2/BitcoinTool.B!DNS"} <= types
    assert len(DNS_DEFINITIONS) >= 11


@pytest.mark.parametrize("definition", DNS_DEFINITIONS, ids=[d["indicator"] for d in DNS_DEFINITIONS])
def test_each_tester_name_raises_only_its_type(matcher, definition: dict) -> None:
    assert _types(matcher, [definition["indicator"]]) == [definition["findingType"]]


def test_tester_tunnelling_queries_are_exfiltration_not_c2(matcher) -> None:
    names = [ln.strip() for ln in (TESTER / "queries.txt").read_text().splitlines() if ln.strip()][:60]
    assert all(n.endswith(".guarddutyc2activityb.com") for n in names)
    assert _types(matcher, names) == ["Trojan:EC2/DNSDataExfiltration"]
