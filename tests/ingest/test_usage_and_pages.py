"""Usage metering selectors, GuardDuty's price tiers, and the sources and usage pages (scoped per tenant)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from ingest.models import LogSource, UsageRecord
from ingest.pricing import costs_by_source, tiered_cost
from ingest.selectors import log_source_list, usage_monthly_estimate, usage_statistics


def test_price_tiers_follow_guardduty_list_prices():
    assert tiered_cost("CLOUD_TRAIL", 2_500_000) == pytest.approx(10.0)
    assert tiered_cost("S3_LOGS", 600_000_000) == pytest.approx(500 * 0.80 + 100 * 0.40)
    assert tiered_cost("S3_LOGS", 6_000_000_000) == pytest.approx(400 + 4500 * 0.40 + 1000 * 0.20)
    gb = 1_000_000_000
    assert tiered_cost("FLOW_AND_DNS", 3000 * gb) == pytest.approx(500 + 2000 * 0.5 + 500 * 0.25)
    # Flow and DNS logs share one meter: 400 GB each crosses the first tier together.
    split = costs_by_source({"FLOW_LOGS": (0, 400 * gb), "DNS_LOGS": (0, 400 * gb)})
    assert sum(split.values()) == pytest.approx(500 + 300 * 0.5)
    assert split["FLOW_LOGS"] == pytest.approx(split["DNS_LOGS"])


@pytest.fixture
def usage_world(factory):
    admin_account, admin_user, member_account, member_user = factory.organisation()
    stranger_user = factory.user()
    stranger_account = factory.account(admin=stranger_user)
    today = timezone.now().date()
    for account, scale in ((admin_account, 1), (member_account, 2), (stranger_account, 100)):
        for back in range(3):
            day = today - timedelta(days=back)
            UsageRecord.objects.create(account=account, region="us-east-1", data_source="CLOUD_TRAIL", day=day,
                                       events=1_000_000 * scale)
            UsageRecord.objects.create(account=account, region="us-east-1", data_source="FLOW_LOGS", day=day,
                                       bytes=1_000_000_000 * scale)
        UsageRecord.objects.create(account=account, region="us-east-1", data_source="S3_LOGS", day=today,
                                   resource=f"bucket-{account.aws_account_id}", events=10_000 * scale)
    return admin_account, admin_user, member_account, member_user, stranger_user, today


def test_usage_statistics_by_source_account_and_bucket_are_scoped(usage_world):
    admin_account, admin_user, member_account, member_user, stranger_user, today = usage_world
    by_source = {r["key"]: r for r in usage_statistics(actor=admin_user, statistic="SUM_BY_DATA_SOURCE", today=today)}
    assert by_source["CLOUD_TRAIL"]["events"] == 3 * 3_000_000
    assert by_source["CLOUD_TRAIL"]["cost"] == pytest.approx(36.0)  # $4/M, per account: 3M + 6M events
    assert by_source["FLOW_LOGS"]["bytes"] == 9_000_000_000
    by_account = {r["key"]: r for r in usage_statistics(actor=admin_user, statistic="SUM_BY_ACCOUNT", today=today)}
    assert set(by_account) == {admin_account.aws_account_id, member_account.aws_account_id}
    buckets = usage_statistics(actor=admin_user, statistic="TOP_RESOURCES", today=today)
    assert [b["key"] for b in buckets] == [f"bucket-{member_account.aws_account_id}",
                                          f"bucket-{admin_account.aws_account_id}"]
    # A member sees only itself; nobody sees the stranger.
    mine = usage_statistics(actor=member_user, statistic="SUM_BY_ACCOUNT", today=today)
    assert [r["key"] for r in mine] == [member_account.aws_account_id]
    theirs = {r["key"] for r in usage_statistics(actor=stranger_user, statistic="SUM_BY_ACCOUNT", today=today)}
    assert len(theirs) == 1 and not theirs & {admin_account.aws_account_id, member_account.aws_account_id}


def test_monthly_estimate_projects_daily_average(usage_world):
    admin_account, admin_user, *_rest, today = usage_world
    estimate = usage_monthly_estimate(actor=admin_user, account_ids=[admin_account.id], today=today)
    assert estimate["days_observed"] == 3
    # 1M CloudTrail events a day -> 30M a month -> $120; 1 GB flow a day -> 30 GB -> $30.
    assert estimate["by_source"]["CLOUD_TRAIL"] == pytest.approx(120.0)
    assert estimate["by_source"]["FLOW_LOGS"] == pytest.approx(30.0)


def test_usage_page_renders_chart_and_estimate(client, usage_world):
    admin_account, admin_user, member_account, *_rest = usage_world
    client.force_login(admin_user)
    response = client.get(reverse("ingest:usage"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "<svg" in body and "<rect" in body and member_account.aws_account_id in body
    response = client.get(reverse("ingest:usage"), {"account": member_account.aws_account_id, "days": "7"})
    assert response.status_code == 200


def test_sources_page_lists_visible_sources_and_admin_can_add(client, factory):
    admin_account, admin_user, member_account, member_user = factory.organisation()
    stranger_account = factory.account(admin=factory.user())
    LogSource.objects.create(detector=stranger_account.detectors.get(), kind="cloudtrail", bucket="stranger-trail")
    LogSource.objects.create(detector=member_account.detectors.get(), kind="dns", bucket="member-dns",
                             malformed_records=2, malformed_samples=[{"key": "k", "sample": "<script>x</script>"}])
    client.force_login(admin_user)
    detector = admin_account.detectors.get()
    response = client.post(reverse("ingest:source_create"), {"detector": detector.detector_id, "kind": "flow",
                                                             "bucket": "admin-flow", "key_prefix": "logs"})
    assert response.status_code == 302
    source = LogSource.objects.get(bucket="admin-flow")
    assert source.key_prefix == "logs/" and source.detector == detector
    body = client.get(reverse("ingest:sources")).content.decode()
    assert "admin-flow" in body and "member-dns" in body and "stranger-trail" not in body
    assert "&lt;script&gt;" in body and "<script>x" not in body
    assert [s.bucket for s in log_source_list(actor=member_user)] == ["member-dns"]


def test_sources_add_refused_to_viewer(client, factory):
    viewer = factory.user()
    account = factory.account(admin=factory.user())
    factory.grant(viewer, account, Role.VIEWER)
    client.force_login(viewer)
    response = client.post(reverse("ingest:source_create"), {"detector": account.detectors.get().detector_id,
                                                             "kind": "flow", "bucket": "x-bucket"})
    assert response.status_code == 403
    assert not LogSource.objects.exists()
