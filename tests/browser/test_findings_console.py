"""In a real browser: filter and share, open evidence, archive several, suppress like this, live updates."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from findings.models import Finding
from tests.browser.conftest import login
from tests.factories import PASSWORD
from tests.findings.util import PORT_PROBE, SSH_BRUTE, make_finding

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ROWS = "#finding-table tbody tr[data-finding]"


@pytest.fixture
def org(transactional_db, factory):
    admin_user, member_user = factory.user("alice"), factory.user("bob")
    admin = factory.account(aws_account_id="111111111111", name="Security", admin=admin_user)
    member = factory.account(aws_account_id="222222222222", name="Production", admin=member_user)
    factory.associate(admin, member)
    return admin, member


def _row_ids(page) -> list[str]:
    return page.locator("#finding-table tbody tr[data-finding]").evaluate_all(
        "rows => rows.map(r => r.getAttribute('data-finding'))")


def test_filter_by_severity_and_type_then_share_the_url(page, org):
    admin, member = org
    wanted = make_finding(member, finding_type=SSH_BRUTE, severity=8.0)
    make_finding(member, finding_type=SSH_BRUTE, severity=2.0)
    make_finding(admin, finding_type=PORT_PROBE, severity=8.0)
    login(page, "alice", PASSWORD)
    page.goto(page.base_url + "/findings/")
    assert len(_row_ids(page)) == 3
    page.fill("#finding-filters input[name=sev_min]", "7")
    page.fill("#finding-filters input[name=type]", SSH_BRUTE)
    page.press("#finding-filters input[name=type]", "Enter")
    page.wait_for_url(lambda url: "sev_min=7" in url and "type=" in url)
    expect(page.locator(ROWS)).to_have_count(1)
    assert _row_ids(page) == [wanted.finding_id]
    shared = page.url
    other = page.context.new_page()
    other.goto(shared)
    assert other.locator("#finding-filters input[name=sev_min]").input_value() == "7"
    assert _row_ids(other) == [wanted.finding_id]
    other.close()


def test_open_a_finding_and_see_its_evidence(page, org):
    _, member = org
    finding = make_finding(member, finding_type=SSH_BRUTE, evidence=[{"eventName": "ConsoleLogin",
                                                                      "userAgent": "<b>curl</b>"}])
    login(page, "alice", PASSWORD)
    page.goto(page.base_url + "/findings/")
    page.click(f"tr[data-finding='{finding.finding_id}'] a.findinglink")
    panel = page.locator("#panel #finding-detail")
    panel.wait_for()
    evidence = panel.locator("pre.evidence").first.inner_text()
    assert "ConsoleLogin" in evidence and "<b>curl</b>" in evidence  # shown as text, not markup
    assert panel.locator("b").count() == 0
    assert finding.finding_id in panel.locator(f"#finding-json-{finding.finding_id}").inner_text()
    assert page.url.endswith("/findings/")  # the panel opens in place


def test_archive_several(page, org):
    _, member = org
    rows = [make_finding(member) for _ in range(3)]
    login(page, "alice", PASSWORD)
    page.goto(page.base_url + "/findings/")
    for f in rows[:2]:
        page.check(f"tr[data-finding='{f.finding_id}'] input[name=finding_ids]")
    page.click("#finding-table-form button[value=archive]")
    page.locator("#results").get_by_text("2 findings archived.").wait_for()
    assert _row_ids(page) == [rows[2].finding_id]
    assert Finding.objects.filter(archived=True).count() == 2


def test_suppress_like_this_then_a_new_matching_finding_arrives_archived(page, org):
    _, member = org
    finding = make_finding(member, finding_type=PORT_PROBE, instance="i-bastion")
    login(page, "alice", PASSWORD)
    page.goto(page.base_url + "/findings/")
    page.click(f"tr[data-finding='{finding.finding_id}'] a.findinglink")
    page.click("#panel #suppress-like-this")
    page.wait_for_url("**/findings/filters/new/**")
    assert "i-bastion" in page.locator("#filter-form textarea[name=criteria]").input_value()
    page.fill("#filter-form input[name=name]", "bastion-probes")
    page.click("#preview-button")
    page.locator("#preview-count").wait_for()
    assert page.locator("#preview-count").inner_text() == "1"
    page.click("#filter-form button[type=submit]")
    page.wait_for_url("**/findings/filters/")
    assert "bastion-probes" in page.locator("#filter-table").inner_text()
    arrived = make_finding(member, finding_type=PORT_PROBE, instance="i-bastion", key="later")
    assert arrived.archived
    page.goto(page.base_url + "/findings/?status=archived")
    assert _row_ids(page) == [arrived.finding_id]
    # Told apart from findings archived by hand: a suppressed one is never published.
    assert "suppressed" in page.locator(f"tr[data-finding='{arrived.finding_id}']").inner_text()


def test_a_new_finding_appears_live_behind_a_marker(page, org, settings):
    settings.VIGIL_FINDINGS_POLL_SECONDS = 1
    _, member = org
    make_finding(member, finding_type=PORT_PROBE)
    login(page, "alice", PASSWORD)
    page.goto(page.base_url + "/findings/")
    assert len(_row_ids(page)) == 1
    fresh = make_finding(member, finding_type=SSH_BRUTE, severity=8.0)
    marker = page.locator("#live .newmarker")
    marker.wait_for(timeout=10000)
    assert "1 new or updated finding" in marker.inner_text()
    assert len(_row_ids(page)) == 1  # the table does not jump on its own
    marker.click()
    expect(page.locator(ROWS)).to_have_count(2)
    assert fresh.finding_id in _row_ids(page)
