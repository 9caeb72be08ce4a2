"""The invitation workflow end to end through the real boto3 client against a live server."""

from __future__ import annotations

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from accounts.models import AuditEvent, Detector, Member


def test_administrator_member_workflow(principal_factory, make_client):
    admin = principal_factory()
    member = principal_factory()
    gd_admin, gd_member = make_client(admin), make_client(member)

    admin_det = gd_admin.create_detector(Enable=True, FindingPublishingFrequency="ONE_HOUR",
                                         Tags={"team": "sec"})["DetectorId"]
    member_det = gd_member.create_detector(Enable=True)["DetectorId"]
    assert gd_admin.list_detectors()["DetectorIds"] == [admin_det]
    detector = gd_admin.get_detector(DetectorId=admin_det)
    assert detector["Status"] == "ENABLED"
    assert detector["FindingPublishingFrequency"] == "ONE_HOUR"
    assert detector["Tags"] == {"team": "sec"}
    assert detector["DataSources"]["CloudTrail"]["Status"] == "ENABLED"
    assert detector["ServiceRole"].startswith(f"arn:aws:iam::{admin.account.aws_account_id}:role/")

    created = gd_admin.create_members(DetectorId=admin_det, AccountDetails=[
        {"AccountId": member.account.aws_account_id, "Email": member.account.email},
        {"AccountId": "12345678901x", "Email": "x@example.com"},
    ])
    assert [u["AccountId"] for u in created["UnprocessedAccounts"]] == ["12345678901x"]
    everyone = gd_admin.list_members(DetectorId=admin_det, OnlyAssociated="false")["Members"]
    assert [(m["AccountId"], m["RelationshipStatus"]) for m in everyone] == [(member.account.aws_account_id, "Created")]
    # GuardDuty's default lists associated members only.
    assert gd_admin.list_members(DetectorId=admin_det)["Members"] == []

    invited = gd_admin.invite_members(DetectorId=admin_det, AccountIds=[member.account.aws_account_id],
                                      Message="join us")
    assert invited["UnprocessedAccounts"] == []
    assert gd_member.get_invitations_count()["InvitationsCount"] == 1
    invitation = gd_member.list_invitations()["Invitations"][0]
    assert invitation["AccountId"] == admin.account.aws_account_id
    assert invitation["RelationshipStatus"] == "Invited"
    assert "Administrator" not in gd_member.get_administrator_account(DetectorId=member_det)

    with pytest.raises(ClientError) as wrong:
        gd_member.accept_administrator_invitation(DetectorId=member_det, AdministratorId=admin.account.aws_account_id,
                                                  InvitationId="0" * 32)
    assert wrong.value.response["Error"]["Code"] == "BadRequestException"
    gd_member.accept_administrator_invitation(DetectorId=member_det, AdministratorId=admin.account.aws_account_id,
                                              InvitationId=invitation["InvitationId"])
    administrator = gd_member.get_administrator_account(DetectorId=member_det)["Administrator"]
    assert administrator["AccountId"] == admin.account.aws_account_id
    assert administrator["RelationshipStatus"] == "Enabled"
    assert gd_member.get_master_account(DetectorId=member_det)["Master"]["AccountId"] == admin.account.aws_account_id
    assert gd_member.get_invitations_count()["InvitationsCount"] == 0

    members = gd_admin.get_members(DetectorId=admin_det, AccountIds=[member.account.aws_account_id, "999999999999"])
    assert members["Members"][0]["DetectorId"] == member_det
    assert members["Members"][0]["RelationshipStatus"] == "Enabled"
    assert members["Members"][0]["AdministratorId"] == admin.account.aws_account_id
    assert [u["AccountId"] for u in members["UnprocessedAccounts"]] == ["999999999999"]
    # Members inherit the administrator's publishing frequency.
    assert gd_member.get_detector(DetectorId=member_det)["FindingPublishingFrequency"] == "ONE_HOUR"
    gd_admin.update_detector(DetectorId=admin_det, FindingPublishingFrequency="FIFTEEN_MINUTES")
    assert gd_member.get_detector(DetectorId=member_det)["FindingPublishingFrequency"] == "FIFTEEN_MINUTES"
    with pytest.raises(ClientError) as member_freq:
        gd_member.update_detector(DetectorId=member_det, FindingPublishingFrequency="SIX_HOURS")
    assert member_freq.value.response["Error"]["Code"] == "AccessDeniedException"

    stopped = gd_admin.stop_monitoring_members(DetectorId=admin_det, AccountIds=[member.account.aws_account_id])
    assert stopped["UnprocessedAccounts"] == []
    assert Member.objects.get(administrator=admin.account).relationship_status == "Disabled"
    gd_admin.start_monitoring_members(DetectorId=admin_det, AccountIds=[member.account.aws_account_id])
    assert Member.objects.get(administrator=admin.account).relationship_status == "Enabled"

    # An administrator with members cannot suspend or delete its detector (the domain rule).
    with pytest.raises(ClientError) as blocked:
        gd_admin.update_detector(DetectorId=admin_det, Enable=False)
    assert blocked.value.response["Error"]["Code"] == "BadRequestException"

    gd_member.disassociate_from_administrator_account(DetectorId=member_det)
    assert "Administrator" not in gd_member.get_administrator_account(DetectorId=member_det)
    assert gd_admin.delete_members(DetectorId=admin_det, AccountIds=[member.account.aws_account_id]) \
        ["UnprocessedAccounts"] == []
    gd_admin.update_detector(DetectorId=admin_det, Enable=False)
    assert gd_admin.get_detector(DetectorId=admin_det)["Status"] == "DISABLED"
    gd_admin.delete_detector(DetectorId=admin_det)
    assert gd_admin.list_detectors()["DetectorIds"] == []
    assert not Detector.objects.filter(detector_id=admin_det).exists()
    assert AuditEvent.objects.filter(account=admin.account, action="detector.deleted", actor=admin.user).exists()


def test_tags_on_detector_arn(principal_factory, make_client):
    alice = principal_factory()
    gd = make_client(alice)
    det = gd.create_detector(Enable=True)["DetectorId"]
    arn = f"arn:aws:guardduty:us-east-1:{alice.account.aws_account_id}:detector/{det}"
    assert gd.list_tags_for_resource(ResourceArn=arn)["Tags"] == {}
    gd.tag_resource(ResourceArn=arn, Tags={"env": "prod", "owner": "sec-team"})
    gd.tag_resource(ResourceArn=arn, Tags={"env": "staging"})
    assert gd.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"env": "staging", "owner": "sec-team"}
    gd.untag_resource(ResourceArn=arn, TagKeys=["env", "missing"])
    assert gd.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"owner": "sec-team"}
    with pytest.raises(ClientError) as bad:
        gd.tag_resource(ResourceArn="arn:aws:guardduty:us-east-1:123:nonsense", Tags={"a": "b"})
    assert bad.value.response["Error"]["Code"] == "BadRequestException"


def test_pagination_and_validation(principal_factory, make_client):
    admin = principal_factory(region="us-east-1")
    gd = make_client(admin)
    # Server-side validation is what this checks, so botocore's own client-side check is off.
    unchecked = make_client(admin, config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    det = gd.list_detectors()["DetectorIds"][0]
    details = [{"AccountId": f"{200000000000 + i}", "Email": f"m{i}@example.com"} for i in range(7)]
    assert gd.create_members(DetectorId=det, AccountDetails=details)["UnprocessedAccounts"] == []
    pages = list(gd.get_paginator("list_members").paginate(DetectorId=det, OnlyAssociated="false",
                                                            PaginationConfig={"PageSize": 3}))
    assert [len(p["Members"]) for p in pages] == [3, 3, 1]
    assert sorted(m["AccountId"] for p in pages for m in p["Members"]) == [d["AccountId"] for d in details]
    # Validation from the model: MaxResults is 1..50, FindingPublishingFrequency an enum.
    with pytest.raises(ClientError) as too_many:
        unchecked.list_members(DetectorId=det, MaxResults=51)
    assert too_many.value.response["Error"]["Code"] == "BadRequestException"
    assert "maxResults" in too_many.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as bad_token:
        gd.list_members(DetectorId=det, NextToken="not-a-token")
    assert bad_token.value.response["Error"]["Code"] == "BadRequestException"
    with pytest.raises(ClientError) as bad_enum:
        unchecked.update_detector(DetectorId=det, FindingPublishingFrequency="HOURLY")
    assert "findingPublishingFrequency must be one of" in bad_enum.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as missing:
        unchecked.create_members(DetectorId=det, AccountDetails=[{"AccountId": "200000000009"}])
    assert "accountDetails[0].email is required" in missing.value.response["Error"]["Message"]
