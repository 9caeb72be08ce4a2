"""Small objects are analysed in batches (one task, one pipeline pass, one transaction): the same
findings, usage and ledger as one object at a time; a batch with an unreadable object falls back to
single objects, so only that object fails."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import Account, Detector
from findings.models import Finding
from ingest import synthetic as syn
from ingest.models import LogSource, ProcessedObject, UsageRecord
from ingest.services import (
    BATCH_BYTES,
    BATCH_BYTES_BY_KIND,
    BATCH_OBJECT_BYTES,
    BATCH_OBJECTS,
    ObjectRef,
    object_process,
    refs_batched,
)
from ingest.tasks import discover_source_task

A = "888877776666"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ROOT = "Policy:IAMUser/RootCredentialUsage"


def test_small_objects_are_grouped_and_large_ones_go_alone():
    small = [ObjectRef("b", f"k{i:03d}", "e", 2000) for i in range(BATCH_OBJECTS + 5)]
    large = ObjectRef("b", "big", "e", BATCH_OBJECT_BYTES + 1)
    unknown = ObjectRef("b", "size-unknown", "e")
    batches = refs_batched([*small[:3], large, *small[3:], unknown])
    singles = [b[0] for b in batches if len(b) == 1]
    grouped = [b for b in batches if len(b) > 1]
    assert singles == [large, unknown]
    assert [len(b) for b in grouped] == [BATCH_OBJECTS, 5]
    assert [r for b in grouped for r in b] == small



def test_batch_byte_budget_depends_on_the_log_kind():
    # Medium objects (300 KB gzip'd: a busy trail's five minutes, or 40k resolver queries).
    medium = [ObjectRef("b", f"k{i:02d}", "e", 300 * 1024) for i in range(20)]
    for kind, budget in (("cloudtrail", BATCH_BYTES_BY_KIND["cloudtrail"]), ("flow", BATCH_BYTES), ("dns", BATCH_BYTES)):
        batches = refs_batched(medium, kind)
        assert [r for b in batches for r in b] == medium  # time order kept
        assert all(sum(r.size for r in b) <= budget for b in batches)
        assert max(len(b) for b in batches) == budget // (300 * 1024)
    assert BATCH_BYTES_BY_KIND["cloudtrail"] > BATCH_BYTES

@pytest.fixture
def trail(db, member_factory):
    member = member_factory(A, "batch-trail")
    for i in range(12):
        events = syn.benign_cloudtrail(n=1 + i % 5, account=A, region="us-east-1", start=T0 + timedelta(minutes=i),
                                       seed=i)
        events.append(syn.cloudtrail_event(t=T0 + timedelta(minutes=i), account=A, region="us-east-1",
                                           name="ListBuckets", source="s3.amazonaws.com", ip="198.51.100.20", root=True))
        member.put("batch-trail", syn.cloudtrail_key(A, "us-east-1", T0 + timedelta(minutes=i), f"s{i:02d}"),
                   syn.cloudtrail_body(events))
    account = Account.objects.create(aws_account_id=A, name="Quiet", role_arn=member.role_arn,
                                     external_id=member.external_id)
    Detector.objects.create(account=account, region="us-east-1")
    return member, LogSource.objects.create(detector=account.detectors.get(), kind="cloudtrail", bucket="batch-trail")


def test_a_batch_counts_like_single_objects_and_only_once(trail):
    member, source = trail
    discover_source_task.delay(source.pk)

    ledger = ProcessedObject.objects.filter(source=source)
    assert ledger.count() == 12 and set(ledger.values_list("status", flat=True)) == {"done"}
    assert sorted(ledger.values_list("records", flat=True)) == sorted(2 + i % 5 for i in range(12))
    assert Finding.objects.get(account=source.detector.account, type=ROOT).count == 12
    assert sum(UsageRecord.objects.values_list("events", flat=True)) == sum(2 + i % 5 for i in range(12))
    source.refresh_from_db()
    assert source.objects_processed == 12 and source.last_object_key == max(ledger.values_list("key", flat=True))
    # A duplicate delivery of one of them changes nothing.
    row = ledger.first()
    assert object_process(source=source, bucket=row.bucket, key=row.key, etag=row.etag) == "skipped"
    assert Finding.objects.get(account=source.detector.account, type=ROOT).count == 12


def test_an_unreadable_object_fails_alone(trail, settings):
    member, source = trail
    bad = syn.cloudtrail_key(A, "us-east-1", T0 + timedelta(minutes=5, seconds=30), "bad")
    member.put("batch-trail", bad, gzip.compress(b'{"Records":[' * 500)[:40], compress=False)
    discover_source_task.delay(source.pk)

    ledger = ProcessedObject.objects.filter(source=source)
    assert ledger.filter(status="done").count() == 12
    assert ledger.get(key=bad).status == "failed"
    assert Finding.objects.get(account=source.detector.account, type=ROOT).count == 12


def test_each_listed_page_is_handed_over_once_the_ledger_holds_it(db, member_factory, monkeypatch):
    """A backlog's first objects are dispatched while the listing goes on: each page (2 keys here,
    1000 in S3) reaches on_listed after its ledger rows exist and before the next page is listed."""
    from ingest import services
    from ingest.services import source_discover

    monkeypatch.setattr(services, "LIST_PAGE_KEYS", 2)

    member = member_factory(A, "paged-trail")
    for day in range(3):
        for i in range(2):
            t = T0 + timedelta(days=day, minutes=i)
            member.put("paged-trail", syn.cloudtrail_key(A, "us-east-1", t, f"p{day}{i}"),
                       syn.cloudtrail_body(syn.benign_cloudtrail(n=2, account=A, region="us-east-1", start=t)))
    account = Account.objects.create(aws_account_id=A, name="Paged", role_arn=member.role_arn,
                                     external_id=member.external_id)
    source = LogSource.objects.create(detector=Detector.objects.create(account=account, region="us-east-1"),
                                      kind="cloudtrail", bucket="paged-trail")
    pages: list[list[str]] = []

    def on_listed(refs: list[ObjectRef]) -> None:
        keys = [r.key for r in refs]
        ledger = set(ProcessedObject.objects.filter(source=source).values_list("key", flat=True))
        assert set(keys) <= ledger  # the ledger first, then the dispatch
        assert len(ledger) == sum(map(len, pages)) + len(keys)  # nothing of later pages yet
        pages.append(keys)

    refs = source_discover(source=source, on_listed=on_listed)
    assert len(pages) == 3 and [k for page in pages for k in page] == [r.key for r in refs]
    assert set(ProcessedObject.objects.filter(source=source).values_list("status", flat=True)) == {"pending"}
    # Listed again: nothing new, nothing handed over.
    pages.clear()
    assert source_discover(source=source, on_listed=on_listed) == [] and pages == []
