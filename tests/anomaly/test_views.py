"""The baseline pages: what Vigil learned about a principal, only for those who may see the account."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from accounts.models import Role
from ingest.anomaly.detect import detect_anomalies
from ingest.anomaly.models import Baseline
from ingest.anomaly.services import baselines_lock, baselines_save
from ingest.anomaly.state import Baselines
from tests.anomaly import scenario

ALICE = f"arn:aws:iam::{scenario.ACCOUNT}:user/alice"


def _learn(days: int = 10) -> None:
    """Learn the scenario's first days into the database (through the real services)."""
    built = scenario.build(seed=7)
    memory = Baselines()
    for frame in built.days[:days]:
        detect_anomalies(frame, memory)
    _, rows = baselines_lock(idents=memory.profiles.keys())
    for profile in memory.profiles.values():
        profile.dirty = True
    baselines_save(baselines=memory, rows=rows)


def _url(key: str) -> str:
    return reverse("ingest:baseline", args=[Baseline.objects.get(kind="principal", key=key).pk])


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_baseline_page_shows_what_was_learned(factory):
    user = factory.user()
    factory.account(aws_account_id=scenario.ACCOUNT, admin=user, name="Prod")
    _learn()
    response = _client(user).get(_url(ALICE))
    assert response.status_code == 200
    body = response.content.decode()
    for expected in ("us-east-1", "ec2:DescribeInstances", "81.2.69.0/24", "Andrews &amp; Arnold Ltd", "Mozilla/5",
                     "aws-cli/2", "frequent", "Hours of activity", "Across the account", "Complete"):
        assert expected in body, expected
    assert response.context["learned"].tables["region"][0]["value"] == "us-east-1"


def test_instance_role_and_list_pages(factory):
    user = factory.user()
    factory.account(aws_account_id=scenario.ACCOUNT, admin=user)
    _learn(days=3)
    client = _client(user)
    listing = client.get(reverse("ingest:baselines"))
    assert listing.status_code == 200
    app = f"arn:aws:iam::{scenario.ACCOUNT}:role/app-server#i-0a1b2c3d4e5f60718"
    assert app in listing.content.decode() and "InstanceRole" in listing.content.decode()
    assert "Learning" in client.get(_url(app)).content.decode()
    partial = client.get(reverse("ingest:baselines") + "?kind=instance", HTTP_HX_REQUEST="true")
    assert partial.status_code == 200 and "<html" not in partial.content.decode()
    assert app not in partial.content.decode()  # instances only: no principals


def test_other_tenants_and_strangers_get_404(factory):
    owner, stranger, viewer = factory.user(), factory.user(), factory.user()
    account = factory.account(aws_account_id=scenario.ACCOUNT, admin=owner)
    factory.account(admin=stranger)
    factory.grant(viewer, account, Role.VIEWER)
    _learn(days=2)
    url = _url(ALICE)
    assert _client(stranger).get(url).status_code == 404
    assert _client(viewer).get(url).status_code == 200  # read-only roles may look
    assert ALICE not in _client(stranger).get(reverse("ingest:baselines")).content.decode()
    account_row = Baseline.objects.get(kind="account")
    assert _client(owner).get(reverse("ingest:baseline", args=[account_row.pk])).status_code == 404
    assert _client(owner).get(reverse("ingest:baseline", args=[999999])).status_code == 404
    found = _client(owner).get(reverse("ingest:baselines") + "?q=user/alice")
    assert ALICE in found.content.decode() and "user/bob" not in found.content.decode()
    assert Client().get(url).status_code == 302


def test_member_account_baselines_visible_to_its_administrator(factory):
    admin_user, member_user = factory.user(), factory.user()
    administrator = factory.account(admin=admin_user)
    member = factory.account(aws_account_id=scenario.ACCOUNT, admin=member_user)
    factory.associate(administrator, member)
    _learn(days=2)
    url = _url(ALICE)
    assert _client(admin_user).get(url).status_code == 200
    assert _client(member_user).get(url).status_code == 200
    assert Baseline.objects.filter(account=member).count() > 3
