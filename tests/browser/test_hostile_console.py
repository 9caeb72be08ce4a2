"""In a real browser: findings made from log files full of hostile strings (tests/security/hostile.py)
are shown as text. No payload runs (each would set window.__pwned or document.title), no element
carries an injected event handler, the browser reports no errors (a CSP refusal of an injected
script would be one), and the page's CSP allows no inline script."""

from __future__ import annotations

import pytest
from django.db.models import Q

from findings.models import Finding
from ingest.tasks import discover_all_task
from tests.browser.conftest import login
from tests.factories import PASSWORD
from tests.ingest.conftest import aws, member_factory, moto_endpoint  # noqa: F401
from tests.security.hostile_logs import BUCKET, hostile_world

pytestmark = [pytest.mark.slow, pytest.mark.browser]

INJECTED_HANDLERS = """() => [...document.querySelectorAll('*')].filter(
    e => [...e.attributes].some(a => a.name.startsWith('on') || /^\\s*javascript:/i.test(a.value))).length"""


def _assert_inert(page, console_errors: list[str], response=None) -> None:
    assert page.evaluate("() => window.__pwned") is None
    assert page.title() != "pwned"
    assert page.evaluate(INJECTED_HANDLERS) == 0
    assert page.evaluate("() => document.querySelectorAll('iframe, object, embed, base, meta[http-equiv]').length") == 0
    assert not console_errors, console_errors
    if response is not None:
        csp = response.headers["content-security-policy"]
        script_src = next(p for p in csp.split(";") if p.strip().startswith("script-src")).split()
        assert script_src == ["script-src", "'self'"], csp


def test_hostile_findings_display_inert(page, transactional_db, factory, member_factory):  # noqa: F811
    world = hostile_world(member_factory("555555555555", BUCKET))
    discover_all_task.delay()
    viewer = factory.user("analyst")
    factory.grant(viewer, world.account, "viewer")
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(f"{msg.text} {msg.location.get('url')}")
            if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico") else None)

    login(page, "analyst", PASSWORD)
    response = page.goto(page.base_url + "/findings/?sort=type")
    page.locator("tr[data-finding]").first.wait_for()
    _assert_inert(page, console_errors, response)
    text = page.locator("body").inner_text()
    assert "Hostile <b>Corp</b> {{x}}" in text  # the hostile account name, shown as the text it is

    markup = Finding.objects.filter(account=world.account).filter(
        Q(api__contains="<") | Q(domain__contains="<") | Q(user_name__contains="<") | Q(api__contains="{{"))
    assert markup.count() >= 30
    # The detail panel through HTMX (as an analyst clicks), then every markup finding's own page.
    page.locator("a.findinglink").first.click()
    page.locator("#finding-detail").wait_for()
    _assert_inert(page, console_errors)
    shown = 0
    for finding in markup:
        response = page.goto(f"{page.base_url}/findings/f/{finding.finding_id}/", timeout=90000)
        assert response.status == 200
        _assert_inert(page, console_errors, response)
        detail = page.locator("#finding-detail").inner_text()
        if finding.api:
            assert f"API {finding.api[:100]}" in detail
        shown += 1
    assert shown == markup.count()
