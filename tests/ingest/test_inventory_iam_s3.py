"""Inventory of IAM principals and S3 buckets, refreshed through the member's assumed role from a
moto server over HTTP by the beat task, and RuleState expiry."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Account, Detector
from ingest.models import InventoryBucket, InventoryPrincipal, RuleState
from ingest.rules import REGISTRY, load_rules
from ingest.state import rule_state_expire, rule_state_retention, rule_window
from ingest.tasks import inventory_refresh_all_task, rule_state_expire_task

EC2_TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "ec2.amazonaws.com"}}]}


def _account(member, aws_account_id: str) -> Account:
    account = Account.objects.create(aws_account_id=aws_account_id, name=f"Inv {aws_account_id}",
                                     role_arn=member.role_arn, external_id=member.external_id)
    Detector.objects.create(account=account, region="us-east-1")
    return account


@pytest.mark.django_db
def test_refresh_lists_users_roles_and_buckets_and_forgets_deleted_ones(member_factory):
    member = member_factory("666666666601", "inv-logs-666666666601")
    iam, s3 = member.client("iam"), member.client("s3")
    alice = iam.create_user(UserName="alice", Path="/people/", Tags=[{"Key": "team", "Value": "data"}])["User"]
    iam.create_user(UserName="ci-deploy")
    role = iam.create_role(RoleName="web-instance", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))["Role"]
    s3.create_bucket(Bucket="inv-payroll-666666666601")
    other = member_factory("666666666602", "inv-other-666666666602")
    other.client("iam").create_user(UserName="stranger")
    account = _account(member, "666666666601")
    # A principal learned some other way is not the API's to remove.
    InventoryPrincipal.objects.create(account=account, arn="arn:aws:iam::666666666601:user/from-logs",
                                      kind="IAMUser", name="from-logs", learned_from="logs")

    inventory_refresh_all_task.delay()

    users = {p.name: p for p in InventoryPrincipal.objects.filter(account=account, kind="IAMUser")}
    assert {"alice", "ci-deploy", "from-logs"} <= set(users) and "stranger" not in users
    assert users["alice"].arn == alice["Arn"] and users["alice"].principal_id == alice["UserId"]
    assert users["alice"].path == "/people/" and users["alice"].learned_from == "api"
    stored_role = InventoryPrincipal.objects.get(account=account, arn=role["Arn"])
    assert stored_role.kind == "Role" and stored_role.principal_id == role["RoleId"]
    assert stored_role.details["trustedPrincipals"] == ["ec2.amazonaws.com"]
    buckets = set(InventoryBucket.objects.filter(account=account).values_list("name", flat=True))
    assert {"inv-logs-666666666601", "inv-payroll-666666666601"} <= buckets
    assert "inv-other-666666666602" not in buckets

    iam.delete_user(UserName="ci-deploy")
    s3.delete_bucket(Bucket="inv-payroll-666666666601")
    inventory_refresh_all_task.delay()
    names = set(InventoryPrincipal.objects.filter(account=account).values_list("name", flat=True))
    assert "ci-deploy" not in names and {"alice", "web-instance", "from-logs"} <= names
    assert not InventoryBucket.objects.filter(account=account, name="inv-payroll-666666666601").exists()
    assert InventoryPrincipal.objects.filter(account=account, name="alice").count() == 1   # updated, not duplicated


@pytest.mark.django_db
def test_suspended_detector_accounts_are_not_refreshed(member_factory):
    member = member_factory("666666666603", "inv-logs-666666666603")
    member.client("iam").create_user(UserName="bob")
    account = _account(member, "666666666603")
    Detector.objects.filter(account=account).update(status="DISABLED")
    inventory_refresh_all_task.delay()
    assert not InventoryPrincipal.objects.filter(account=account).exists()
    assert not InventoryBucket.objects.filter(account=account).exists()


# --- RuleState expiry ---------------------------------------------------------------------------------


def test_retention_follows_each_rules_window_and_history(settings):
    load_rules()
    settings.VIGIL_RULE_STATE_GRACE_HOURS = 2
    settings.VIGIL_RULE_STATE_HISTORY_DAYS = 30
    brute = REGISTRY["brute_force.brute_force"]
    assert rule_window(brute) == timedelta(seconds=600)
    assert rule_state_retention(brute) == timedelta(seconds=600) + timedelta(hours=2)
    assert rule_state_retention(REGISTRY["console_login.console_login_distant"]) == timedelta(minutes=120, hours=2)
    # Histories outlive their window: a mail relay's first port-25 activity must be remembered.
    assert rule_state_retention(REGISTRY["spambot.spambot"]) == timedelta(days=30)
    assert rule_state_retention(REGISTRY["port_probe.port_probe"]) is None   # keeps no state
    settings.VIGIL_RULE_SETTINGS = {"brute_force.brute_force": {"window_seconds": 3600}}
    assert rule_state_retention(brute) == timedelta(hours=3)


@pytest.mark.django_db
def test_expiry_deletes_only_rows_older_than_their_rules_retention(factory, settings):
    settings.VIGIL_RULE_STATE_GRACE_HOURS = 1
    settings.VIGIL_RULE_STATE_HISTORY_DAYS = 10
    account = factory.account()
    now = timezone.now()

    def row(rule: str, key: str, age: timedelta) -> None:
        RuleState.objects.create(account=account, region="us-east-1", rule=rule, key=key, value={"b": []})
        RuleState.objects.filter(rule=rule, key=key).update(updated_at=now - age)

    row("brute_force.brute_force", "old", timedelta(hours=1, minutes=11))      # window 10 min + 1 h grace
    row("brute_force.brute_force", "live", timedelta(hours=1, minutes=9))
    row("spambot.spambot", "history|i-1", timedelta(days=9))                   # history: 10 days
    row("spambot.spambot", "history|i-2", timedelta(days=11))
    row("retired_rule.gone", "k", timedelta(days=11))                           # unknown rule: history period
    row("retired_rule.gone", "k2", timedelta(days=1))

    assert rule_state_expire(now=now, batch=1) == {"brute_force.brute_force": 1, "retired_rule.gone": 1,
                                                   "spambot.spambot": 1}
    left = set(RuleState.objects.values_list("rule", "key"))
    assert left == {("brute_force.brute_force", "live"), ("spambot.spambot", "history|i-1"),
                    ("retired_rule.gone", "k2")}
    RuleState.objects.filter(key="live").update(updated_at=now - timedelta(days=1))
    assert rule_state_expire_task.delay() is not None
    assert not RuleState.objects.filter(key="live").exists()


def test_beat_schedules_both_housekeeping_tasks(settings):
    from console.celery import app

    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"ingest.rule_state_expire", "ingest.inventory_refresh_all"} <= tasks
    assert {"ingest.rule_state_expire", "ingest.inventory_refresh_global"} <= set(app.tasks)
