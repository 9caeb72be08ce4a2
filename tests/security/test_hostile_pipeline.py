"""The hostile corpus through real log files and the real pipeline, out through the findings API and
pages: stored exactly, served as JSON data, rendered escaped (never markup) with a strict CSP."""

from __future__ import annotations

import html
import json

import pytest
from django.db.models import Q
from django.urls import reverse

from findings.models import Finding
from ingest.models import LogSource, ProcessedObject
from ingest.tasks import discover_all_task
from tests.security.hostile import PWN
from tests.security.hostile_logs import BUCKET, C2_SUFFIX, hostile_world

ROOT_TYPE = "Policy:IAMUser/RootCredentialUsage"
TOR_TYPE = "UnauthorizedAccess:IAMUser/TorIPCaller"
C2_TYPE = "Backdoor:EC2/C&CActivity.B!DNS"


@pytest.fixture
def world(db, member_factory):
    member = member_factory("555555555555", BUCKET)
    world = hostile_world(member)
    discover_all_task.delay()
    return world


def test_hostile_strings_processed_stored_exactly_and_served_inert(world, factory, client):
    _stored_exactly(world)
    client.force_login(_viewer(world, factory))
    _api_serves_data(world, client)
    # Pages: the lists, and the detail of every finding whose string is markup or template syntax.
    markup = Finding.objects.filter(account=world.account, type=ROOT_TYPE).filter(
        Q(api__contains="<") | Q(api__contains="{") | Q(api__contains="javascript:"))
    _pages_escaped(world, client, list(markup.values_list("finding_id", flat=True)))


@pytest.mark.slow
def test_every_finding_page_renders_escaped(world, factory, client):
    client.force_login(_viewer(world, factory))
    _pages_escaped(world, client, list(Finding.objects.filter(account=world.account).values_list("finding_id", flat=True)))


def _stored_exactly(world) -> None:
    objects = ProcessedObject.objects.filter(account=world.account)
    assert sorted(objects.values_list("key", flat=True)) == sorted(world.keys)
    assert set(objects.values_list("status", flat=True)) == {"done"}, list(objects.values_list("key", "error"))
    trail = LogSource.objects.get(detector__account=world.account, kind="cloudtrail")
    assert trail.objects_failed == 0 and trail.malformed_records == world.malformed_expected
    assert len(trail.malformed_samples) >= 1
    dns = LogSource.objects.get(detector__account=world.account, kind="dns")
    assert dns.objects_failed == 0 and dns.malformed_records == world.dns_malformed_expected == 2

    root = {f.service["action"]["awsApiCallAction"]["api"]: f for f in Finding.objects.filter(type=ROOT_TYPE)}
    for s in world.root_apis:
        finding = root[s]
        call = finding.service["action"]["awsApiCallAction"]
        assert call["userAgent"] == s and call["errorCode"] == s
        assert finding.count == 1
    tor_users = {f.resource["accessKeyDetails"]["userName"] for f in Finding.objects.filter(type=TOR_TYPE)}
    assert tor_users == set(world.tor_users)
    domains = {f.service["action"]["dnsRequestAction"]["domain"] for f in Finding.objects.filter(type=C2_TYPE)}
    assert domains == set(world.domains)
    assert all(d.endswith(C2_SUFFIX) for d in domains)


def _api_serves_data(world, client) -> None:
    served: set[str] = set()
    for finding in Finding.objects.filter(account=world.account):
        response = client.get(reverse("api-finding", kwargs={"finding_id": finding.finding_id}))
        assert response.status_code == 200
        assert response["Content-Type"].startswith("application/json")
        assert response["X-Content-Type-Options"] == "nosniff"
        body = json.loads(response.content)
        text = json.dumps(body)
        served.update(_strings(body))
        # JSON escapes nothing dangerous for a browser that treats it as data; the raw bytes must
        # still not be sniffable as HTML: no literal markup survives outside JSON strings.
        assert response.content.lstrip()[:1] in (b"{", b"[") and text
    assert set(world.root_apis) <= served
    assert set(world.domains) <= served


def _pages_escaped(world, client, finding_ids: list[str]) -> None:
    assert finding_ids
    pages = [reverse("findings:list"), reverse("findings:list") + "?view=all"]
    pages += [reverse("findings:detail", kwargs={"finding_id": f}) for f in finding_ids]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        csp = response["Content-Security-Policy"]
        script_src = next(p for p in csp.split(";") if p.strip().startswith("script-src"))
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
        page = response.content.decode()
        for marker in ("<script>" + PWN, "onerror=\"" + PWN, "onload=\"" + PWN, "<svg onload", "<img src=x",
                       "javascript:" + PWN + '"', "<iframe srcdoc"):
            assert marker not in page, (url, marker)
        assert "{{ settings.SECRET_KEY }}" not in page or html.escape("{{ settings.SECRET_KEY }}") in page
        assert "49" not in _between(page, "{{7*7}}")  # template syntax is text, never evaluated


def _between(page: str, marker: str) -> str:
    """Text right after a marker (to show a template expression was not evaluated)."""
    at = page.find(marker)
    return page[at + len(marker): at + len(marker) + 2] if at >= 0 else ""


def _strings(value) -> set[str]:
    out: set[str] = set()
    if isinstance(value, str):
        out.add(value)
    elif isinstance(value, dict):
        for v in value.values():
            out |= _strings(v)
    elif isinstance(value, list):
        for v in value:
            out |= _strings(v)
    return out


def _viewer(world, factory):
    user = factory.user()
    factory.grant(user, world.account, "viewer")
    return user
