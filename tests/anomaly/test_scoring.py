"""The scoring arithmetic on small hand-checked examples: rarity, decay, back-off, learning period."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from ingest.anomaly.categories import category_of, finding_type_for
from ingest.anomaly.config import DAY, AnomalyConfig
from ingest.anomaly.detect import detect_anomalies
from ingest.anomaly.features import instance_launch, network_of, principal_key, user_agent_family
from ingest.anomaly.scoring import score_hour
from ingest.anomaly.state import ACCOUNT, PRINCIPAL, Baselines, Profile, RunningStats, decay_factor, rarity

HL = 14 * DAY
T0 = 1_700_000_000 - 1_700_000_000 % 3600


def test_rarity_of_unseen_value_is_log_of_smoothed_total():
    # 10 active hours, one distinct value seen, alpha 1: p(unseen) = 1 / (10 + 1·2) = 1/12
    assert rarity(0, 10, 1, 1.0) == pytest.approx(math.log(12))
    # seen in 5 of 10 hours with 2 distinct values: p = 6/13
    assert rarity(5, 10, 2, 1.0) == pytest.approx(-math.log(6 / 13))
    # more history makes the unseen rarer: 100 hours -> ln(102)
    assert rarity(0, 100, 1, 1.0) == pytest.approx(math.log(102))


def test_decay_halves_counts_after_one_half_life():
    assert decay_factor(HL, HL) == pytest.approx(0.5)
    assert decay_factor(2 * HL, HL) == pytest.approx(0.25)
    assert decay_factor(-5, HL) == 1.0
    profile = Profile()
    profile.learn_hour(T0, {"region": {"us-east-1": 3}}, HL, events=3)
    profile.advance(T0 + int(HL), HL)
    assert profile.count("region", "us-east-1") == pytest.approx(0.5)
    assert profile.hours == pytest.approx(0.5)
    assert profile.events == pytest.approx(1.5)


def test_late_observation_counts_with_its_decayed_weight():
    profile = Profile()
    profile.learn_hour(T0 + int(HL), {"region": {"us-east-1": 1}}, HL)
    profile.learn_hour(T0, {"region": {"eu-west-1": 1}}, HL)  # one half-life older than what was learned
    assert profile.count("region", "eu-west-1") == pytest.approx(0.5)
    assert profile.count("region", "us-east-1") == pytest.approx(1.0)
    assert profile.hours == pytest.approx(1.5)


def test_running_stats_mean_and_std():
    stats = RunningStats()
    for value in (2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0):
        stats.add(value)
    assert stats.mean == pytest.approx(5.0)
    assert stats.std == pytest.approx(2.0)


def _profile_with(hours: int, region: str = "us-east-1") -> Profile:
    """`hours` active hours, all in `region`, without decay (hand-checkable numbers)."""
    profile = Profile()
    for h in range(hours):
        profile.learn_hour(T0 + 3600 * h, {"region": {region: 1}}, 1e18)
    return profile


def test_score_backs_off_to_account_and_adds_account_rarity():
    config = AnomalyConfig(half_life_days=1e9)  # no decay in this example
    principal, account = _profile_with(30), _profile_with(30)
    # unseen region: p_principal = p_account = 1/(30+2); backed-off p = 1/32, r = ln 32 = 3.4657 ≥ 3
    hour = score_hour(principal, account, {"region": {"ap-south-1": 4}}, config)
    assert [(u.feature, u.value, u.events) for u in hour.unusual] == [("region", "ap-south-1", 4)]
    assert hour.unusual[0].rarity == pytest.approx(math.log(32))
    assert hour.contributions["region"] == pytest.approx(math.log(32), abs=1e-3)
    assert hour.contributions["account_region"] == pytest.approx(0.75 * math.log(32), abs=1e-3)
    assert hour.score == pytest.approx(1.75 * math.log(32), abs=1e-3)
    assert not hour.anomalous  # 6.07 < floor 9: one new region alone is no finding


def test_score_of_usual_value_is_zero():
    config = AnomalyConfig()
    principal, account = _profile_with(30), _profile_with(30)
    hour = score_hour(principal, account, {"region": {"us-east-1": 10}}, config)
    assert hour.score == 0 and not hour.unusual


def test_value_usual_for_the_account_is_not_unusual_for_a_principal():
    config = AnomalyConfig(half_life_days=1e9)
    principal = _profile_with(30)
    account = _profile_with(30, region="eu-west-1")
    # p = 0.6·1/32 + 0.4·31/32 = 0.406 -> r = 0.90, far below the novelty threshold
    hour = score_hour(principal, account, {"region": {"eu-west-1": 1}}, config)
    assert hour.unusual == []


def test_threshold_is_calibrated_on_the_principal_benign_scores():
    config = AnomalyConfig()
    principal = Profile()
    for value in [0.0, 2.0] * 20:
        principal.score_stats.add(value)
    # mean 1, std 1: mean + 4·std = 5 is below the floor; a noisy principal lifts its own threshold
    assert score_hour(principal, Profile(), {}, config).threshold == 9.0
    for value in [0.0, 8.0] * 20:
        principal.score_stats.add(value)
    stats = principal.score_stats
    assert score_hour(principal, Profile(), {}, config).threshold == pytest.approx(stats.mean + 4 * stats.std, abs=1e-3)


def test_learning_period_is_seven_days_from_first_activity():
    profile = Profile()
    profile.learn_hour(T0, {"api": {"s3:ListBuckets": 1}}, HL)
    config = AnomalyConfig()
    assert profile.is_learning(T0 + 6 * 86400, config.learning_seconds)
    assert not profile.is_learning(T0 + 7 * 86400, config.learning_seconds)
    assert Profile().is_learning(T0, config.learning_seconds)


def test_profile_round_trips_through_json():
    profile = _profile_with(5)
    profile.begin_hour(T0 + 10 * 3600, HL)
    profile.add_pending({"api": {"iam:CreateUser": 2}}, 2)
    profile.score_stats.add(3.0)
    again = Profile.from_json(profile.to_json())
    assert again.to_json() == profile.to_json()
    assert again.pending == {"api": {"iam:CreateUser": 2}}


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema_overrides={"event_time": pl.Datetime("us", "UTC")}, infer_schema_length=None)


def _event(when: datetime, name: str = "DescribeInstances", ip: str = "81.2.69.10", region: str = "us-east-1",
           source: str = "ec2.amazonaws.com", user: str = "alice") -> dict:
    return {"event_time": when, "account_id": "123456789012", "region": region, "event_source": source,
            "event_name": name, "principal_type": "IAMUser", "principal_arn": f"arn:aws:iam::123456789012:user/{user}",
            "principal_id": "AIDA" + user.upper(), "user_name": user, "access_key_id": "AKIA" + user.upper(),
            "session_issuer_arn": None, "error_code": None, "source_ip": ip,
            "user_agent": "aws-cli/2.13.5 Python/3.11.4", "event_id": f"{name}-{when.isoformat()}",
            "request_parameters": None}


def test_an_hour_split_across_batches_learns_as_one_hour():
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    events = [_event(start + timedelta(minutes=m), name) for m, name in
              ((1, "DescribeInstances"), (20, "ListBuckets"), (40, "DescribeVpcs"))]
    events.append(_event(start + timedelta(hours=1, minutes=5)))
    whole, split = Baselines(), Baselines()
    config = AnomalyConfig(asn_lookup=False)
    detect_anomalies(_frame(events), whole, config=config)
    for part in (events[:1], events[1:2], events[2:]):
        detect_anomalies(_frame(part), split, config=config)
    key = ("123456789012", PRINCIPAL, "arn:aws:iam::123456789012:user/alice")
    assert split.profiles[key].to_json() == whole.profiles[key].to_json()
    assert whole.profiles[key].hours == pytest.approx(1.0)  # the second hour is still pending
    assert whole.profiles[("123456789012", ACCOUNT, "123456789012")].counts["api"]["ec2:DescribeVpcs"] == 1.0


def test_principal_still_learning_raises_nothing_and_low_mode_lowers_severity():
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    # the account is old (bob for 10 days); alice joined 5 days ago and has habits, but is learning
    history = [_event(start - timedelta(days=d, hours=h), user="bob") for d in range(1, 11) for h in range(8)]
    history += [_event(start - timedelta(days=d, hours=h), user="alice") for d in range(1, 6) for h in range(8)]
    burst = [_event(start + timedelta(minutes=i), name, ip="5.188.10.13", region="ap-south-1",
                    source="iam.amazonaws.com", user="alice") for i, name in
             enumerate(["ListUsers", "ListRoles", "CreateUser", "CreateAccessKey", "AttachUserPolicy", "ListPolicies"])]
    for mode, expected in (("suppress", 0), ("low", 1)):
        baselines = Baselines()
        config = AnomalyConfig(asn_lookup=False, learning_mode=mode)
        detect_anomalies(_frame(sorted(history, key=lambda e: e["event_time"])), baselines, config=config)
        findings = detect_anomalies(_frame(burst), baselines, config=config)
        assert len(findings) == expected
        if findings:
            assert findings[0].severity == 2.0 and findings[0].learning
            assert findings[0].finding_type == "Persistence:IAMUser/AnomalousBehavior"
    # the same burst two days later, past alice's learning period, raises it at its own severity
    later = [{**e, "event_time": e["event_time"] + timedelta(days=2)} for e in burst]
    baselines = Baselines()
    config = AnomalyConfig(asn_lookup=False)
    detect_anomalies(_frame(sorted(history, key=lambda e: e["event_time"])), baselines, config=config)
    findings = detect_anomalies(_frame(later), baselines, config=config)
    assert [(f.finding_type, f.severity, f.learning) for f in findings] == [
        ("Persistence:IAMUser/AnomalousBehavior", 5.0, False)]


def test_categories_from_traildiscover_and_verbs():
    assert category_of("iam.amazonaws.com", "CreateAccessKey") == "persistence"
    assert category_of("cloudtrail.amazonaws.com", "StopLogging") == "defense_evasion"
    assert category_of("ec2.amazonaws.com", "RunInstances") == "impact"
    assert category_of("secretsmanager.amazonaws.com", "GetSecretValue") == "credential_access"
    assert category_of("ec2.amazonaws.com", "DescribeFooBars") == "discovery"  # not in TrailDiscover: by verb
    assert category_of("iam.amazonaws.com", "TagRole") == "persistence"  # IAM writes
    assert category_of("ec2.amazonaws.com", "CreateTags") == "write"
    assert finding_type_for("persistence") == "Persistence:IAMUser/AnomalousBehavior"


def test_feature_extraction_helpers():
    assert network_of("81.2.69.160") == "81.2.69.0/24"
    assert network_of("2001:db8:1234:5678::1") == "2001:db8:1234::/48"
    assert network_of("ec2.amazonaws.com") == "ec2.amazonaws.com"
    assert user_agent_family("aws-cli/2.13.5 Python/3.11.4 Linux/6.2") == ("aws-cli", "aws-cli/2")
    assert user_agent_family("aws-cli/2.15.30 Python/3.11.8") == ("aws-cli", "aws-cli/2")
    assert user_agent_family("Boto3/1.28.40 md/Botocore#1.31.40") == ("Boto3", "Boto3/1")
    assert user_agent_family("APN/1.0 HashiCorp/1.0 Terraform/1.5.7 (+https://www.terraform.io)") == (
        "Terraform", "Terraform/1")
    assert user_agent_family("stratus-red-team_3f2a9c1e-1111-2222-3333-444455556666")[0] == "stratus-red-team"
    assert user_agent_family("[S3Console/0.4, aws-internal/3]") == ("S3Console", "S3Console/0")
    role = "arn:aws:iam::1:role/app"
    assert principal_key("AssumedRole", "arn:aws:sts::1:assumed-role/app/i-0a1b2c3d4e5f60718", role, "x") == (
        f"{role}#i-0a1b2c3d4e5f60718")
    assert principal_key("AssumedRole", "arn:aws:sts::1:assumed-role/app/session-7", role, "x") == role
    assert principal_key("AWSService", None, None, None) is None
    assert instance_launch('{"instanceType": "p3.16xlarge", "maxCount": 10, "minCount": 1}') == ("p3.16xlarge", 10)
    assert instance_launch('{"instancesSet": {"items": [{"imageId": "ami-1", "maxCount": 4}]}}') == ("", 4)
    assert instance_launch("not json") == ("", 0)
    spot = '{"instanceCount": 12, "launchSpecification": {"instanceType": "g5.12xlarge"}}'
    assert instance_launch(spot) == ("g5.12xlarge", 12)
    assert instance_launch('{"targetCapacitySpecification": {"totalTargetCapacity": 40}}') == ("", 40)


def test_launch_parameters_are_kept_by_the_parser():
    import ingest.anomaly.stage  # noqa: F401 - declares what it reads on import
    from ingest.parsers.cloudtrail import RAW_EVENT_NAMES

    assert {"RunInstances", "RequestSpotInstances", "CreateFleet"} <= RAW_EVENT_NAMES


def test_principal_key_expression_matches_the_function():
    from ingest.anomaly.features import enrich

    role = "arn:aws:iam::1:role/app"
    cases = [("AssumedRole", "arn:aws:sts::1:assumed-role/app/i-0a1b2c3d4e5f60718", role, "AROA:i-0a1b2c3d4e5f60718"),
             ("AssumedRole", "arn:aws:sts::1:assumed-role/app/session-7", role, "AROA:session-7"),
             ("AssumedRole", "arn:aws:sts::1:assumed-role/app/session-7", None, "AROA:session-7"),
             ("IAMUser", "arn:aws:iam::1:user/alice", None, "AIDA1"), ("Root", "arn:aws:iam::1:root", None, "1"),
             ("FederatedUser", None, None, "1:bob"), ("AWSService", None, None, None)]
    rows = [{**_event(datetime(2026, 1, 5, tzinfo=UTC)), "principal_type": t, "principal_arn": a,
             "session_issuer_arn": i, "principal_id": p} for t, a, i, p in cases]
    enriched = enrich(_frame(rows), asn_lookup=False)
    assert enriched["pkey"].to_list() == [principal_key(*c) for c in cases if principal_key(*c) is not None]
