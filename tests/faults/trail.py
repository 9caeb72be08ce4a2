"""A CloudTrail source whose objects take real worker time (a few seconds each), so a fault can be
injected while one of them is in progress, and the check that every object counted exactly once."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from accounts.models import Account, Detector
from findings.models import Finding
from ingest import synthetic as syn
from ingest.models import LogSource, ProcessedObject, UsageRecord

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Trail:
    aws_id: str
    bucket: str
    objects: int = 6
    root: int = 5  # root API calls per object: one finding whose count must be objects * root
    benign: int = 20000

    @property
    def events(self) -> int:
        return self.root + self.benign


def trail_source(member_factory, trail: Trail) -> LogSource:
    """`trail.objects` objects in the member's bucket, and a source for them in Vigil."""
    member = member_factory(trail.aws_id, trail.bucket)
    root = [syn.cloudtrail_event(t=T0 + timedelta(seconds=i), account=trail.aws_id, region="us-east-1",
                                 name="ListBuckets", source="s3.amazonaws.com", ip="198.51.100.20", root=True)
            for i in range(trail.root)]
    body = gzip.compress(syn.cloudtrail_body(root + syn.benign_cloudtrail(n=trail.benign, account=trail.aws_id,
                                                                          region="us-east-1", start=T0)))
    for n in range(trail.objects):
        key = syn.cloudtrail_key(trail.aws_id, "us-east-1", T0 + timedelta(minutes=n), f"obj{n:02d}")
        member.put(trail.bucket, key, body, compress=False)
    account = Account.objects.create(aws_account_id=trail.aws_id, name=trail.bucket, role_arn=member.role_arn,
                                     external_id=member.external_id)
    detector = Detector.objects.create(account=account, region="us-east-1")
    return LogSource.objects.create(detector=detector, kind="cloudtrail", bucket=trail.bucket)


def ledger(source: LogSource):
    return ProcessedObject.objects.filter(source=source)


def done(source: LogSource) -> int:
    return ledger(source).filter(status="done").count()


def in_progress(source: LogSource, *, within: float | None = None) -> ProcessedObject | None:
    """An object a worker has taken up and not finished; with `within`, taken up that many seconds
    ago at most, so a fault injected now lands before it can finish (an object takes seconds)."""
    rows = ledger(source).filter(status="pending", started_at__isnull=False)
    if within is not None:
        rows = rows.filter(started_at__gte=timezone.now() - timedelta(seconds=within))
    return rows.first()


def assert_exactly_once(source: LogSource, trail: Trail) -> None:
    """Same ledger, findings, counts and usage as one undisturbed run."""
    rows = ledger(source)
    assert rows.count() == trail.objects and set(rows.values_list("status", flat=True)) == {"done"}
    assert sum(rows.values_list("records", flat=True)) == trail.objects * trail.events
    account = source.detector.account
    finding = Finding.objects.get(account=account, type="Policy:IAMUser/RootCredentialUsage")
    assert finding.count == trail.objects * trail.root
    assert Finding.objects.filter(account=account).count() == 1
    usage = UsageRecord.objects.filter(account=account, data_source="CLOUD_TRAIL")
    assert sum(usage.values_list("events", flat=True)) == trail.objects * trail.events
    source.refresh_from_db()
    assert source.objects_processed == trail.objects and source.records_processed == trail.objects * trail.events
