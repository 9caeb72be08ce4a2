"""The pipeline through the real broker and a real Celery worker process (slow)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import Account, Detector
from findings.models import Finding
from ingest import synthetic as syn
from ingest.models import LogSource, ProcessedObject
from tests.console.test_celery_worker import worker_queue  # noqa: F401  (fixture)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
A = "666666666666"


@pytest.fixture
def worker_env(aws, monkeypatch):
    """The worker reaches the same moto server with the same dummy credentials."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws)
    return aws


@pytest.mark.slow
def test_objects_processed_by_a_real_worker(worker_env, member_factory, transactional_db, request):
    member = member_factory(A, "worker-trail")
    for i in range(3):
        events = [syn.cloudtrail_event(t=T0 + timedelta(minutes=i), account=A, region="us-east-1", name="ListBuckets",
                                       source="s3.amazonaws.com", ip="198.51.100.20", root=True)]
        events += syn.benign_cloudtrail(n=100, account=A, region="us-east-1", start=T0, seed=i)
        member.put("worker-trail", syn.cloudtrail_key(A, "us-east-1", T0 + timedelta(minutes=i), f"w{i}"),
                   syn.cloudtrail_body(events))
    account = Account.objects.create(aws_account_id=A, name="Worker", role_arn=member.role_arn,
                                     external_id=member.external_id)
    detector = Detector.objects.create(account=account, region="us-east-1")
    LogSource.objects.create(detector=detector, kind="cloudtrail", bucket="worker-trail")

    queue = request.getfixturevalue("worker_queue")  # started after AWS_ENDPOINT_URL is in the environment
    from console.celery import app
    from ingest.tasks import discover_all_task

    app.conf.task_always_eager = False
    try:
        discover_all_task.apply_async(queue=queue)
    finally:
        app.conf.task_always_eager = True
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and ProcessedObject.objects.filter(account=account, status="done").count() < 3:
        time.sleep(0.5)
    assert ProcessedObject.objects.filter(account=account, status="done").count() == 3
    finding = Finding.objects.get(account=account)
    assert finding.type == "Policy:IAMUser/RootCredentialUsage" and finding.count == 3
