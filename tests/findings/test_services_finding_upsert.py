"""finding_upsert / findings_upsert_many against the real database (SQLite, or PostgreSQL via DATABASE_URL)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections

from console.errors import ServiceError
from findings.models import Finding, FindingPublication
from findings.serialize import finding_to_guardduty, finding_to_sdk
from findings.services import EVIDENCE_SAMPLE_MAX, FindingDraft, finding_upsert, findings_upsert_many

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TYPE = "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom"


def draft(account, *, key="i-1|198.51.100.7", at=T0, severity=5.0, ip="198.51.100.7", evidence=None, count=1):
    return FindingDraft(
        account_id=account.id, region="us-east-1", type=TYPE, severity=severity, dedup_key=key,
        title=f"EC2 instance i-1 is communicating with {ip}.", first_seen=at, last_seen=at, count=count,
        detector_id=account.detectors.first().id,
        resource={"resourceType": "Instance", "instanceDetails": {"instanceId": "i-1"}},
        service={"resourceRole": "ACTOR",
                 "action": {"actionType": "NETWORK_CONNECTION",
                            "networkConnectionAction": {"remoteIpDetails": {"ipAddressV4": ip}}},
                 "additionalInfo": {"threatListName": "BadGuys"},
                 "evidence": {"threatIntelligenceDetails": [{"threatListName": "BadGuys"}]}},
        evidence_events=evidence if evidence is not None else [{"srcaddr": "10.0.0.1", "dstaddr": ip}],
    )


def test_upsert_new_finding_creates_row_with_filter_columns_and_new_publication(factory):
    account = factory.account()
    result = findings_upsert_many(drafts=[draft(account)])
    assert len(result.created) == 1 and result.updated == []
    finding = Finding.objects.get()
    assert (finding.count, finding.severity, finding.severity_level) == (1, 5.0, 5)
    assert (finding.instance_id, finding.remote_ip, finding.threat_list_name) == ("i-1", "198.51.100.7", "BadGuys")
    assert finding.resource_id == "i-1" and finding.action_type == "NETWORK_CONNECTION"
    assert list(FindingPublication.objects.values_list("kind", flat=True)) == ["NEW"]


def test_upsert_repeat_aggregates_count_times_severity_and_latest_details(factory):
    account = factory.account()
    findings_upsert_many(drafts=[draft(account, at=T0)], now=T0)
    later = T0 + timedelta(hours=1)
    result = findings_upsert_many(drafts=[draft(account, at=later, severity=8.0, ip="198.51.100.7", count=3)], now=later)
    assert len(result.updated) == 1 and result.created == []
    # An older occurrence arriving late widens first_seen but does not replace the latest details.
    earlier = T0 - timedelta(hours=1)
    findings_upsert_many(drafts=[draft(account, at=earlier, severity=2.0)], now=later)
    finding = Finding.objects.get()
    assert finding.count == 5
    assert finding.first_seen == earlier and finding.last_seen == later
    assert finding.severity == 8.0 and finding.severity_level == 8
    assert finding.updated_at == later
    pending = sorted(FindingPublication.objects.values_list("kind", flat=True))
    assert pending == ["NEW", "UPDATED"]  # repeated updates collapse into one pending row


def test_publications_are_created_by_the_clock_not_the_callers_now(factory):
    """An update waits its detector's publishing frequency from the publication's created_at: a batch
    analysed with a historic `now` (forensics, samples) must not make it due at once."""
    from django.utils import timezone

    account = factory.account()
    before = timezone.now()
    findings_upsert_many(drafts=[draft(account, at=T0)], now=T0)
    findings_upsert_many(drafts=[draft(account, at=T0 + timedelta(hours=1))], now=T0 + timedelta(hours=1))
    created = list(FindingPublication.objects.values_list("created_at", flat=True))
    assert len(created) == 2
    assert all(before <= at <= timezone.now() for at in created)


def test_upsert_evidence_sample_is_bounded(factory):
    account = factory.account()
    for i in range(4):
        findings_upsert_many(drafts=[draft(account, evidence=[{"n": i * 5 + j} for j in range(5)])])
    finding = Finding.objects.get()
    assert finding.count == 4
    assert [e["n"] for e in finding.evidence_events] == list(range(EVIDENCE_SAMPLE_MAX))


def test_upsert_batch_merges_duplicates_and_separates_resources(factory):
    account, other = factory.account(), factory.account()
    drafts = [draft(account, key="i-1"), draft(account, key="i-1", at=T0 + timedelta(minutes=5)),
              draft(account, key="i-2"), draft(other, key="i-1")]
    result = findings_upsert_many(drafts=drafts)
    assert len(result.created) == 3
    assert sorted(Finding.objects.values_list("count", flat=True)) == [1, 1, 2]


def test_upsert_rejects_unknown_type_and_bad_severity(factory):
    account = factory.account()
    bad = draft(account)
    bad.type = "Made:Up/Type"
    with pytest.raises(ServiceError):
        findings_upsert_many(drafts=[bad])
    with pytest.raises(ServiceError):
        findings_upsert_many(drafts=[draft(account, severity=11)])


def test_serialize_matches_getfindings_shape(factory):
    account = factory.account(aws_account_id="123456789012")
    finding = finding_upsert(account_id=account.id, region="us-east-1", finding_type=TYPE, dedup_key="k",
                             title="t", first_seen=T0, detector_id=account.detectors.get().id,
                             resource={"resourceType": "Instance", "instanceDetails": {"instanceId": "i-9"}},
                             service={"resourceRole": "TARGET", "additionalInfo": {"threatListName": "X"},
                                      "action": {"actionType": "NETWORK_CONNECTION"}})
    doc = finding_to_guardduty(finding)
    detector = account.detectors.get()
    assert doc["arn"] == f"arn:aws:guardduty:us-east-1:123456789012:detector/{detector.detector_id}/finding/{finding.finding_id}"
    assert doc["schemaVersion"] == "2.0" and doc["severity"] == 5.0 and len(doc["id"]) == 32
    assert doc["service"]["eventFirstSeen"] == "2024-05-01T12:00:00.000Z"
    assert doc["service"]["additionalInfo"] == {"value": '{"threatListName":"X"}', "type": "default"}
    assert doc["service"]["count"] == 1 and doc["service"]["archived"] is False
    sdk = finding_to_sdk(finding)
    assert sdk["Resource"]["InstanceDetails"]["InstanceId"] == "i-9"
    assert sdk["Service"]["Action"]["ActionType"] == "NETWORK_CONNECTION"


def test_suppression_hook_creates_archived_and_unpublished(factory, monkeypatch):
    from findings import services

    account = factory.account()
    monkeypatch.setattr(services, "SUPPRESSION_HOOKS", [lambda drafts: [True for _ in drafts]])
    findings_upsert_many(drafts=[draft(account)])
    assert Finding.objects.get().archived is True
    assert not FindingPublication.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_upserts_add_up(factory):
    """Several connections upserting the same finding at once: no lost update, no duplicate row."""
    account = factory.account()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                findings_upsert_many(drafts=[draft(account, count=2)])
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    finding = Finding.objects.get()
    assert finding.count == 4 * 5 * 2
    assert connection.vendor in {"sqlite", "postgresql"}


def test_an_s3_finding_names_its_bucket_as_the_resource_even_with_the_callers_key():
    from findings.services import filter_columns

    resource = {"resourceType": "S3Bucket", "accessKeyDetails": {"accessKeyId": "ASIAEXAMPLE", "userName": "bob"},
                "s3BucketDetails": [{"name": "acme-backups"}]}
    columns = filter_columns(resource, {})
    assert (columns["resource_id"], columns["bucket_name"], columns["access_key_id"]) == (
        "acme-backups", "acme-backups", "ASIAEXAMPLE")
    key_finding = filter_columns({"resourceType": "AccessKey", "accessKeyDetails": {"accessKeyId": "ASIAEXAMPLE"},
                                  "s3BucketDetails": [{"name": "acme-backups"}]}, {})
    assert key_finding["resource_id"] == "ASIAEXAMPLE"
