"""Saved filters and suppression rules: roles, preview, suppression at upsert, the feedback loop."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from accounts.models import AuditEvent, Role
from console.errors import ConflictError, ServiceError
from findings import rules
from findings.models import Finding, FindingPublication
from findings.rules_models import SavedFilter, SuppressionProposal
from findings.suppression import draft_values, is_suppressed
from tests.findings.util import PORT_PROBE, SSH_BRUTE, make_finding


@pytest.fixture
def org(factory):
    admin_account, admin_user, member_account, member_user = factory.organisation()
    return admin_account, admin_user, member_account, member_user


def test_archive_rule_suppresses_new_matching_findings_of_members_and_is_not_retroactive(org):
    admin_account, admin_user, member_account, _ = org
    before = make_finding(member_account, finding_type=PORT_PROBE, instance="i-scanner")
    rule = rules.filter_create(actor=admin_user, account=admin_account, name="scanner-probes", action="ARCHIVE",
                               criteria={"Criterion": {"type": {"Equals": [PORT_PROBE]},
                                                       "resource.instanceDetails.instanceId": {"Matches": ["i-scan*"]}}})
    assert not Finding.objects.get(pk=before.pk).archived  # rules are not retroactive
    matching = make_finding(member_account, finding_type=PORT_PROBE, instance="i-scanner2")
    other = make_finding(member_account, finding_type=SSH_BRUTE, instance="i-scanner2")
    assert matching.archived and not other.archived
    assert not FindingPublication.objects.filter(finding=matching).exists()
    rule.refresh_from_db()
    assert rule.suppressed_count == 1
    assert AuditEvent.objects.filter(account=admin_account, action="filter.created").exists()


def test_noop_filters_never_suppress(org):
    admin_account, admin_user, member_account, _ = org
    rules.filter_create(actor=admin_user, account=admin_account, name="probes-view", action="NOOP",
                        criteria={"Criterion": {"type": {"Equals": [PORT_PROBE]}}})
    assert not make_finding(member_account, finding_type=PORT_PROBE).archived


def test_is_suppressed_hook_agrees_with_the_rule(org):
    admin_account, admin_user, member_account, _ = org
    rules.filter_create(actor=admin_user, account=admin_account, name="ssh", action="ARCHIVE",
                        criteria={"Criterion": {"type": {"Equals": [SSH_BRUTE]}, "severity": {"LessThan": 5}}})
    from django.utils import timezone

    from findings.services import FindingDraft

    now = timezone.now()
    low = FindingDraft(account_id=member_account.id, region="us-east-1", type=SSH_BRUTE, severity=2.0, dedup_key="x",
                       title="t", first_seen=now, last_seen=now)
    high = FindingDraft(account_id=member_account.id, region="us-east-1", type=SSH_BRUTE, severity=8.0, dedup_key="y",
                        title="t", first_seen=now, last_seen=now)
    assert is_suppressed(draft_values(low, aws_account_id=member_account.aws_account_id), member_account)
    assert not is_suppressed(draft_values(high, aws_account_id=member_account.aws_account_id), member_account)


@pytest.mark.parametrize("who", ["member_admin", "viewer"])
def test_only_the_administrators_admins_and_analysts_manage_rules(org, factory, who):
    admin_account, admin_user, member_account, member_user = org
    if who == "viewer":
        user = factory.user()
        factory.grant(user, admin_account, Role.VIEWER)
        target = admin_account
    else:
        user, target = member_user, member_account
    with pytest.raises(ServiceError) as refused:
        rules.filter_create(actor=user, account=target, name="mine", action="ARCHIVE",
                            criteria={"Criterion": {"type": {"Equals": [PORT_PROBE]}}})
    assert refused.value.status_code == 403
    analyst = factory.user()
    factory.grant(analyst, admin_account, Role.ANALYST)
    # An analyst of the administrator may, and the rule lands on the administrator even via a member.
    rule = rules.filter_create(actor=analyst, account=member_account, name="via-member", action="ARCHIVE",
                               criteria={"Criterion": {"type": {"Equals": [PORT_PROBE]}}})
    assert rule.account == admin_account


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "a b"}, "3 to 64"),
    ({"name": "ok-name", "rank": 101}, "rank"),
    ({"name": "ok-name", "action": "DELETE"}, "NOOP"),
    ({"name": "ok-name", "criteria": {"Criterion": {}}}, "at least one"),
    ({"name": "ok-name", "criteria": {"Criterion": {"nope": {"Equals": ["x"]}}}}, "not supported"),
    ({"name": "ok-name", "action": "ARCHIVE", "criteria": {"Criterion": {"service.archived": {"Equals": ["false"]}}}},
     "which findings"),
])
def test_rule_validation(org, kwargs, message):
    admin_account, admin_user, *_ = org
    args = {"criteria": {"Criterion": {"type": {"Equals": [PORT_PROBE]}}}, **kwargs}
    with pytest.raises(ServiceError, match=message):
        rules.filter_create(actor=admin_user, account=admin_account, **args)


def test_duplicate_names_and_quota(org):
    admin_account, admin_user, *_ = org
    criteria = {"Criterion": {"type": {"Equals": [PORT_PROBE]}}}
    rules.filter_create(actor=admin_user, account=admin_account, name="dup", criteria=criteria)
    with pytest.raises(ConflictError):
        rules.filter_create(actor=admin_user, account=admin_account, name="dup", criteria=criteria)
    SavedFilter.objects.bulk_create([SavedFilter(account=admin_account, name=f"f{i:03d}", criteria=criteria)
                                     for i in range(99)])
    with pytest.raises(ConflictError, match="100"):
        rules.filter_create(actor=admin_user, account=admin_account, name="one-too-many", criteria=criteria)


def test_preview_counts_existing_findings_in_the_administrators_domain(org, factory):
    admin_account, admin_user, member_account, _ = org
    outsider = factory.account()
    for account in (admin_account, member_account, outsider):
        make_finding(account, finding_type=PORT_PROBE)
    make_finding(member_account, finding_type=SSH_BRUTE)
    criteria = {"Criterion": {"type": {"Equals": [PORT_PROBE]}}}
    assert rules.filter_preview(actor=admin_user, account=admin_account, criteria=criteria) == 2


def test_suppress_like_this_prefills_the_form_and_preview_and_save_work(client, org):
    admin_account, admin_user, member_account, _ = org
    finding = make_finding(member_account, finding_type=PORT_PROBE, instance="i-web-1")
    make_finding(member_account, finding_type=PORT_PROBE, instance="i-web-1", key="again")
    client.force_login(admin_user)
    form = client.get(reverse("findings:filter_new") + f"?from={finding.finding_id}").content.decode()
    assert "i-web-1" in form and PORT_PROBE in form
    criteria = json.dumps(rules.criteria_from_finding(finding))
    preview = client.post(reverse("findings:filter_preview"), {"criteria": criteria, "account": admin_account.id})
    assert 'id="preview-count">2<' in preview.content.decode()
    bad = client.post(reverse("findings:filter_preview"), {"criteria": "{not json", "account": admin_account.id})
    assert bad.status_code == 400 and "not valid JSON" in bad.content.decode()
    saved = client.post(reverse("findings:filter_new"), {"criteria": criteria, "account": admin_account.id,
                                                         "name": "web-probes", "action": "ARCHIVE", "rank": "1"})
    assert saved.status_code == 302
    assert make_finding(member_account, finding_type=PORT_PROBE, instance="i-web-1", key="new").archived
    listing = client.get(reverse("findings:filters")).content.decode()
    assert "web-probes" in listing and "ARCHIVE" in listing


def test_saved_view_applies_on_the_findings_page(client, org):
    admin_account, admin_user, member_account, _ = org
    wanted = make_finding(member_account, finding_type=SSH_BRUTE)
    make_finding(member_account, finding_type=PORT_PROBE)
    view = rules.filter_create(actor=admin_user, account=admin_account, name="ssh-view",
                               criteria={"Criterion": {"type": {"Equals": [SSH_BRUTE]}}})
    client.force_login(admin_user)
    body = client.get(reverse("findings:list") + f"?view={view.pk}").content.decode()
    assert wanted.finding_id in body and body.count('<tr data-finding="') == 1


def test_not_useful_feedback_proposes_a_rule_that_an_admin_accepts(client, org, factory, settings):
    settings.VIGIL_SUPPRESSION_PROPOSAL_THRESHOLD = 3
    admin_account, admin_user, member_account, member_user = org
    noisy = [make_finding(member_account, finding_type=PORT_PROBE, instance="i-bastion") for _ in range(3)]
    client.force_login(member_user)  # a member's own people may give feedback
    for f in noisy[:2]:
        client.post(reverse("findings:feedback", args=[f.finding_id]), {"feedback": "NOT_USEFUL"})
    assert not SuppressionProposal.objects.exists()
    client.post(reverse("findings:feedback", args=[noisy[2].finding_id]), {"feedback": "NOT_USEFUL"})
    proposal = SuppressionProposal.objects.get()
    assert proposal.account == admin_account and proposal.not_useful_count == 3
    assert proposal.criteria == {"Criterion": {"type": {"Equals": [PORT_PROBE]},
                                               "resource.instanceDetails.instanceId": {"Equals": ["i-bastion"]}}}
    client.force_login(admin_user)
    page = client.get(reverse("findings:filters")).content.decode()
    assert f'data-proposal="{proposal.pk}"' in page
    # A member's admin cannot decide; the administrator's admin can.
    client.force_login(member_user)
    assert client.post(reverse("findings:proposal_decide", args=[proposal.pk]), {"decision": "accept"}).status_code == 404
    client.force_login(admin_user)
    assert client.post(reverse("findings:proposal_decide", args=[proposal.pk]), {"decision": "accept"}).status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == "ACCEPTED" and proposal.saved_filter.action == "ARCHIVE"
    assert make_finding(member_account, finding_type=PORT_PROBE, instance="i-bastion").archived


def test_dismissed_proposals_are_not_proposed_again(org, settings):
    settings.VIGIL_SUPPRESSION_PROPOSAL_THRESHOLD = 2
    admin_account, admin_user, member_account, _ = org
    from findings.triage import findings_set_feedback

    noisy = [make_finding(member_account, finding_type=SSH_BRUTE, instance="i-x") for _ in range(3)]
    findings_set_feedback(actor=admin_user, findings=noisy[:2], feedback="NOT_USEFUL")
    proposal = SuppressionProposal.objects.get()
    rules.proposal_decide(actor=admin_user, proposal=proposal, accept=False)
    findings_set_feedback(actor=admin_user, findings=noisy[2:], feedback="NOT_USEFUL")
    assert SuppressionProposal.objects.count() == 1
    assert SuppressionProposal.objects.get().status == "DISMISSED"
    with pytest.raises(ConflictError):
        rules.proposal_decide(actor=admin_user, proposal=SuppressionProposal.objects.get(), accept=True)
