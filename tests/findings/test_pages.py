"""The findings pages over HTTP: scoping, filters in the URL, keyset pages, live marker, detail panel, triage."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse

from accounts.models import Role
from findings.models import Finding
from tests.findings.util import IAM_TOR, PORT_PROBE, SSH_BRUTE, T0, make_finding

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def org(factory):
    admin_account, admin_user, member_account, member_user = factory.organisation()
    stranger = factory.user()
    stranger_account = factory.account(admin=stranger)
    return {"admin": admin_user, "admin_account": admin_account, "member": member_user,
            "member_account": member_account, "stranger": stranger, "stranger_account": stranger_account}


def _rows(response) -> list[str]:
    body = response.content.decode()
    return [part.split('"', 1)[0] for part in body.split('<tr data-finding="')[1:]]


def test_admin_sees_members_findings_member_only_its_own_stranger_none(client, org):
    own = make_finding(org["admin_account"], finding_type=PORT_PROBE)
    member = make_finding(org["member_account"], finding_type=SSH_BRUTE)
    foreign = make_finding(org["stranger_account"], finding_type=IAM_TOR, access_key="AKIAFOREIGN")
    client.force_login(org["admin"])
    assert set(_rows(client.get(reverse("findings:list")))) == {own.finding_id, member.finding_id}
    client.force_login(org["member"])
    assert _rows(client.get(reverse("findings:list"))) == [member.finding_id]
    client.force_login(org["stranger"])
    assert _rows(client.get(reverse("findings:list"))) == [foreign.finding_id]


def test_filters_combine_from_the_url_and_htmx_gets_only_the_results(client, org):
    a = make_finding(org["admin_account"], finding_type=SSH_BRUTE, severity=8.0, instance="i-aaa")
    make_finding(org["admin_account"], finding_type=SSH_BRUTE, severity=2.0, instance="i-bbb")
    make_finding(org["member_account"], finding_type=PORT_PROBE, severity=8.0, instance="i-aaa")
    client.force_login(org["admin"])
    url = reverse("findings:list") + f"?sev_min=7&type={SSH_BRUTE}"
    assert _rows(client.get(url)) == [a.finding_id]
    partial = client.get(url, **HTMX)
    assert partial.status_code == 200
    assert "<html" not in partial.content.decode() and 'id="results"' in partial.content.decode()
    assert _rows(client.get(reverse("findings:list") + "?instance_id=i-aaa&account="
                            + org["admin_account"].aws_account_id)) == [a.finding_id]


def test_archived_view_and_bad_filters_answer_400(client, org):
    f = make_finding(org["admin_account"])
    Finding.objects.filter(pk=f.pk).update(archived=True)
    client.force_login(org["admin"])
    assert _rows(client.get(reverse("findings:list"))) == []
    assert _rows(client.get(reverse("findings:list") + "?status=archived")) == [f.finding_id]
    assert _rows(client.get(reverse("findings:list") + "?status=all")) == [f.finding_id]
    bad = client.get(reverse("findings:list") + "?sev_min=high")
    assert bad.status_code == 400 and "not a number" in bad.content.decode()
    assert client.get(reverse("findings:list") + "?cursor=%%%").status_code == 400


def test_keyset_pages_cover_every_finding_once_in_order_for_each_sort(client, org):
    for i in range(23):
        make_finding(org["admin_account"], severity=1 + (i % 9), at=T0 + timedelta(minutes=i % 5),
                     instance=f"i-{i % 4}")
    client.force_login(org["admin"])
    for sort in ("severity", "last_seen", "resource", "account", "count", "type"):
        for direction in ("asc", "desc"):
            seen: list[str] = []
            url = reverse("findings:list") + f"?sort={sort}&dir={direction}"
            from findings import search

            page = search.search(actor=org["admin"], criteria=search.params_to_criteria({}), sort=sort,
                                 direction=direction, limit=5)
            seen = [f.finding_id for f in page.rows]
            while page.next_cursor:
                page = search.search(actor=org["admin"], criteria=search.params_to_criteria({}), sort=sort,
                                     direction=direction, cursor=page.next_cursor, limit=5)
                seen += [f.finding_id for f in page.rows]
            assert len(seen) == len(set(seen)) == 23, (sort, direction)
            assert client.get(url).status_code == 200


def test_next_page_link_carries_the_filter_and_a_cursor(client, org, settings):
    from findings import search

    settings.DEBUG = False
    for i in range(search.PAGE_SIZE + 3):
        make_finding(org["admin_account"], at=T0 + timedelta(seconds=i))
    client.force_login(org["admin"])
    first = client.get(reverse("findings:list") + "?region=us-east-1")
    body = first.content.decode()
    assert len(_rows(first)) == search.PAGE_SIZE and 'id="next-page"' in body
    href = body.split('id="next-page" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert "region=us-east-1" in href and "cursor=" in href
    second = client.get(reverse("findings:list") + href)
    assert len(_rows(second)) == 3 and not set(_rows(second)) & set(_rows(first))


def test_poll_counts_findings_newer_than_the_page(client, org):
    """The page's poll URL carries the render time; the marker counts findings updated since."""
    make_finding(org["admin_account"], at=T0, now=T0)
    client.force_login(org["admin"])
    since = (T0 + timedelta(seconds=1)).isoformat()
    empty = client.get(reverse("findings:poll"), {"since": since})
    assert "new" not in empty.content.decode()
    make_finding(org["admin_account"], at=T0 + timedelta(minutes=5), now=T0 + timedelta(minutes=5))
    make_finding(org["stranger_account"], at=T0 + timedelta(minutes=5), now=T0 + timedelta(minutes=5))
    marker = client.get(reverse("findings:poll"), {"since": since})
    assert "1 new or updated finding" in marker.content.decode()


def test_detail_panel_shows_evidence_escaped_related_and_json(client, org):
    evil = "<script>alert(1)</script>"
    f = make_finding(org["member_account"], instance="i-rel", evidence=[{"userAgent": evil, "eventName": "RunInstances"}],
                     additional={"unusual": {"hoursOfDay": [3]}, "profiledBehavior": {"frequentProfiledAsnsBytes": "1"}},
                     title=f"Title {evil}")
    other = make_finding(org["member_account"], instance="i-rel", finding_type=SSH_BRUTE)
    client.force_login(org["admin"])
    response = client.get(reverse("findings:detail", args=[f.finding_id]), **HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert evil not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "RunInstances" in body and "hoursOfDay" in body and other.finding_id in body
    assert f'id="finding-json-{f.finding_id}"' in body and "data-copy-target" in body
    # The admin manages the member: archive and "suppress like this" are offered.
    assert "suppress-like-this" in body
    client.force_login(org["member"])
    member_view = client.get(reverse("findings:detail", args=[f.finding_id])).content.decode()
    assert "suppress-like-this" not in member_view and "Not useful" in member_view
    client.force_login(org["stranger"])
    assert client.get(reverse("findings:detail", args=[f.finding_id])).status_code == 404


def test_archive_many_then_unarchive_by_the_administrator(client, org):
    rows = [make_finding(org["member_account"]) for _ in range(3)]
    client.force_login(org["admin"])
    response = client.post(reverse("findings:archive"), {"finding_ids": [r.finding_id for r in rows[:2]],
                                                         "action": "archive", "query": "status=current"}, **HTMX)
    assert response.status_code == 200 and "2 findings archived" in response.content.decode()
    assert _rows(response) == [rows[2].finding_id]
    assert Finding.objects.filter(archived=True).count() == 2
    client.post(reverse("findings:archive"), {"finding_ids": [rows[0].finding_id], "action": "unarchive"})
    assert Finding.objects.filter(archived=True).count() == 1


@pytest.mark.parametrize("who", ["member", "viewer", "stranger"])
def test_archive_is_refused_to_members_viewers_and_strangers(client, org, factory, who):
    f = make_finding(org["member_account"])
    if who == "viewer":
        user = factory.user()
        factory.grant(user, org["admin_account"], Role.VIEWER)
    else:
        user = org[who]
    client.force_login(user)
    response = client.post(reverse("findings:archive"), {"finding_ids": [f.finding_id], "action": "archive"}, **HTMX)
    assert response.status_code in (403, 404)
    assert not Finding.objects.get(pk=f.pk).archived


def test_member_gives_feedback_but_viewer_cannot(client, org, factory):
    f = make_finding(org["member_account"])
    client.force_login(org["member"])
    response = client.post(reverse("findings:feedback", args=[f.finding_id]), {"feedback": "NOT_USEFUL"}, **HTMX)
    assert response.status_code == 200
    assert Finding.objects.get(pk=f.pk).feedback == "NOT_USEFUL"
    viewer = factory.user()
    factory.grant(viewer, org["admin_account"], Role.VIEWER)
    client.force_login(viewer)
    refused = client.post(reverse("findings:feedback", args=[f.finding_id]), {"feedback": "USEFUL"}, **HTMX)
    assert refused.status_code == 403 and Finding.objects.get(pk=f.pk).feedback == "NOT_USEFUL"


def test_summary_counts_and_chart_follow_the_filter(client, org):
    from django.utils import timezone

    now = timezone.now()
    make_finding(org["admin_account"], severity=8.5, at=now)
    make_finding(org["admin_account"], severity=8.0, at=now - timedelta(days=2))
    make_finding(org["admin_account"], severity=2.0, at=now, finding_type=SSH_BRUTE)
    client.force_login(org["admin"])
    page = client.get(reverse("findings:list") + f"?type={PORT_PROBE}").content.decode()
    assert 'hx-get="/findings/summary/?type=' in page and 'hx-trigger="load"' in page
    body = client.get(reverse("findings:summary") + f"?type={PORT_PROBE}").content.decode()
    assert "<strong>2</strong> findings" in body
    assert "High <strong>2</strong>" in body and "Low <strong>0</strong>" in body
    assert body.count('class="bar"') == 30
    api = client.get(reverse("api-findings-statistics") + f"?type={PORT_PROBE}").json()
    assert api["total"] == 2 and api["count_by_severity"]["High"] == 2
    assert sum(d["count"] for d in api["by_date"]) == 2


def test_samples_one_of_each_type_marked_as_samples(client, org):
    from findings.catalog import FINDING_TYPES
    from findings.serialize import finding_to_guardduty

    client.force_login(org["admin"])
    response = client.post(reverse("findings:samples"))
    assert response.status_code == 302
    samples = Finding.objects.filter(account=org["admin_account"], is_sample=True)
    assert samples.count() == len(FINDING_TYPES)
    assert set(samples.values_list("type", flat=True)) == set(FINDING_TYPES)
    one = samples.first()
    assert one.title.startswith("[SAMPLE]")
    info = json.loads(finding_to_guardduty(one)["service"]["additionalInfo"]["value"])
    assert info["sample"] is True


def test_home_redirects_to_findings(client, org):
    client.force_login(org["admin"])
    assert client.get("/")["Location"] == reverse("findings:list")


def test_destinations_pages_show_the_guardduty_export_beside_console_destinations(client, org):
    """One list: a publishing destination made through the GuardDuty API is a destination like the others."""
    from findings.rules_models import Destination
    from gdapi import publishing

    detector = org["admin_account"].detectors.get()
    kms = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    exported = publishing.destination_create(actor=org["admin"], detector=detector, kms_key_arn=kms,
                                             destination_arn="arn:aws:s3:::gd-export/findings/", tags={"team": "sec"})
    client.force_login(org["admin"])
    response = client.post(reverse("findings:destinations"), {
        "account": org["admin_account"].id, "name": "archive", "kind": "s3", "bucket": "console-export",
        "kms_key_arn": kms, "expected_bucket_owner": "111122223333", "min_severity": "4"})
    assert response.status_code == 302
    console = Destination.objects.get(name="archive")
    assert console.detector is None and console.config == {
        "bucket": "console-export", "kms_key_arn": kms, "expected_bucket_owner": "111122223333"}
    assert publishing.properties(exported) == {"DestinationArn": "arn:aws:s3:::gd-export/findings/", "KmsKeyArn": kms,
                                               "ExpectedBucketOwner": None}
    listing = client.get(reverse("findings:destinations")).content.decode()
    assert exported.name in listing and "archive" in listing
    detail = client.get(reverse("findings:destination", args=[exported.pk])).content.decode()
    assert exported.destination_id in detail and detector.detector_id in detail and "team=sec" in detail
    assert "PENDING_VERIFICATION" in detail  # not verified yet: the export task runs on commit
    # The member's people see neither (the administrator's destinations are its own).
    client.force_login(org["member"])
    assert client.get(reverse("findings:destination", args=[exported.pk])).status_code == 404
