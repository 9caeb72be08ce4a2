"""The anomaly step inside the ingest pipeline: offline (in-memory baselines across a run) and in
workers (baselines in the database, locked per frame, in the object's transaction)."""

from __future__ import annotations

import io
import threading

import polars as pl
import pytest
from django.db import connection

from findings.models import Finding
from ingest.anomaly.models import Baseline
from ingest.anomaly.services import anomalies_process
from ingest.anomaly.state import PRINCIPAL, Profile
from ingest.models import LogSource
from ingest.pipeline import Pipeline
from ingest.services import object_process
from intel.matching import matcher_from_files
from tests.anomaly import scenario

ACCOUNT = scenario.ACCOUNT


@pytest.fixture(scope="module")
def built():
    return scenario.build(seed=7)


def _names(built, *names):
    return {h.arn for h in scenario.habits() if h.name in names}


def test_offline_pipeline_learns_across_objects_and_finds_the_anomalies(built):
    pipeline = Pipeline(matcher=matcher_from_files(include_builtin=False))
    found = []
    # the people (the chatty CI and app roles are left out to keep the suite fast)
    for body in scenario.cloudtrail_objects(built, _names(built, "alice", "bob", "carol", "dave")):
        result = pipeline.process("cloudtrail", io.BytesIO(body), aws_account_id=ACCOUNT, region="us-east-1")
        found += [d for d in result.detections if "AnomalousBehavior" in d.type]
    assert sorted((d.type, d.resource["accessKeyDetails"]["userName"]) for d in found) == [
        ("Discovery:IAMUser/AnomalousBehavior", "alice"),
        ("Impact:IAMUser/AnomalousBehavior", "bob"),
        ("InitialAccess:IAMUser/AnomalousBehavior", "carol"),
        ("Persistence:IAMUser/AnomalousBehavior", "bob"),
    ]


def test_worker_path_stores_baselines_and_findings(built, factory):
    account = factory.account(aws_account_id=ACCOUNT)
    source = LogSource.objects.create(detector=account.detectors.get(), kind="cloudtrail", bucket="trail")
    matcher = matcher_from_files(include_builtin=False)
    bodies = scenario.cloudtrail_objects(built, _names(built, "bob", "carol"))
    for day, body in enumerate(bodies):
        status = object_process(source=source, bucket="trail", key=f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{day}.json.gz",
                                etag=f"e{day}", open_body=lambda body=body: io.BytesIO(body), matcher=matcher)
        assert status == "done"
    types = dict(Finding.objects.filter(account=account).values_list("type", "count"))
    # count = the unusual events behind each finding (4 IAM writes, 3 launches, 6 calls from the new network)
    assert types == {"Persistence:IAMUser/AnomalousBehavior": 4, "Impact:IAMUser/AnomalousBehavior": 3,
                     "InitialAccess:IAMUser/AnomalousBehavior": 6}
    impact = Finding.objects.get(account=account, type="Impact:IAMUser/AnomalousBehavior")
    assert impact.severity == 8.0 and impact.region == "ap-southeast-1"
    bob = Baseline.objects.get(account=account, kind="principal", key=f"arn:aws:iam::{ACCOUNT}:user/bob")
    assert bob.label == "bob" and bob.principal_type == "IAMUser" and bob.active_hours > 50
    assert Baseline.objects.filter(account=account, kind="account", key=ACCOUNT).exists()
    # the same object again is skipped by the ledger: baselines do not learn it twice
    before = Baseline.objects.get(pk=bob.pk).state
    assert object_process(source=source, bucket="trail", key=f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/3.json.gz",
                          etag="e3", open_body=lambda: io.BytesIO(bodies[3]), matcher=matcher) == "skipped"
    assert Baseline.objects.get(pk=bob.pk).state == before


def test_database_batches_learn_like_memory(built, factory):
    """Day batches through the database give the same profile as one in-memory run."""
    from ingest.anomaly.detect import detect_anomalies
    from ingest.anomaly.state import Baselines

    factory.account(aws_account_id=ACCOUNT)
    arn = f"arn:aws:iam::{ACCOUNT}:user/carol"
    days = [d.filter(pl.col("principal_arn") == arn) for d in built.days[:6]]
    memory = Baselines()
    for day in days:
        detect_anomalies(day, memory)
        anomalies_process(kind="cloudtrail", frame=day, aws_account_id=ACCOUNT)
    stored = Profile.from_json(Baseline.objects.get(kind="principal", key=arn).state).to_json()
    expected = memory.profiles[(ACCOUNT, PRINCIPAL, arn)].to_json()
    assert stored["c"].keys() == expected["c"].keys()
    for feature, values in expected["c"].items():  # equal up to the rounding of each save
        assert stored["c"][feature] == pytest.approx(values, rel=1e-4), feature
    assert stored["n"] == pytest.approx(expected["n"], rel=1e-4)
    assert (stored["first"], stored["ph"], stored["p"]) == (expected["first"], expected["ph"], expected["p"])


def test_unknown_accounts_are_not_profiled(built, db):
    assert anomalies_process(kind="cloudtrail", frame=built.days[0], aws_account_id=ACCOUNT) == []
    assert not Baseline.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_workers_updating_one_principal_lose_nothing(built, factory):
    """Two threads learn different batches of the same principal at once: every hour is counted."""
    factory.account(aws_account_id=ACCOUNT)
    arn = f"arn:aws:iam::{ACCOUNT}:user/carol"
    frame = pl.concat([d.filter(pl.col("principal_arn") == arn) for d in built.days[:4]])
    hours = frame.select(pl.col("event_time").dt.truncate("1h")).unique().height
    halves = [frame.filter(pl.col("event_time").dt.hour() % 2 == k) for k in (0, 1)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(part: pl.DataFrame) -> None:
        try:
            barrier.wait()
            for day in part.with_columns(pl.col("event_time").dt.date().alias("_day")).partition_by(
                    "_day", maintain_order=True, include_key=False):
                anomalies_process(kind="cloudtrail", frame=day, aws_account_id=ACCOUNT)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(half,)) for half in halves]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    profile = Profile.from_json(Baseline.objects.get(kind="principal", key=arn).state)
    # every distinct hour is learned once: folded hours plus the one still pending
    assert profile.hours + (1 if profile.pending_hour else 0) == pytest.approx(hours, abs=hours * 0.2)
    assert profile.events + profile.pending_events == pytest.approx(frame.height, rel=0.2)
