"""In a real browser: an administrator invites a member, the member accepts, both see Enabled."""

from __future__ import annotations

import pytest

from tests.browser.conftest import login
from tests.factories import PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_invite_accept_enabled_on_both_sides(page, transactional_db, factory):
    admin_user, member_user = factory.user("alice"), factory.user("bob")
    factory.account(aws_account_id="111111111111", name="Security", admin=admin_user)
    factory.account(aws_account_id="222222222222", name="Production", admin=member_user, email="prod@example.com")

    login(page, "alice", PASSWORD)
    page.goto(page.base_url + "/accounts/")
    page.fill("#member-add-form input[name=account_id]", "222222222222")
    page.fill("#member-add-form input[name=email]", "prod@example.com")
    page.click("#member-add-form button[type=submit]")
    row = page.locator("#member-table tr[data-account='222222222222']")
    row.get_by_text("Created").wait_for()
    row.locator("input[type=checkbox]").check()
    page.fill("#members input[name=message]", "Please join the Security organisation")
    page.click("#members button[value=invite]")
    page.locator("#members").get_by_text("Invitations sent.").wait_for()
    assert "Invited" in page.locator("#member-table tr[data-account='222222222222']").inner_text()

    login(page, "bob", PASSWORD)
    page.goto(page.base_url + "/accounts/invitations/")
    invitation = page.locator("#invitation-table tr[data-administrator='111111111111']")
    assert "Please join the Security organisation" in invitation.inner_text()
    invitation.locator("button[value=accept]").click()
    page.locator("#administrator-status").wait_for()
    assert page.locator("#administrator-status").inner_text() == "Enabled"

    login(page, "alice", PASSWORD)
    page.goto(page.base_url + "/accounts/")
    assert "Enabled" in page.locator("#member-table tr[data-account='222222222222']").inner_text()
