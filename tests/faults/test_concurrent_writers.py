"""Workers finding the same activity at the same moment: objects with the same root API calls,
processed on their own connections at once. One finding, with the count of all; usage adds up.
PostgreSQL only: SQLite serialises writers, so nothing would race.

With the anomaly stage on (as deployed), the objects queue on the root principal's baseline row
lock, so the findings upsert never sees two of them at once; the test then only starts them
together. To race the upsert itself, the anomaly stage is turned off and a barrier holds every
worker, each inside its own open transaction, until all of them are about to write the finding.
(Holding the barrier with the anomaly stage on deadlocks the test: the first worker would wait at
the barrier holding the baseline lock the others wait for; that was the CI failure.)"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections

import ingest.services
from accounts.models import Account, Detector
from findings.models import Finding
from ingest import synthetic as syn
from ingest.models import LogSource, ProcessedObject, UsageRecord
from ingest.services import object_process

pytestmark = pytest.mark.slow  # four pipelines at once on PostgreSQL: tens of seconds

AWS_ID = "888888888888"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WORKERS = 4
ROOT = 7


@pytest.mark.parametrize("race", ["upsert", "whole-pipeline"])
@pytest.mark.django_db(transaction=True)
def test_same_activity_at_the_same_moment_makes_one_finding(race, member_factory, monkeypatch, settings):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers, so the race cannot happen")
    member = member_factory(AWS_ID, "race-trail")
    keys = []
    for n in range(WORKERS):
        events = [syn.cloudtrail_event(t=T0 + timedelta(seconds=n * 60 + i), account=AWS_ID, region="us-east-1",
                                       name="CreateUser", source="iam.amazonaws.com", ip="198.51.100.20", root=True)
                  for i in range(ROOT)]
        key = syn.cloudtrail_key(AWS_ID, "us-east-1", T0 + timedelta(minutes=n), f"w{n}")
        member.put("race-trail", key, syn.cloudtrail_body(events))
        keys.append(key)
    account = Account.objects.create(aws_account_id=AWS_ID, name="Race", role_arn=member.role_arn,
                                     external_id=member.external_id)
    source = LogSource.objects.create(detector=Detector.objects.create(account=account, region="us-east-1"),
                                      kind="cloudtrail", bucket="race-trail")
    etags = {k: member.client("s3").head_object(Bucket="race-trail", Key=k)["ETag"].strip('"') for k in keys}

    barrier = threading.Barrier(WORKERS, timeout=30)
    real_upsert = ingest.services.findings_upsert_many
    upserts: list[int] = []

    def upsert_together(**kwargs):
        if race == "upsert":
            barrier.wait()  # every worker has its detections and an open transaction: now all write
        result = real_upsert(**kwargs)
        upserts.append(len(result.created))
        return result

    settings.VIGIL_ANOMALY_ENABLED = race == "whole-pipeline"
    monkeypatch.setattr(ingest.services, "findings_upsert_many", upsert_together)
    errors: list[BaseException] = []

    def work(key: str) -> None:
        try:
            if race == "whole-pipeline":
                barrier.wait()  # start together; the baseline lock decides the order
            assert object_process(source=source, bucket="race-trail", key=key, etag=etags[key]) == "done"
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(upserts) == [0] * (WORKERS - 1) + [1]  # one insert; the others updated it

    finding = Finding.objects.get(account=account)
    assert finding.type == "Policy:IAMUser/RootCredentialUsage" and finding.count == WORKERS * ROOT
    assert finding.first_seen == T0 and finding.last_seen == T0 + timedelta(seconds=(WORKERS - 1) * 60 + ROOT - 1)
    assert sum(UsageRecord.objects.filter(account=account).values_list("events", flat=True)) == WORKERS * ROOT
    assert set(ProcessedObject.objects.filter(source=source).values_list("status", flat=True)) == {"done"}
