"""Notifications end to end: outbox -> EventBridge-format events -> destinations, against real
servers on loopback (an HTTP receiver started by the test, moto for EventBridge and S3)."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from accounts.models import Detector
from console.errors import PermissionDeniedError, ServiceError
from findings import notifications, triage
from findings.models import FindingPublication
from findings.rules_models import Delivery, Destination
from tests.findings.util import PORT_PROBE, SSH_BRUTE, make_finding


class Receiver:
    """A webhook endpoint on loopback that records what it gets; it can answer errors or go down."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        self.port = self._free_port()
        self.server: ThreadingHTTPServer | None = None
        self.start()

    @staticmethod
    def _free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                self.send_response(receiver.status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if receiver.status < 300 else b"receiver says no")

            def log_message(self, *args) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    if r.server is not None:
        r.stop()


@pytest.fixture
def org(factory, settings):
    settings.VIGIL_DESTINATIONS_ALLOW_HTTP = True
    settings.VIGIL_DESTINATIONS_ALLOW_PRIVATE = True
    settings.VIGIL_DELIVERY_BACKOFF_BASE_SECONDS = 10
    admin_account, admin_user, member_account, member_user = factory.organisation()
    return admin_account, admin_user, member_account, member_user


def _webhook(org, url, **kwargs) -> Destination:
    admin_account, admin_user, *_ = org
    return notifications.destination_create(actor=admin_user, account=admin_account, name=kwargs.pop("name", "hook"),
                                            kind=kwargs.pop("kind", "webhook"), url=url, **kwargs)


def test_new_finding_is_published_as_a_signed_eventbridge_event(org, receiver):
    admin_account, admin_user, member_account, _ = org
    destination = _webhook(org, receiver.url)
    finding = make_finding(member_account, finding_type=SSH_BRUTE, severity=8.0)
    assert notifications.publish_due() == 1
    assert notifications.deliver_due()["delivered"] == 1
    [request] = receiver.requests
    event = json.loads(request["body"])
    assert event["source"] == "aws.guardduty" and event["detail-type"] == "GuardDuty Finding"
    assert event["account"] == admin_account.aws_account_id and event["region"] == "us-east-1"
    assert event["detail"]["id"] == finding.finding_id and event["detail"]["accountId"] == member_account.aws_account_id
    expected = "sha256=" + hmac.new(destination.secret.encode(), request["body"], hashlib.sha256).hexdigest()
    assert request["headers"]["X-Vigil-Signature-256"] == expected
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.status_code, delivery.attempts) == ("DELIVERED", 200, 1)
    assert FindingPublication.objects.filter(published_at__isnull=True).count() == 0


def test_downtime_is_retried_with_backoff_in_order_and_nothing_is_lost(org, receiver):
    _, _, member_account, _ = org
    destination = _webhook(org, receiver.url)
    receiver.stop()
    findings = [make_finding(member_account) for _ in range(3)]
    notifications.publish_due()
    now = timezone.now()
    outcome = notifications.deliver_due(now=now)
    assert outcome == {"delivered": 0, "failed_destinations": 1}
    destination.refresh_from_db()
    assert destination.status == "FAILING" and "ConnectionError" in destination.last_error
    first = Delivery.objects.order_by("created_at", "id").first()
    assert first.attempts == 1 and first.next_attempt_at == now + timedelta(seconds=10)
    # Not due yet: nothing is attempted before the backoff elapses.
    assert notifications.deliver_due(now=now + timedelta(seconds=5)) == {"delivered": 0, "failed_destinations": 0}
    # The receiver answers 503 for a while: still queued, the backoff doubles, the code is logged.
    receiver.start()
    receiver.status = 503
    notifications.deliver_due(now=now + timedelta(seconds=11))
    first.refresh_from_db()
    assert first.attempts == 2 and first.status_code == 503 and first.response == "receiver says no"
    assert first.next_attempt_at == now + timedelta(seconds=11 + 20)
    # Recovery: everything arrives, in the order the findings were created.
    receiver.status = 200
    receiver.requests.clear()
    assert notifications.deliver_due(now=now + timedelta(seconds=40))["delivered"] == 3
    assert [json.loads(r["body"])["detail"]["id"] for r in receiver.requests] == [f.finding_id for f in findings]
    destination.refresh_from_db()
    assert destination.status == "OK" and destination.last_error == "" and destination.last_success_at


def test_a_failing_destination_never_blocks_another(org, receiver):
    _, _, member_account, _ = org
    _webhook(org, "http://127.0.0.1:9/down", name="down")
    _webhook(org, receiver.url, name="up")
    make_finding(member_account)
    notifications.publish_due()
    outcome = notifications.deliver_due()
    assert outcome == {"delivered": 1, "failed_destinations": 1}
    assert len(receiver.requests) == 1


def test_bounded_queue_refuses_visibly_beyond_its_size(org, receiver, settings):
    settings.VIGIL_DESTINATION_QUEUE_MAX = 2
    _, _, member_account, _ = org
    destination = _webhook(org, receiver.url)
    for _ in range(3):
        make_finding(member_account)
    notifications.publish_due()
    destination.refresh_from_db()
    assert Delivery.objects.filter(status="PENDING").count() == 2
    assert destination.refused_count == 1 and destination.status == "QUEUE_FULL" and "Queue full" in destination.last_error
    notifications.deliver_due()
    destination.refresh_from_db()
    assert destination.status == "OK" and len(receiver.requests) == 2


def test_min_severity_and_filter_select_findings_and_suppressed_ones_are_never_sent(org, receiver):
    admin_account, admin_user, member_account, _ = org
    _webhook(org, receiver.url, min_severity=5.0, criteria={"Criterion": {"type": {"Equals": [SSH_BRUTE]}}})
    make_finding(member_account, finding_type=SSH_BRUTE, severity=2.0)   # too low
    make_finding(member_account, finding_type=PORT_PROBE, severity=8.0)  # filtered out
    wanted = make_finding(member_account, finding_type=SSH_BRUTE, severity=8.0)
    from findings.rules import filter_create

    filter_create(actor=admin_user, account=admin_account, name="quiet-ssh", action="ARCHIVE",
                  criteria={"Criterion": {"resource.instanceDetails.instanceId": {"Equals": ["i-quiet"]}}})
    suppressed = make_finding(member_account, finding_type=SSH_BRUTE, severity=8.0, instance="i-quiet")
    assert suppressed.archived
    notifications.publish_due()
    notifications.deliver_due()
    assert [json.loads(r["body"])["detail"]["id"] for r in receiver.requests] == [wanted.finding_id]


def test_updates_wait_for_the_publishing_frequency(org, receiver):
    admin_account, _, member_account, _ = org
    Detector.objects.filter(account=admin_account).update(finding_publishing_frequency="FIFTEEN_MINUTES")
    _webhook(org, receiver.url)
    t0 = timezone.now()
    finding = make_finding(member_account, key="same", at=t0, now=t0)
    notifications.publish_due(now=t0)
    for minute in (1, 2, 3):
        make_finding(member_account, key="same", at=t0 + timedelta(minutes=minute), now=t0 + timedelta(minutes=minute))
    assert FindingPublication.objects.filter(published_at__isnull=True, kind="UPDATED").count() == 1
    assert notifications.publish_due(now=t0 + timedelta(minutes=10)) == 0
    assert notifications.publish_due(now=t0 + timedelta(minutes=17)) == 1
    notifications.deliver_due(now=t0 + timedelta(minutes=17))
    events = [json.loads(r["body"]) for r in receiver.requests]
    assert [e["detail"]["id"] for e in events] == [finding.finding_id, finding.finding_id]
    assert events[-1]["detail"]["service"]["count"] == 4


def test_archived_by_hand_updates_follow_the_frequency_but_suppressed_ones_never_go_out(org, receiver):
    """GuardDuty (reference 7.1): later occurrences of a finding archived by hand are still sent at the
    publishing frequency; those of a suppressed (auto-archived) finding never are."""
    admin_account, admin_user, member_account, _ = org
    Detector.objects.filter(account=admin_account).update(finding_publishing_frequency="FIFTEEN_MINUTES")
    _webhook(org, receiver.url)
    from findings.rules import filter_create

    filter_create(actor=admin_user, account=admin_account, name="quiet-ssh", action="ARCHIVE",
                  criteria={"Criterion": {"resource.instanceDetails.instanceId": {"Equals": ["i-quiet"]}}})
    t0 = timezone.now()
    by_hand = make_finding(member_account, key="by-hand", at=t0, now=t0)
    suppressed = make_finding(member_account, finding_type=SSH_BRUTE, instance="i-quiet", key="quiet", at=t0, now=t0)
    assert suppressed.archived and suppressed.suppressed
    notifications.publish_due(now=t0)
    notifications.deliver_due(now=t0)
    assert [json.loads(r["body"])["detail"]["id"] for r in receiver.requests] == [by_hand.finding_id]

    triage.findings_set_archived(actor=admin_user, findings=[by_hand], archived=True)
    by_hand.refresh_from_db()
    assert by_hand.archived and not by_hand.suppressed
    for minute in (1, 2):
        at = t0 + timedelta(minutes=minute)
        make_finding(member_account, key="by-hand", at=at, now=at)
        make_finding(member_account, finding_type=SSH_BRUTE, instance="i-quiet", key="quiet", at=at, now=at)
    # One pending update, for the finding archived by hand only; due after the 15 minutes.
    assert list(FindingPublication.objects.filter(published_at__isnull=True).values_list("finding_id", "kind")) == [
        (by_hand.pk, "UPDATED")]
    assert notifications.publish_due(now=t0 + timedelta(minutes=10)) == 0
    assert notifications.publish_due(now=t0 + timedelta(minutes=17)) == 1
    notifications.deliver_due(now=t0 + timedelta(minutes=17))
    events = [json.loads(r["body"]) for r in receiver.requests]
    assert [e["detail"]["id"] for e in events] == [by_hand.finding_id, by_hand.finding_id]
    assert events[-1]["detail"]["service"]["archived"] is True and events[-1]["detail"]["service"]["count"] == 3
    suppressed.refresh_from_db()
    assert suppressed.count == 3 and not suppressed.publications.exists()

    # Unarchived, a suppressed finding is an ordinary one again: its next occurrences are published.
    assert triage.findings_set_archived(actor=admin_user, findings=[suppressed], archived=False) == 1
    at = t0 + timedelta(minutes=20)
    make_finding(member_account, finding_type=SSH_BRUTE, instance="i-quiet", key="quiet", at=at, now=at)
    assert FindingPublication.objects.filter(finding=suppressed, published_at__isnull=True).count() == 1


def test_slack_destination_gets_a_chat_message(org, receiver):
    _, _, member_account, _ = org
    _webhook(org, receiver.url, kind="slack")
    make_finding(member_account, finding_type=SSH_BRUTE, severity=8.0, title="SSH brute force on i-1")
    notifications.publish_due()
    notifications.deliver_due()
    message = json.loads(receiver.requests[0]["body"])
    assert "High 8.0" in message["text"] and SSH_BRUTE in message["text"]
    assert message["blocks"][0]["type"] == "header"


def test_test_button_reports_the_response_and_failures(org, receiver):
    _, admin_user, _, member_user = org
    destination = _webhook(org, receiver.url)
    delivery = notifications.destination_test(actor=admin_user, destination=destination)
    assert delivery.status == "DELIVERED" and delivery.status_code == 200 and delivery.response == "ok"
    assert json.loads(receiver.requests[0]["body"])["detail"]["title"].startswith("[SAMPLE]")
    receiver.status = 500
    failed = notifications.destination_test(actor=admin_user, destination=destination)
    assert failed.status == "FAILED" and failed.status_code == 500
    with pytest.raises(ServiceError) as refused:
        notifications.destination_test(actor=member_user, destination=destination)
    assert refused.value.status_code in (403, 404)


def test_destination_validation_and_roles(org, settings):
    admin_account, admin_user, member_account, member_user = org
    settings.VIGIL_DESTINATIONS_ALLOW_HTTP = False
    with pytest.raises(ServiceError, match="https"):
        _webhook(org, "http://hooks.example.com/x")
    with pytest.raises(ServiceError, match="bucket"):
        notifications.destination_create(actor=admin_user, account=admin_account, name="s3", kind="s3")
    with pytest.raises(PermissionDeniedError):
        notifications.destination_create(actor=member_user, account=member_account, name="mine", kind="webhook",
                                         url="https://hooks.example.com/x")


@pytest.fixture
def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_s3_export_writes_gzipped_json_lines_in_guardduty_layout(org, moto_server, aws_env,
                                                                 django_capture_on_commit_callbacks):
    import boto3

    admin_account, admin_user, member_account, _ = org
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    s3.create_bucket(Bucket="findings-export")
    with django_capture_on_commit_callbacks(execute=True):  # the verification export runs on commit
        destination = notifications.destination_create(
            actor=admin_user, account=admin_account, name="export", kind="s3",
            config={"bucket": "findings-export", "prefix": "gd/", "endpoint_url": moto_server})
    destination.refresh_from_db()
    assert destination.export_status == "PUBLISHING"  # the bucket answered when verified on creation
    findings = [make_finding(member_account), make_finding(member_account, region="eu-west-1"),
                make_finding(member_account, finding_type=SSH_BRUTE)]
    archived = findings.pop()
    triage.findings_set_archived(actor=admin_user, findings=[archived], archived=True)
    notifications.publish_due()
    assert not Delivery.objects.filter(destination=destination).exclude(kind="EXPORT").exists()  # no event queue
    # Not due until the export interval has passed since the verification run.
    assert notifications.deliver_due()["delivered"] == 0
    destination.refresh_from_db()
    until = timezone.now()
    assert notifications.destination_export(destination=destination, until=until) == 2  # archived: never
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="findings-export")["Contents"])
    assert len(keys) == 2
    for key in keys:
        assert key.startswith(f"gd/AWSLogs/{admin_account.aws_account_id}/GuardDuty/") and key.endswith(".jsonl.gz")
        assert f"/{until:%Y/%m/%d}/" in key
    body = s3.get_object(Bucket="findings-export", Key=next(k for k in keys if "/eu-west-1/" in k))["Body"].read()
    lines = gzip.decompress(body).decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [findings[1].finding_id]
    assert Delivery.objects.filter(destination=destination, kind="EXPORT").count() == 2  # the delivery log

    # Unarchived, a finding is active again and goes out with the next export; nothing else does.
    archived.refresh_from_db()
    assert triage.findings_set_archived(actor=admin_user, findings=[archived], archived=False) == 1
    destination.refresh_from_db()
    assert notifications.destination_export(destination=destination, until=timezone.now()) == 1
    later = timezone.now() + notifications.SETTLE + notifications.EXPORT_INTERVAL
    assert notifications.deliver_due(now=later) == {"delivered": 0, "failed_destinations": 0}


def test_s3_export_down_loses_nothing_and_recovers(org, moto_server, aws_env, django_capture_on_commit_callbacks):
    import boto3

    admin_account, admin_user, member_account, _ = org
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    with django_capture_on_commit_callbacks(execute=True):
        destination = notifications.destination_create(
            actor=admin_user, account=admin_account, name="export", kind="s3",
            config={"bucket": "not-yet-there", "endpoint_url": moto_server})
    destination.refresh_from_db()
    assert destination.status == Destination.Status.FAILING and destination.failing_since is not None
    assert destination.export_status == "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"
    finding = make_finding(member_account)
    later = timezone.now() + notifications.SETTLE + notifications.EXPORT_INTERVAL
    outcome = notifications.deliver_due(now=later)
    assert outcome == {"delivered": 0, "failed_destinations": 1}
    s3.create_bucket(Bucket="not-yet-there")
    assert notifications.deliver_due(now=later + timedelta(seconds=30))["delivered"] == 1
    destination.refresh_from_db()
    assert destination.status == Destination.Status.OK and destination.failing_since is None
    key = s3.list_objects_v2(Bucket="not-yet-there")["Contents"][0]["Key"]
    body = s3.get_object(Bucket="not-yet-there", Key=key)["Body"].read()
    assert json.loads(gzip.decompress(body))["id"] == finding.finding_id


def test_eventbridge_put_events_reaches_the_bus(org, moto_server, aws_env):
    import boto3

    admin_account, admin_user, member_account, _ = org
    events = boto3.client("events", endpoint_url=moto_server, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="gd")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="gd", EventPattern=json.dumps({"source": ["vigil.guardduty"],
                                                        "detail-type": ["GuardDuty Finding"]}))
    events.put_targets(Rule="gd", Targets=[{"Id": "q", "Arn": queue_arn}])
    notifications.destination_create(actor=admin_user, account=admin_account, name="bus", kind="eventbridge",
                                     config={"endpoint_url": moto_server, "region": "us-east-1"})
    finding = make_finding(member_account, finding_type=SSH_BRUTE)
    notifications.publish_due()
    assert notifications.deliver_due()["delivered"] == 1
    message = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"][0]
    event = json.loads(message["Body"])
    assert event["detail-type"] == "GuardDuty Finding" and event["detail"]["id"] == finding.finding_id
    assert Delivery.objects.get().response.startswith("EventId")


@pytest.mark.parametrize("host", ["127.0.0.1", "169.254.169.254", "10.1.2.3", "localhost"])
def test_webhooks_to_internal_addresses_are_refused(org, receiver, settings, host):
    settings.VIGIL_DESTINATIONS_ALLOW_PRIVATE = False
    _, admin_user, _, _ = org
    destination = _webhook(org, f"http://{host}:{receiver.port}/hook")
    delivery = notifications.destination_test(actor=admin_user, destination=destination)
    assert delivery.status == "FAILED" and "non-public address" in delivery.error
    assert receiver.requests == []
