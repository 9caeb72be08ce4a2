"""S3 data-event anomalies (ingest/anomaly/s3.py): the scoring with hand-checked numbers, the
scenario suite (five injected anomalies, four benign variations), the pipeline hook (S3 data events
go to the S3 model, management events stay with the IAM model) and the baseline page."""

from __future__ import annotations

import gzip
import io
import json
import math
from datetime import UTC, datetime

import polars as pl
import pytest
from django.test import Client
from django.urls import reverse

from findings.catalog import LOW, finding_type
from ingest.anomaly import s3 as model
from ingest.anomaly.config import AnomalyConfig
from ingest.anomaly.features import enrich
from ingest.anomaly.models import Baseline
from ingest.anomaly.state import Baselines, Profile
from ingest.pipeline import Pipeline
from intel.matching import matcher_from_files
from tests.anomaly import s3_scenario, scenario

H = 3600
T0 = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp())


def test_categories_name_the_five_types_with_guarddutys_severities():
    assert {name: model.category_of(name) for name in (
        "ListObjectsV2", "HeadObject", "GetBucketAcl", "GetObjectAcl", "GetObject", "CopyObject", "DeleteObjects",
        "PutObjectAcl", "PutObject", "CompleteMultipartUpload")} == {
        "ListObjectsV2": "discovery", "HeadObject": "discovery", "GetBucketAcl": "discovery",
        "GetObjectAcl": "discovery", "GetObject": "exfiltration", "CopyObject": "exfiltration",
        "DeleteObjects": "delete", "PutObjectAcl": "permission", "PutObject": "write",
        "CompleteMultipartUpload": "write"}
    severities = {t: finding_type(t).severity for t in model.FINDING_TYPES.values()}
    assert severities == {"Discovery:S3/AnomalousBehavior": 2.0, "Exfiltration:S3/AnomalousBehavior": 8.0,
                          "Impact:S3/AnomalousBehavior.Delete": 8.0, "Impact:S3/AnomalousBehavior.Permission": 8.0,
                          "Impact:S3/AnomalousBehavior.Write": 5.0}


def _profile(hours: int, observed: dict) -> Profile:
    profile = Profile()
    for h in range(hours):
        profile.learn_hour(T0 + h * H, observed, 1e12)   # no decay: counts are whole hours
    return profile


def test_a_new_bucket_scores_its_hand_computed_rarity_and_stays_below_the_floor():
    habit = {"api": {"GetObject": 5}, "category": {"exfiltration": 5}, "bucket": {"docs": 5}, "network": {"n1": 5}}
    principal, account = _profile(98, habit), _profile(98, habit)
    hour = model.score(principal, account, {**habit, "bucket": {"docs-archive": 3}}, AnomalyConfig(), model.S3Config())
    # p = 0.6 · 1/(98 + 2) + 0.4 · 1/(98 + 2) = 0.01  ->  r = ln 100 = 4.605 nats, weight 1
    assert hour.contributions == {"bucket": round(math.log(100), 4)}
    assert hour.score == pytest.approx(4.6052, abs=1e-4) and not hour.anomalous   # floor 9
    known = model.score(principal, account, habit, AnomalyConfig(), model.S3Config())
    assert known.score == 0 and known.unusual == []


def test_a_read_burst_adds_the_log_of_its_ratio_to_the_usual_maximum():
    habit = {"api": {"GetObject": 40}, model.READS: {"objects": 40}}
    principal = _profile(50, habit)
    assert principal.volume_max[model.READS] == 40
    config, s3c = AnomalyConfig(), model.S3Config(read_min=200, read_ratio=10)
    assert "reads" not in model.score(principal, principal, {**habit, model.READS: {"objects": 399}}, config,
                                      s3c).contributions   # under 10x the usual 40
    burst = model.score(principal, principal, {**habit, model.READS: {"objects": 4000}}, config, s3c)
    assert burst.contributions["reads"] == pytest.approx(math.log(100), abs=1e-4)


def test_learning_period_suppresses_or_lowers_and_decay_forgets():
    built = s3_scenario.build(seed=7)
    # A 30-day learning period: the whole 28-day scenario is still learning.
    outcomes = {}
    for mode in ("suppress", "low"):
        baselines, found = Baselines(), []
        for day in built.days:
            found += model.detect_s3_anomalies(enrich(day), baselines,
                                               config=AnomalyConfig(learning_days=30, learning_mode=mode))
        outcomes[mode] = found
    assert outcomes["suppress"] == []
    assert len(outcomes["low"]) >= len(built.injected)
    assert all(f.learning and f.severity == LOW for f in outcomes["low"])
    profile = baselines.peek(scenario.ACCOUNT, model.S3, f"arn:aws:iam::{scenario.ACCOUNT}:user/alice")
    before = profile.count("bucket", "shared-docs")
    profile.advance(profile.last_update + 14 * 86400, 14 * 86400)   # one half-life later
    assert profile.count("bucket", "shared-docs") == pytest.approx(before / 2)


@pytest.fixture(scope="module")
def outcome():
    built = s3_scenario.build(seed=7)
    baselines = Baselines()
    findings = []
    for day in built.days:   # one batch per day, oldest first
        findings += model.detect_s3_anomalies(enrich(day), baselines)
    return built, findings, scenario.evaluate(findings, built), baselines


def test_every_injected_s3_anomaly_is_found_with_its_type(outcome):
    built, _, result, _ = outcome
    print(f"\nS3 anomaly scenario: recall {result['recall']:.2f} precision {result['precision']:.2f}")
    assert result["missed"] == []
    for attack in built.injected:
        assert result["found"][attack.name].finding_type in attack.expected_types, attack.name
    assert {a.expected_types[0] for a in built.injected} == set(model.FINDING_TYPES.values())


def test_benign_s3_variations_raise_nothing(outcome):
    built, findings, result, _ = outcome
    assert result["false_positives"] == [] and result["precision"] == 1.0
    attack_hours = {(a.principal, a.when) for a in built.injected}
    for principal in built.benign_checks.values():
        hours = {(f.subject, f.first_seen.replace(minute=0, second=0, microsecond=0)) for f in findings
                 if f.subject == principal}
        assert hours <= attack_hours


def test_finding_explains_itself(outcome):
    _, _, result, _ = outcome
    exfil = result["found"]["instance credentials read a bucket out from outside"]
    assert exfil.severity == 8.0 and exfil.resource["resourceType"] == "S3Bucket"
    assert {b["name"] for b in exfil.resource["s3BucketDetails"]} == {"customer-pii", "orders-data"}
    info = exfil.additional_info
    assert {"network", "asn", "bucket"} <= set(info["unusual"]) and info["anomaly"]["score"] > info["anomaly"]["threshold"]
    usual = {v["value"] for v in info["profiledBehavior"]["principal"]["bucket"]}
    assert usual == {"orders-data"}
    assert any("customer-pii" in line for line in info["unusualBehavior"])


# --- the pipeline hook and the console --------------------------------------------------------------

def _record(event: dict) -> dict:
    record = scenario.to_cloudtrail(event)
    record.update(eventCategory=event.get("event_category") or "Management",
                  managementEvent=event.get("event_category") != "Data", readOnly=False)
    return record


def _bodies(built, names: set[str]) -> list[bytes]:
    out = []
    for frame in built.days:
        rows = [r for r in frame.iter_rows(named=True) if r["principal_arn"].rsplit("/", 1)[-1] in names
                or r["user_name"] in names]
        out.append(gzip.compress(json.dumps({"Records": [_record(r) for r in rows]}).encode()))
    return out


def test_pipeline_sends_data_events_to_the_s3_model_only():
    built = s3_scenario.build(seed=7)
    pipeline = Pipeline(matcher=matcher_from_files(include_builtin=False))
    found = []
    for body in _bodies(built, {"alice"}):
        result = pipeline.process("cloudtrail", io.BytesIO(body), aws_account_id=scenario.ACCOUNT, region="us-east-1")
        found += [d.type for d in result.detections if "AnomalousBehavior" in d.type]
    assert sorted(found) == ["Discovery:S3/AnomalousBehavior", "Impact:S3/AnomalousBehavior.Permission"]
    kinds = {kind for _, kind, _ in pipeline.anomaly.baselines.profiles}
    assert "principal" not in kinds and model.S3 in kinds   # no IAM baseline from data events


def test_s3_baseline_page_lists_buckets(factory):
    from ingest.anomaly.services import baselines_lock, baselines_save

    user = factory.user()
    factory.account(aws_account_id=scenario.ACCOUNT, admin=user)
    memory = Baselines()
    for day in s3_scenario.build(seed=7).days[:8]:
        model.detect_s3_anomalies(enrich(day), memory)
    _, rows = baselines_lock(idents=memory.profiles.keys())
    for profile in memory.profiles.values():
        profile.dirty = True
    baselines_save(baselines=memory, rows=rows)
    client = Client()
    client.force_login(user)
    listing = client.get(reverse("ingest:baselines") + "?kind=s3")
    assert listing.status_code == 200 and "alice" in listing.content.decode()
    pk = Baseline.objects.get(kind="s3", key=f"arn:aws:iam::{scenario.ACCOUNT}:user/alice").pk
    body = client.get(reverse("ingest:baseline", args=[pk])).content.decode()
    for expected in ("Buckets", "shared-docs", "GetObject", "81.2.69.0/24", "Across the account"):
        assert expected in body, expected


def test_frames_without_data_events_change_nothing():
    frame = pl.DataFrame([{**s3_scenario.event(s3_scenario.habits()[2], datetime(2026, 3, 3, 9, tzinfo=UTC),
                                                "GetObject", "shared-docs", "81.2.69.7", scenario.CONSOLE),
                           "event_category": "Management"}])
    baselines = Baselines()
    assert model.detect_s3_anomalies(enrich(frame), baselines) == [] and len(baselines) == 0
    assert model.subjects(enrich(frame)) == set()


def test_worker_path_stores_s3_baselines_and_findings(factory):
    """Objects through the worker service: S3 baselines in the database, findings stored once."""
    from findings.models import Finding
    from ingest.models import LogSource
    from ingest.services import object_process

    account = factory.account(aws_account_id=scenario.ACCOUNT)
    source = LogSource.objects.create(detector=account.detectors.get(), kind="cloudtrail", bucket="trail")
    matcher = matcher_from_files(include_builtin=False)
    for day, body in enumerate(_bodies(s3_scenario.build(seed=7), {"alice"})):
        key = f"AWSLogs/{scenario.ACCOUNT}/CloudTrail/us-east-1/2026/03/{day:02d}/s3-{day}.json.gz"
        assert object_process(source=source, bucket="trail", key=key, etag=f"e{day}",
                              open_body=lambda body=body: io.BytesIO(body), matcher=matcher) == "done"
    stored = dict(Finding.objects.filter(account=account, type__contains="S3/AnomalousBehavior")
                  .values_list("type", "severity"))
    assert stored == {"Discovery:S3/AnomalousBehavior": 2.0, "Impact:S3/AnomalousBehavior.Permission": 8.0}
    alice = f"arn:aws:iam::{scenario.ACCOUNT}:user/alice"
    row = Baseline.objects.get(account=account, kind="s3", key=alice)
    assert row.label == "alice" and row.active_hours > 80   # about 8 hours a weekday for 4 weeks, decayed
    assert Baseline.objects.filter(account=account, kind="account", key=f"s3:{scenario.ACCOUNT}").exists()
    assert not Baseline.objects.filter(account=account, kind="principal", key=alice).exists()
