"""The scenario suite: weeks of benign habits, then injected anomalies and benign variations.

Each injected anomaly must be found with the expected finding type, the benign variations must
raise nothing; recall and precision are printed (run with -s, or see `make bench`).
"""

from __future__ import annotations

import time

import pytest

from ingest.anomaly.detect import detect_anomalies
from ingest.anomaly.state import Baselines
from tests.anomaly import scenario


@pytest.fixture(scope="module")
def outcome():
    built = scenario.build(seed=7)
    baselines = Baselines()
    findings = []
    started = time.perf_counter()
    for day in built.days:  # one batch per day, oldest first, as the pipeline would feed it
        findings += detect_anomalies(day, baselines)
    elapsed = time.perf_counter() - started
    events = sum(day.height for day in built.days)
    result = scenario.evaluate(findings, built)
    print(f"\nanomaly scenario: recall {result['recall']:.2f} precision {result['precision']:.2f} "
          f"({len(findings)} findings, {events} events, {events / elapsed:,.0f} events/s)")
    return built, findings, result, baselines


def test_every_injected_anomaly_is_found_with_its_type(outcome):
    built, _, result, _ = outcome
    assert result["missed"] == []
    for attack in built.injected:
        assert result["found"][attack.name].finding_type in attack.expected_types, attack.name


def test_benign_variations_raise_nothing(outcome):
    built, findings, result, _ = outcome
    assert result["false_positives"] == []
    assert result["precision"] == 1.0
    flagged = {f.subject for f in findings}
    for variation, principal in built.benign_checks.items():
        if principal in {a.principal for a in built.injected}:
            # alice and bob are also attacked: only their attack hours may be flagged
            hours = {f.first_seen.replace(minute=0, second=0, microsecond=0) for f in findings if f.subject == principal}
            assert hours <= {a.when for a in built.injected if a.principal == principal}, variation
        else:
            assert principal not in flagged, variation


def test_region_deployment_is_high_when_it_looks_like_hijacking(outcome):
    _, _, result, _ = outcome
    finding = result["found"]["new region deployment"]
    assert finding.severity == 8.0
    assert finding.region == "ap-southeast-1"
    assert finding.service["additionalInfo"]["anomaly"]["reason"] == "infrastructure_in_unused_region_hijack"


def test_findings_explain_themselves(outcome):
    _, _, result, _ = outcome
    burst = result["found"]["discovery burst from new network and user agent"]
    info = burst.service["additionalInfo"]
    assert info["anomaly"]["score"] > info["anomaly"]["threshold"]
    assert sum(info["anomaly"]["contributions"].values()) == pytest.approx(info["anomaly"]["score"], abs=0.01)
    unusual = info["unusual"]
    assert {u["value"] for u in unusual["network"]} == {"5.188.10.0/24"}
    assert {u["value"] for u in unusual["asn"]} == {"Green Floid LLC"}
    assert {u["value"] for u in unusual["ua_family"]} == {"python-requests"}
    assert all(u["principalHours"] == 0 for u in unusual["network"])
    usual = info["profiledBehavior"]["principal"]
    assert usual["network"][0]["value"] == "81.2.69.0/24" and usual["network"][0]["frequency"] == "frequent"
    assert {a["value"] for a in usual["asn"]} >= {"Andrews & Arnold Ltd"}
    assert any("never seen" in line for line in info["unusualBehavior"])
    assert burst.resource["accessKeyDetails"]["userName"] == "alice"
    assert burst.service["action"]["awsApiCallAction"]["remoteIpDetails"]["organization"]["asnOrg"] == "Green Floid LLC"
    assert burst.evidence_events and burst.evidence_events[0]["sourceIPAddress"].startswith("5.188.10.")

    stolen = result["found"]["credential use from a new network"]
    assert stolen.service["additionalInfo"]["anomaly"]["reason"] == "credentials_used_from_unusual_network"
    assert "api" not in stolen.service["additionalInfo"]["unusual"]  # the usual APIs, from an unusual place


def test_baselines_stay_small(outcome):
    import json

    _, _, _, baselines = outcome
    sizes = [len(json.dumps(p.to_json())) for p in baselines.profiles.values()]
    assert max(sizes) < 20_000
