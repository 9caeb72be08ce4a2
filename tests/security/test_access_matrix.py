"""The access matrix: every URL in the URL conf, requested as every role, answers exactly as
specified, never with a 500 and never with another tenant's data.

The URL conf is walked, so a new page or endpoint without an entry in ACCESS fails the suite until
someone decides who may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from accounts.models import Role

ROLES = ("admin", "analyst", "viewer", "member_admin", "stranger", "anonymous")
ADMIN_SIDE = frozenset({"admin", "analyst", "viewer"})
SIGNED_IN = frozenset(ROLES) - {"anonymous"}
ADMIN_MARKER, MEMBER_MARKER, STRANGER_MARKER = "ZQX-ADMINSIDE", "ZQX-MEMBERSIDE", "ZQX-STRANGER"


@dataclass
class World:
    users: dict
    admin_account: object
    member_account: object
    stranger_account: object

    @property
    def admin_detector(self) -> str:
        return self.admin_account.detectors.get().detector_id

    @property
    def member_detector(self) -> str:
        return self.member_account.detectors.get().detector_id

    @property
    def intel_set(self) -> str:
        from intel.models import IntelSet

        return IntelSet.objects.get(account=self.admin_account).set_id


@dataclass
class Rule:
    """Who may GET a URL (200); everyone else is refused. POST is checked for refusal only."""

    get: frozenset = frozenset()
    kwargs: Callable[[World], dict] = lambda w: {}
    api: bool = False
    post_only: bool = False
    public: bool = False
    skip: str = ""
    query: str = ""
    # Roles that get 200 but must not see the other tenants' markers (lists filtered by tenancy).
    extra: dict = field(default_factory=dict)


def admin_id(w: World) -> dict:
    return {"aws_account_id": w.admin_account.aws_account_id}


def admin_baseline(w: World) -> dict:
    """A learned principal of the admin account (the page 404s until something was learned)."""
    from ingest.anomaly.models import Baseline

    key = f"arn:aws:iam::{w.admin_account.aws_account_id}:user/alice"
    row, _ = Baseline.objects.get_or_create(account=w.admin_account, kind="principal", key=key,
                                            defaults={"label": "alice"})
    return {"pk": row.pk}
def _admin_finding(w: World) -> dict:
    from tests.findings.util import make_finding

    finding = w.admin_account.findings.first() or make_finding(w.admin_account, title=f"Probe {ADMIN_MARKER}")
    return {"finding_id": finding.finding_id}


def _admin_filter(w: World) -> dict:
    from findings.rules_models import SavedFilter

    saved, _ = SavedFilter.objects.get_or_create(
        account=w.admin_account, name="matrix-rule",
        defaults={"action": "ARCHIVE", "criteria": {"Criterion": {"type": {"Equals": ["Recon:EC2/Portscan"]}}},
                  "description": ADMIN_MARKER})
    return {"pk": saved.pk}


def _admin_destination(w: World) -> dict:
    from findings.rules_models import Destination

    destination, _ = Destination.objects.get_or_create(
        account=w.admin_account, name=f"hook {ADMIN_MARKER}",
        defaults={"kind": "webhook", "url": "https://hooks.example.com/vigil"})
    return {"pk": destination.pk}


ACCESS: dict[str, Rule] = {
    "home": Rule(skip="redirect to the first page"),
    "healthz": Rule(public=True),
    "login": Rule(public=True),
    "logout": Rule(skip="POST-only sign-out"),
    "accounts:list": Rule(get=SIGNED_IN),
    "accounts:create": Rule(get=SIGNED_IN),
    "accounts:member_add": Rule(post_only=True),
    "accounts:member_action": Rule(post_only=True),
    "accounts:invitations": Rule(get=SIGNED_IN),
    "accounts:invitation_respond": Rule(post_only=True),
    "accounts:detectors": Rule(get=SIGNED_IN),
    "accounts:detector": Rule(get=ADMIN_SIDE, kwargs=lambda w: {"detector_id": w.admin_detector}),
    "accounts:settings": Rule(get=SIGNED_IN),
    "accounts:switch": Rule(post_only=True),
    "api-accounts": Rule(get=SIGNED_IN, api=True),
    "api-account": Rule(get=ADMIN_SIDE, api=True, kwargs=admin_id),
    "api-members": Rule(get=ADMIN_SIDE, api=True, kwargs=admin_id),
    "api-member-operation": Rule(post_only=True, api=True,
                                 kwargs=lambda w: {**admin_id(w), "operation": "invite"}),
    "api-invitations": Rule(get=ADMIN_SIDE, api=True, kwargs=admin_id),
    "api-invitation-accept": Rule(post_only=True, api=True, kwargs=admin_id),
    "api-invitation-decline": Rule(post_only=True, api=True, kwargs=admin_id),
    "api-invitation-delete": Rule(post_only=True, api=True, kwargs=admin_id),
    "api-administrator": Rule(get=ADMIN_SIDE, api=True, kwargs=admin_id),
    "api-audit": Rule(get=frozenset({"admin"}), api=True, kwargs=admin_id),
    "api-detectors": Rule(get=SIGNED_IN, api=True),
    "api-detector": Rule(get=ADMIN_SIDE, api=True, kwargs=lambda w: {"detector_id": w.admin_detector}),
    "api-detector-suspend": Rule(post_only=True, api=True, kwargs=lambda w: {"detector_id": w.admin_detector}),
    "api-detector-resume": Rule(post_only=True, api=True, kwargs=lambda w: {"detector_id": w.admin_detector}),
    "api-schema": Rule(get=SIGNED_IN, api=True),
    "api-docs": Rule(get=SIGNED_IN, api=True),
    "ingest:sources": Rule(get=SIGNED_IN),
    "ingest:source_create": Rule(post_only=True),
    "ingest:usage": Rule(get=SIGNED_IN),
    "ingest:baselines": Rule(get=SIGNED_IN),
    "ingest:baseline": Rule(get=ADMIN_SIDE, kwargs=admin_baseline),
    "findings:list": Rule(get=SIGNED_IN),
    "findings:poll": Rule(get=SIGNED_IN),
    "findings:summary": Rule(get=SIGNED_IN),
    "findings:archive": Rule(post_only=True),
    "findings:samples": Rule(post_only=True),
    "findings:detail": Rule(get=ADMIN_SIDE, kwargs=_admin_finding),
    "findings:feedback": Rule(post_only=True, kwargs=_admin_finding),
    "findings:filters": Rule(get=SIGNED_IN),
    "findings:filter_new": Rule(get=SIGNED_IN),
    "findings:filter_preview": Rule(post_only=True),
    "findings:filter_edit": Rule(get=ADMIN_SIDE, kwargs=_admin_filter),
    "findings:filter_delete": Rule(post_only=True, kwargs=_admin_filter),
    "findings:proposal_decide": Rule(post_only=True, kwargs=lambda w: {"pk": 999999}),
    "findings:destinations": Rule(get=SIGNED_IN),
    "findings:destination": Rule(get=ADMIN_SIDE, kwargs=_admin_destination),
    "findings:destination_test": Rule(post_only=True, kwargs=_admin_destination),
    "findings:destination_delete": Rule(post_only=True, kwargs=_admin_destination),
    "api-findings": Rule(get=SIGNED_IN, api=True),
    "api-finding": Rule(get=ADMIN_SIDE, api=True, kwargs=_admin_finding),
    "api-findings-archive": Rule(post_only=True, api=True),
    "api-findings-unarchive": Rule(post_only=True, api=True),
    "api-findings-feedback": Rule(post_only=True, api=True),
    "api-findings-statistics": Rule(get=SIGNED_IN, api=True),
    "api-findings-export": Rule(get=SIGNED_IN, api=True, kwargs=lambda w: {"fmt": "csv"}),
    "api-finding-filters": Rule(get=SIGNED_IN, api=True),
    "api-finding-filter-preview": Rule(post_only=True, api=True),
    "api-finding-filter": Rule(get=ADMIN_SIDE, api=True, kwargs=_admin_filter),
    "api-finding-destinations": Rule(get=SIGNED_IN, api=True),
    "api-finding-destination": Rule(get=ADMIN_SIDE, api=True, kwargs=_admin_destination),
    "api-finding-destination-test": Rule(post_only=True, api=True, kwargs=_admin_destination),
    "api-finding-deliveries": Rule(get=ADMIN_SIDE, api=True, kwargs=_admin_destination),
    "intel:list": Rule(get=SIGNED_IN),
    "intel:create": Rule(post_only=True),
    "intel:check": Rule(get=SIGNED_IN),
    # Members see their administrator's lists read-only (GuardDuty's ListThreatIntelSets from a member).
    "intel:detail": Rule(get=ADMIN_SIDE | {"member_admin"}, kwargs=lambda w: {"set_id": w.intel_set}),
    "intel:action": Rule(post_only=True, kwargs=lambda w: {"set_id": w.intel_set}),
    "intel:replace": Rule(post_only=True, kwargs=lambda w: {"set_id": w.intel_set}),
    "api-intel-check": Rule(get=ADMIN_SIDE, api=True, kwargs=lambda w: {"detector_id": w.admin_detector},
                            query="value=198.51.100.7"),
    "api-intel-sets": Rule(get=ADMIN_SIDE, api=True,
                           kwargs=lambda w: {"detector_id": w.admin_detector, "collection": "threat-intel-sets"}),
    "api-intel-set": Rule(get=ADMIN_SIDE, api=True, kwargs=lambda w: {
        "detector_id": w.admin_detector, "collection": "threat-intel-sets", "set_id": w.intel_set}),
    "gdapi:dispatch": Rule(skip="SigV4-signed GuardDuty protocol: tests/gdapi and test_gdapi_matrix"),
}


def _walk(patterns, prefix: str = "", namespace: str | None = None):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = ":".join(filter(None, [namespace, pattern.namespace])) or None
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            if prefix.startswith(("admin/", "^static")):
                continue
            yield (f"{namespace}:{pattern.name}" if namespace else pattern.name), prefix + str(pattern.pattern)


URL_NAMES = sorted({name for name, _ in _walk(get_resolver().url_patterns)})


def test_every_url_has_an_access_rule():
    missing = [name for name in URL_NAMES if name not in ACCESS]
    assert not missing, f"URLs without an access rule in tests/security/test_access_matrix.py: {missing}"
    unnamed = [pattern for name, pattern in _walk(get_resolver().url_patterns) if not name]
    assert not unnamed, f"URL patterns without a name: {unnamed}"


@pytest.fixture
def world(factory) -> World:
    users = {role: factory.user(f"matrix-{role}") for role in ROLES if role != "anonymous"}
    admin_account = factory.account(aws_account_id="111111111111", name=f"Admin {ADMIN_MARKER}", admin=users["admin"])
    factory.grant(users["analyst"], admin_account, Role.ANALYST)
    factory.grant(users["viewer"], admin_account, Role.VIEWER)
    member_account = factory.account(aws_account_id="222222222222", name=f"Member {MEMBER_MARKER}",
                                     admin=users["member_admin"])
    factory.associate(admin_account, member_account)
    stranger_account = factory.account(aws_account_id="999999999999", name=f"Stranger {STRANGER_MARKER}",
                                       admin=users["stranger"])
    from intel.models import IntelSet

    IntelSet.objects.create(account=admin_account, region="us-east-1", kind=IntelSet.Kind.THREAT, slot=1,
                            name=f"List {ADMIN_MARKER}", format=IntelSet.Format.TXT)
    return World(users, admin_account, member_account, stranger_account)


def _client(world: World, role: str, api: bool):
    client = APIClient() if api else Client()
    if role != "anonymous":
        client.force_login(world.users[role])
    return client


def _forbidden_markers(role: str) -> list[str]:
    if role == "stranger":
        return [ADMIN_MARKER, MEMBER_MARKER, "111111111111", "222222222222"]
    if role == "member_admin":
        # A member sees who its administrator is (GuardDuty's GetAdministratorAccount), nothing more.
        return [STRANGER_MARKER, "999999999999"]
    if role in ADMIN_SIDE:
        return [STRANGER_MARKER, "999999999999"]
    return [ADMIN_MARKER, MEMBER_MARKER, STRANGER_MARKER]


CASES = [(name, role) for name in URL_NAMES for role in ROLES
         if name in ACCESS and not ACCESS[name].skip]


@pytest.mark.parametrize(("name", "role"), CASES)
def test_access(world, name, role):
    rule = ACCESS[name]
    url = reverse(name, kwargs=rule.kwargs(world)) + (f"?{rule.query}" if rule.query else "")
    client = _client(world, role, rule.api)
    response = client.get(url)
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    body = raw.decode(errors="replace")
    assert response.status_code < 500, f"{name} as {role}: {response.status_code}"
    if rule.public:
        assert response.status_code in (200, 302)
        return
    if rule.post_only:
        assert response.status_code in (302, 401, 403, 404, 405), f"{name} GET as {role}: {response.status_code}"
        post = client.post(url, {}, format="json") if rule.api else client.post(url, {})
        assert post.status_code < 500, f"{name} POST as {role}: {post.status_code}"
        if role in ("anonymous", "stranger"):
            assert post.status_code in (302, 400, 401, 403, 404, 405), f"{name} POST as {role}: {post.status_code}"
        for marker in _forbidden_markers(role):
            assert marker not in post.content.decode(errors="replace"), f"{name} POST as {role} leaked {marker}"
        return
    if role in rule.get:
        assert response.status_code == 200, f"{name} as {role}: {response.status_code}"
    elif role == "anonymous":
        if rule.api:
            assert response.status_code in (401, 403)
        else:
            assert response.status_code == 302 and "/login/" in response["Location"]
    else:
        assert response.status_code in (403, 404), f"{name} as {role}: {response.status_code}"
    for marker in _forbidden_markers(role):
        assert marker not in body, f"{name} as {role} leaked {marker}"
