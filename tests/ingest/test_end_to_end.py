"""From S3 objects in two member accounts (moto server on loopback, reached by STS AssumeRole) to
findings, usage and source status, through the Celery tasks (eager here; a real worker in the slow test)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from accounts.models import Account, Detector
from findings.models import Finding
from ingest import synthetic as syn
from ingest.models import LogSource, ProcessedObject, UsageRecord
from ingest.services import listing_start
from ingest.tasks import discover_all_task, discover_notified_task
from intel.services import intel_set_create

EXTERNAL = Path("/work/shared/data/external")
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TOR_EXIT = "185.220.101.1"
A, B = "222222222222", "333333333333"
LISTED, LISTED_TRUSTED = "198.51.100.7", "198.51.100.77"


def findings_by_type(account: Account) -> dict[str, int]:
    return {t: c for t, c in Finding.objects.filter(account=account).values_list("type", "count")}


def vigil_account(member, name: str) -> Account:
    account = Account.objects.create(aws_account_id=member.aws_account_id, name=name, role_arn=member.role_arn,
                                     external_id=member.external_id)
    Detector.objects.create(account=account, region="us-east-1")
    return account


def source(account: Account, kind: str, bucket: str) -> LogSource:
    return LogSource.objects.create(detector=account.detectors.get(), kind=kind, bucket=bucket)


@pytest.fixture
def two_members(db, member_factory, factory, django_capture_on_commit_callbacks):
    """Account A: CloudTrail (root usage, Tor sign-ins, the real Invictus hour), Resolver logs (C2) and
    flow logs (a custom threat list IP; a listed IP that is also trusted).
    Account B: the Stratus StopLogging detonation, root usage and one corrupt object."""
    a, b = member_factory(A, "trail-a"), member_factory(B, "trail-b")
    root = [syn.cloudtrail_event(t=T0 + timedelta(minutes=i), account=A, region="us-east-1", name="ListBuckets",
                                 source="s3.amazonaws.com", ip="198.51.100.20", root=True) for i in range(3)]
    tor = [syn.cloudtrail_event(t=T0 + timedelta(minutes=i), account=A, region="us-east-1", name="ConsoleLogin",
                                source="signin.amazonaws.com", ip=TOR_EXIT, user="alice") for i in range(2)]
    background = syn.benign_cloudtrail(n=200, account=A, region="us-east-1", start=T0)
    a.put("trail-a", syn.cloudtrail_key(A, "us-east-1", T0, "aaaa"), syn.cloudtrail_body(root + tor + background))
    invictus = sorted((EXTERNAL / "invictus-ir-aws-dataset/CloudTrail").glob("*.json"))[:3]
    for i, path in enumerate(invictus):
        a.put("trail-a", syn.cloudtrail_key(A, "us-east-1", T0 + timedelta(minutes=5 * i + 5), f"inv{i}"), path.read_bytes())
    queries = [syn.dns_query(t=T0 + timedelta(seconds=i), account=A, region="us-east-1",
                             name="c2.guarddutyc2activityb.com", instance="i-0aaa1111bbbb2222c", srcaddr="10.0.1.7")
               for i in range(4)]
    a.put("trail-a", syn.dns_key(A, "vpc-0a1b2c3d4e5f60718", T0),
          syn.dns_body(queries + syn.benign_dns(n=300, account=A, region="us-east-1", start=T0)))

    flows = [syn.flow_line(account=A, eni="eni-0aaa1111", src="10.0.1.7", dst=LISTED, sport=40000 + i, dport=443,
                           start=T0 + timedelta(seconds=i)) for i in range(6)]
    flows += [syn.flow_line(account=A, eni="eni-0aaa1111", src="10.0.1.7", dst=LISTED_TRUSTED, sport=41000, dport=443,
                            start=T0)]
    a.put("trail-a", syn.flow_key(A, "us-east-1", T0), syn.flow_body(flows + syn.benign_flow(n=500, account=A, start=T0)))

    stratus = json.loads((EXTERNAL / "stratus-red-team/docs/detonation-logs/aws.defense-evasion.cloudtrail-stop.json").read_text())
    b.put("trail-b", syn.cloudtrail_key(B, "us-east-1", T0, "strat"), stratus)
    b.put("trail-b", syn.cloudtrail_key(B, "us-east-1", T0 + timedelta(minutes=1), "root"), syn.cloudtrail_body([
        syn.cloudtrail_event(t=T0, account=B, region="us-east-1", name="CreateUser", source="iam.amazonaws.com",
                             ip="198.51.100.30", root=True)]))
    b.put("trail-b", syn.cloudtrail_key(B, "us-east-1", T0 + timedelta(minutes=2), "bad"), gzip.compress(b'{"Records":[' * 500)[:40], compress=False)

    account_a, account_b = vigil_account(a, "Prod"), vigil_account(b, "Staging")
    admin = factory.user()
    factory.grant(admin, account_a, "admin")
    with django_capture_on_commit_callbacks(execute=True):
        intel_set_create(actor=admin, account=account_a, region="us-east-1", kind="THREAT", name="BadGuys", fmt="TXT",
                         content=f"{LISTED}\n{LISTED_TRUSTED}\n".encode(), upload_name="bad.txt")
        intel_set_create(actor=admin, account=account_a, region="us-east-1", kind="TRUSTED", name="Office", fmt="TXT",
                         content=f"{LISTED_TRUSTED}\n".encode(), upload_name="office.txt")
    sources = [source(account_a, "cloudtrail", "trail-a"), source(account_a, "dns", "trail-a"),
               source(account_b, "cloudtrail", "trail-b"), source(account_a, "flow", "trail-a")]
    return a, b, account_a, account_b, sources


def test_pipeline_end_to_end_counts_findings_usage_and_status(two_members):
    a, b, account_a, account_b, sources = two_members
    discover_all_task.delay()

    assert findings_by_type(account_a) == {
        "Policy:IAMUser/RootCredentialUsage": 3,
        "UnauthorizedAccess:IAMUser/TorIPCaller": 2,
        "Backdoor:EC2/C&CActivity.B!DNS": 4,
        "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom": 6,
    }
    custom = Finding.objects.get(account=account_a, type="UnauthorizedAccess:EC2/MaliciousIPCaller.Custom")
    assert custom.threat_list_name == "BadGuys" and custom.remote_ip == LISTED
    # The DNS log taught the inventory that 10.0.1.7 is i-0aaa1111bbbb2222c: the flow finding names it.
    assert custom.instance_id == "i-0aaa1111bbbb2222c"
    # The Stratus StopLogging detonation is GuardDuty's Stealth:IAMUser/CloudTrailLoggingDisabled.
    assert findings_by_type(account_b) == {"Policy:IAMUser/RootCredentialUsage": 1,
                                           "Stealth:IAMUser/CloudTrailLoggingDisabled": 1}
    c2 = Finding.objects.get(account=account_a, type="Backdoor:EC2/C&CActivity.B!DNS")
    assert c2.instance_id == "i-0aaa1111bbbb2222c" and c2.domain == "c2.guarddutyc2activityb.com"
    assert c2.threat_list_name and len(c2.evidence_events) == 4
    tor = Finding.objects.get(account=account_a, type="UnauthorizedAccess:IAMUser/TorIPCaller")
    assert tor.remote_ip == TOR_EXIT and tor.user_name == "alice" and tor.detector.region == "us-east-1"

    # Usage: every CloudTrail event and every uncompressed DNS byte, per day.
    invictus_events = sum(len(json.loads(p.read_text())["Records"]) for p in
                          sorted((EXTERNAL / "invictus-ir-aws-dataset/CloudTrail").glob("*.json"))[:3])
    ct_events = sum(UsageRecord.objects.filter(account=account_a, data_source="CLOUD_TRAIL").values_list("events", flat=True))
    assert ct_events == 3 + 2 + 200 + invictus_events
    dns = UsageRecord.objects.get(account=account_a, data_source="DNS_LOGS")
    raw = gzip.decompress(a.client("s3").get_object(Bucket="trail-a", Key=syn.dns_key(A, "vpc-0a1b2c3d4e5f60718", T0))["Body"].read())
    assert dns.events == 304 and dns.bytes == len(raw)

    # The corrupt object is reported, the rest of account B went through.
    bad = ProcessedObject.objects.get(account=account_b, key__endswith="_bad.json.gz")
    assert bad.status == "failed" and bad.attempts == 3 and "decompress" in bad.error
    trail_b = LogSource.objects.get(pk=sources[2].pk)
    assert trail_b.objects_processed == 2 and trail_b.objects_failed == 1 and "bad.json.gz" in trail_b.last_error
    trail_a = LogSource.objects.get(pk=sources[0].pk)
    assert trail_a.objects_processed == 4 and trail_a.records_processed == ct_events
    assert trail_a.last_object_key.endswith("_inv2.json.gz") and trail_a.lag_seconds is not None

    # A second run (and a re-delivered task) changes nothing.
    before = list(Finding.objects.order_by("id").values_list("id", "count", "updated_at"))
    usage_before = list(UsageRecord.objects.order_by("id").values_list("events", "bytes"))
    discover_all_task.delay()
    from ingest.tasks import process_object_task

    process_object_task.delay(sources[0].pk, "trail-a", syn.cloudtrail_key(A, "us-east-1", T0, "aaaa"),
                              ProcessedObject.objects.get(key=syn.cloudtrail_key(A, "us-east-1", T0, "aaaa")).etag)
    assert list(Finding.objects.order_by("id").values_list("id", "count", "updated_at")) == before
    assert list(UsageRecord.objects.order_by("id").values_list("events", "bytes")) == usage_before


def test_suspended_detector_adds_nothing_and_resumes_from_checkpoint(two_members):
    a, b, account_a, account_b, sources = two_members
    discover_all_task.delay()
    detector = account_b.detectors.get()
    detector.status = Detector.Status.SUSPENDED
    detector.save()
    later = T0 + timedelta(hours=1)
    b.put("trail-b", syn.cloudtrail_key(B, "us-east-1", later, "late"), syn.cloudtrail_body([
        syn.cloudtrail_event(t=later, account=B, region="us-east-1", name="CreateUser", source="iam.amazonaws.com",
                             ip="198.51.100.30", root=True)]))
    discover_all_task.delay()
    # The Stratus StopLogging detonation is GuardDuty's Stealth:IAMUser/CloudTrailLoggingDisabled.
    assert findings_by_type(account_b) == {"Policy:IAMUser/RootCredentialUsage": 1,
                                           "Stealth:IAMUser/CloudTrailLoggingDisabled": 1}
    assert not ProcessedObject.objects.filter(key__endswith="_late.json.gz").exists()

    detector.status = Detector.Status.ENABLED
    detector.save()
    discover_all_task.delay()
    finding = Finding.objects.get(account=account_b, type="Policy:IAMUser/RootCredentialUsage")
    assert finding.count == 2 and finding.last_seen == later


def test_objects_that_sort_before_the_checkpoint_are_still_found_once(two_members):
    """Keys sort by name, not by delivery: an object delivered late under an earlier timestamp (and
    the day before's folder) is found by the next listing, and nothing already seen is taken again."""
    a, b, account_a, account_b, sources = two_members
    discover_all_task.delay()
    before = ProcessedObject.objects.count()
    root = Finding.objects.get(account=account_b, type="Policy:IAMUser/RootCredentialUsage")
    late_events = [syn.cloudtrail_event(t=T0 - timedelta(hours=13), account=B, region="us-east-1", name="CreateUser",
                                        source="iam.amazonaws.com", ip="198.51.100.30", root=True)]
    late_key = syn.cloudtrail_key(B, "us-east-1", T0 - timedelta(hours=13), "0late")  # the previous day's folder
    b.put("trail-b", late_key, syn.cloudtrail_body(late_events))
    discover_all_task.delay()
    assert ProcessedObject.objects.count() == before + 1
    assert ProcessedObject.objects.get(key=late_key).status == ProcessedObject.Status.DONE
    counted_before = root.count
    root.refresh_from_db()
    assert root.count == counted_before + 1
    discover_all_task.delay()  # the re-listed day back holds nothing new
    assert ProcessedObject.objects.count() == before + 1


def test_listing_starts_a_day_before_the_checkpoint():
    key = "AWSLogs/222222222222/CloudTrail/us-east-1/2024/05/01/222222222222_CloudTrail_us-east-1_20240501T1200Z_x.json.gz"
    assert listing_start(key) == "AWSLogs/222222222222/CloudTrail/us-east-1/2024/04/30/"
    assert listing_start("AWSLogs/1/vpcflowlogs/eu-west-1/2024/03/01/12/f.log.gz") == "AWSLogs/1/vpcflowlogs/eu-west-1/2024/02/29/"
    assert listing_start("logs/no-day-folder.json.gz") == "logs/no-day-folder.json.gz"
    assert listing_start("") == ""


def test_sqs_notifications_mode_processes_notified_objects(two_members):
    a, b, account_a, account_b, sources = two_members
    sqs = a.client("sqs")
    queue_url = sqs.create_queue(QueueName="trail-a-events")["QueueUrl"]
    LogSource.objects.filter(pk=sources[0].pk).update(sqs_queue_url=queue_url)
    key = syn.cloudtrail_key(A, "us-east-1", T0, "aaaa")
    head = a.client("s3").head_object(Bucket="trail-a", Key=key)
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Records": [{
        "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "trail-a"},
                                                 "object": {"key": key, "eTag": head["ETag"].strip('"')}}}]}))
    LogSource.objects.exclude(pk=sources[0].pk).delete()
    discover_all_task.delay()
    assert findings_by_type(account_a) == {"Policy:IAMUser/RootCredentialUsage": 3,
                                           "UnauthorizedAccess:IAMUser/TorIPCaller": 2}
    assert ProcessedObject.objects.filter(account=account_a).count() == 1
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url)


def test_notified_sources_are_read_on_their_own_short_schedule(two_members, settings):
    """The frequent beat task reads only sources with an SQS queue: the listed ones wait for their
    listing interval, so reading queues every few seconds never multiplies S3 listings."""
    a, b, account_a, account_b, sources = two_members
    sqs = a.client("sqs")
    queue_url = sqs.create_queue(QueueName="trail-a-notified")["QueueUrl"]
    LogSource.objects.filter(pk=sources[0].pk).update(sqs_queue_url=queue_url)
    key = syn.cloudtrail_key(A, "us-east-1", T0, "aaaa")
    etag = a.client("s3").head_object(Bucket="trail-a", Key=key)["ETag"].strip('"')
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Records": [{
        "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "trail-a"}, "object": {"key": key, "eTag": etag}}}]}))
    assert settings.CELERY_BEAT_SCHEDULE["ingest-discover-sqs"]["task"] == discover_notified_task.name
    assert discover_notified_task.delay().get() == 1
    assert findings_by_type(account_a)["Policy:IAMUser/RootCredentialUsage"] == 3
    assert ProcessedObject.objects.count() == 1
    listed = LogSource.objects.exclude(pk=sources[0].pk)
    assert listed.exists() and not listed.filter(last_listed_at__isnull=False).exists()
