"""Exactly-once in effect: a connection dropped mid-object leaves nothing behind, and the retry (or a
duplicate delivery) yields exactly the findings and usage of one clean run."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime, timedelta

import pytest

from findings.models import Finding
from ingest import synthetic as syn
from ingest.models import LogSource, ProcessedObject, UsageRecord
from ingest.services import object_process
from intel.matching import matcher_from_files

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class DroppingStream(io.RawIOBase):
    """Serves the first `limit` bytes of `data`, then the connection resets (as a dropped S3 read)."""

    def __init__(self, data: bytes, limit: int) -> None:
        self.data, self.limit, self.pos = data, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.pos >= self.limit:
            raise ConnectionResetError("connection reset by peer")
        chunk = self.data[self.pos:min(self.pos + len(buffer), self.limit)]
        buffer[: len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)


@pytest.fixture
def setup(factory):
    account = factory.account(aws_account_id="777777777777")
    source = LogSource.objects.create(detector=account.detectors.get(), kind="cloudtrail", bucket="b")
    events = [syn.cloudtrail_event(t=T0 + timedelta(seconds=i), account="777777777777", region="us-east-1",
                                   name="ListBuckets", source="s3.amazonaws.com", ip="198.51.100.20", root=True)
              for i in range(50)]
    events += syn.benign_cloudtrail(n=3000, account="777777777777", region="us-east-1", start=T0)
    return account, source, gzip.compress(syn.cloudtrail_body(events))


def test_dropped_read_leaves_nothing_and_retry_counts_once(setup):
    account, source, body = setup
    matcher = matcher_from_files(include_builtin=False)
    with pytest.raises(ConnectionResetError):
        object_process(source=source, bucket="b", key="k", etag="e1", matcher=matcher,
                       open_body=lambda: io.BufferedReader(DroppingStream(body, len(body) // 2)))
    assert not Finding.objects.exists() and not UsageRecord.objects.exists()
    assert ProcessedObject.objects.get().status == "pending"

    assert object_process(source=source, bucket="b", key="k", etag="e1", matcher=matcher,
                          open_body=lambda: io.BytesIO(body)) == "done"
    assert object_process(source=source, bucket="b", key="k", etag="e1", matcher=matcher,
                          open_body=lambda: io.BytesIO(body)) == "skipped"
    finding = Finding.objects.get(account=account)
    assert finding.count == 50
    assert sum(UsageRecord.objects.values_list("events", flat=True)) == 3050
    assert LogSource.objects.get(pk=source.pk).objects_processed == 1
    # A new version of the same key (new ETag) is new data and is processed.
    assert object_process(source=source, bucket="b", key="k", etag="e2", matcher=matcher,
                          open_body=lambda: io.BytesIO(body)) == "done"
    assert Finding.objects.get(account=account).count == 100
