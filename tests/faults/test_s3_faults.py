"""S3 returning 500s, throttling (503 SlowDown) and ExpiredToken, through a real proxy in front of
moto: the pipeline retries with backoff, shows the condition on the source's status, and catches
up with every object processed once: nothing lost, nothing counted twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from accounts.models import Account, Detector, Role
from findings.models import Finding
from ingest import synthetic as syn
from ingest.models import LogSource, ProcessedObject, UsageRecord
from ingest.tasks import discover_all_task
from tests.faults.s3proxy import FaultProxy

pytestmark = pytest.mark.slow  # real backoff (boto, Celery): tens of seconds

AWS_ID = "777777777777"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OBJECTS = 6
ROOT = 3


@pytest.fixture
def proxied(db, member_factory, aws, settings):
    member = member_factory(AWS_ID, "flaky-trail")
    for n in range(OBJECTS):
        events = [syn.cloudtrail_event(t=T0 + timedelta(minutes=n, seconds=i), account=AWS_ID, region="us-east-1",
                                       name="ListBuckets", source="s3.amazonaws.com", ip="198.51.100.20", root=True)
                  for i in range(ROOT)]
        member.put("flaky-trail", syn.cloudtrail_key(AWS_ID, "us-east-1", T0 + timedelta(minutes=n), f"o{n}"),
                   syn.cloudtrail_body(events + syn.benign_cloudtrail(n=50, account=AWS_ID, region="us-east-1", start=T0)))
    account = Account.objects.create(aws_account_id=AWS_ID, name="Flaky", role_arn=member.role_arn,
                                     external_id=member.external_id)
    source = LogSource.objects.create(detector=Detector.objects.create(account=account, region="us-east-1"),
                                      kind="cloudtrail", bucket="flaky-trail")
    with FaultProxy(aws) as proxy:
        settings.AWS_ENDPOINT_URL = proxy.url  # Vigil reaches S3 and STS only through the proxy
        yield proxy, source


def deliver_all(source: LogSource) -> list[float]:
    """Discover, then run each object's task as a broker would deliver it: again after a Retry
    (Celery's autoretry with backoff; eager mode raises Retry instead of scheduling it). Returns
    the countdowns the retries were scheduled with."""
    from celery.exceptions import Retry

    from ingest.services import source_discover
    from ingest.tasks import process_object_task

    countdowns: list[float] = []
    for ref in source_discover(source=source):
        for _ in range(5):
            try:
                process_object_task.apply(args=[source.pk, ref.bucket, ref.key, ref.etag]).get()
                break
            except Retry as retry:
                countdowns.append(retry.when)
    return countdowns


def status_page(client, factory, source: LogSource) -> str:
    """The sources status page as the account's administrator sees it."""
    admin = factory.user()
    factory.grant(admin, source.detector.account, Role.ADMIN)
    client.force_login(admin)
    response = client.get(reverse("ingest:sources"))
    assert response.status_code == 200
    return response.content.decode()


def caught_up(source: LogSource) -> None:
    ledger = ProcessedObject.objects.filter(source=source)
    assert ledger.count() == OBJECTS and set(ledger.values_list("status", flat=True)) == {"done"}
    assert Finding.objects.get(account=source.detector.account).count == OBJECTS * ROOT
    usage = sum(UsageRecord.objects.filter(account=source.detector.account).values_list("events", flat=True))
    assert usage == OBJECTS * (ROOT + 50)
    source.refresh_from_db()
    assert source.objects_processed == OBJECTS and source.objects_failed == 0


def test_500s_and_throttling_are_retried_and_absorbed(proxied):
    proxy, source = proxied
    # Listing fails twice, every object's GET fails twice (500 then 503): within boto's retries.
    proxy.fail("GET /flaky-trail?list-type=2", 500, times=2)
    for n in range(OBJECTS):
        proxy.fail(f"_o{n}.json.gz", 500)
        proxy.fail(f"_o{n}.json.gz", 503)
    discover_all_task.delay()
    assert len(proxy.injected) == 2 + 2 * OBJECTS
    caught_up(source)


def test_outage_longer_than_retries_shows_on_status_then_catches_up(proxied, client, factory):
    proxy, source = proxied
    # One object's GET fails 8 times in a row: boto gives up (5 attempts, with its own backoff), the
    # task is retried with backoff (Celery autoretry: a countdown of up to 2^retries s, jittered),
    # the source's status page shows why, and the object is then done.
    proxy.fail("_o3.json.gz", 503, times=8)
    countdowns = deliver_all(source)
    assert len(countdowns) == 1 and 0 <= countdowns[0] <= 1 and len(proxy.injected) == 8
    source.refresh_from_db()
    assert "_o3.json.gz" in source.last_error and "SlowDown" in source.last_error
    page = status_page(client, factory, source)
    assert "flaky-trail" in page and "SlowDown" in page
    caught_up(source)


def test_expired_credentials_are_renewed(proxied, client, factory):
    proxy, source = proxied
    # The cached session is refused as expired: the session is dropped, the role assumed again.
    proxy.fail("_o1.json.gz", 400, times=1)
    countdowns = deliver_all(source)
    assert len(countdowns) == 1 and len(proxy.injected) == 1
    assert sum(1 for r in proxy.seen if r == "POST /") == 2  # AssumeRole, then again after the refusal
    source.refresh_from_db()
    assert "ExpiredToken" in source.last_error
    assert "ExpiredToken" in status_page(client, factory, source)
    caught_up(source)
    assert proxy.plan == []
