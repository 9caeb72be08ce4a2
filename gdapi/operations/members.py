"""Administrator and member operations over accounts.services / accounts.selectors."""

from __future__ import annotations

from typing import Any

from accounts import selectors, services
from accounts.models import Detector, Member
from gdapi.operations.base import Context, operation, paginate
from gdapi.protocol import aws_timestamp


def _unprocessed(items: list[services.Unprocessed]) -> list[dict[str, str]]:
    return [{"AccountId": u.account_id, "Result": u.result} for u in items]


def _member_output(record: Member, detector_ids: dict[int, str]) -> dict[str, Any]:
    return {
        "AccountId": record.member.aws_account_id,
        "DetectorId": detector_ids.get(record.member_id),
        "MasterId": record.administrator.aws_account_id,
        "AdministratorId": record.administrator.aws_account_id,
        "Email": record.email,
        "RelationshipStatus": record.relationship_status,
        "InvitedAt": aws_timestamp(record.invited_at),
        "UpdatedAt": aws_timestamp(record.updated_at),
    }


def _members_output(ctx: Context, records: list[Member]) -> list[dict[str, Any]]:
    # A member's detector id is visible to its administrator only while associated, as in GuardDuty.
    associated = [r.member_id for r in records if r.is_associated]
    detector_ids = dict(Detector.objects.filter(account_id__in=associated, region=ctx.region)
                        .values_list("account_id", "detector_id"))
    return [_member_output(r, detector_ids) for r in records]


@operation("CreateMembers")
def create_members(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    ctx.detector(params["DetectorId"])
    details = [{"account_id": d["AccountId"], "email": d["Email"]} for d in params["AccountDetails"]]
    return {"UnprocessedAccounts": _unprocessed(
        services.member_create(actor=ctx.user, administrator=ctx.account, account_details=details))}


@operation("InviteMembers")
def invite_members(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    ctx.detector(params["DetectorId"])
    return {"UnprocessedAccounts": _unprocessed(services.member_invite(
        actor=ctx.user, administrator=ctx.account, account_ids=params["AccountIds"],
        message=params.get("Message", "")))}


@operation("GetMembers")
def get_members(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    ctx.detector(params["DetectorId"])
    wanted = params["AccountIds"]
    records = list(selectors.member_list(actor=ctx.user, administrator=ctx.account)
                   .filter(member__aws_account_id__in=wanted))
    found = {r.member.aws_account_id for r in records}
    missing = [{"AccountId": a, "Result": "The request is rejected because the input account is not a member."}
               for a in wanted if a not in found]
    return {"Members": _members_output(ctx, records), "UnprocessedAccounts": missing}


@operation("ListMembers")
def list_members(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    ctx.detector(params["DetectorId"])
    # GuardDuty's default is "true": only Enabled/Disabled members unless asked for all.
    only_associated = params.get("OnlyAssociated", "true").lower() != "false"
    records = selectors.member_list(actor=ctx.user, administrator=ctx.account, only_associated=only_associated)
    page, token = paginate(records.order_by("member__aws_account_id", "id"), params)
    return {"Members": _members_output(ctx, page), "NextToken": token}


def _bulk(service: Any) -> Any:
    def handler(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
        ctx.detector(params["DetectorId"])
        return {"UnprocessedAccounts": _unprocessed(
            service(actor=ctx.user, administrator=ctx.account, account_ids=params["AccountIds"]))}
    return handler


operation("DeleteMembers")(_bulk(services.member_delete))
operation("DisassociateMembers")(_bulk(services.member_disassociate))
operation("StartMonitoringMembers")(_bulk(services.member_monitoring_start))
operation("StopMonitoringMembers")(_bulk(services.member_monitoring_stop))


# --- member side ----------------------------------------------------------------------------


def _invitations(ctx: Context) -> Any:
    return selectors.invitation_list(actor=ctx.user, member_account=ctx.account)


@operation("ListInvitations")
def list_invitations(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    page, token = paginate(_invitations(ctx).order_by("-invited_at", "id"), params)
    return {"Invitations": [
        {"AccountId": r.administrator.aws_account_id, "InvitationId": r.invitation_id,
         "RelationshipStatus": r.relationship_status, "InvitedAt": aws_timestamp(r.invited_at)}
        for r in page
    ], "NextToken": token}


@operation("GetInvitationsCount")
def get_invitations_count(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return {"InvitationsCount": _invitations(ctx).count()}


@operation("AcceptAdministratorInvitation")
def accept_administrator_invitation(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    ctx.detector(params["DetectorId"])
    services.invitation_accept(actor=ctx.user, member_account=ctx.account,
                               administrator_aws_id=params["AdministratorId"], invitation_id=params["InvitationId"])
    return {}


@operation("AcceptInvitation")
def accept_invitation(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    ctx.detector(params["DetectorId"])
    services.invitation_accept(actor=ctx.user, member_account=ctx.account,
                               administrator_aws_id=params["MasterId"], invitation_id=params["InvitationId"])
    return {}


@operation("DeclineInvitations")
def decline_invitations(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return {"UnprocessedAccounts": _unprocessed(services.invitation_decline(
        actor=ctx.user, member_account=ctx.account, administrator_aws_ids=params["AccountIds"]))}


@operation("DeleteInvitations")
def delete_invitations(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return {"UnprocessedAccounts": _unprocessed(services.invitation_delete(
        actor=ctx.user, member_account=ctx.account, administrator_aws_ids=params["AccountIds"]))}


def _administrator(ctx: Context, params: dict[str, Any]) -> dict[str, Any] | None:
    ctx.detector(params["DetectorId"])
    record = selectors.administrator_get(actor=ctx.user, member_account=ctx.account)
    if record is None:
        return None
    return {"AccountId": record.administrator.aws_account_id, "InvitationId": record.invitation_id,
            "RelationshipStatus": record.relationship_status, "InvitedAt": aws_timestamp(record.invited_at)}


@operation("GetAdministratorAccount")
def get_administrator_account(ctx: Context, params: dict[str, Any]) -> dict[str, Any] | None:
    administrator = _administrator(ctx, params)
    # GuardDuty answers 200 with an empty body when the account has no administrator.
    return {"Administrator": administrator} if administrator else None


@operation("GetMasterAccount")
def get_master_account(ctx: Context, params: dict[str, Any]) -> dict[str, Any] | None:
    administrator = _administrator(ctx, params)
    return {"Master": administrator} if administrator else None


@operation("DisassociateFromAdministratorAccount")
def disassociate_from_administrator(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    ctx.detector(params["DetectorId"])
    services.administrator_disassociate(actor=ctx.user, member_account=ctx.account)
    return {}


operation("DisassociateFromMasterAccount")(disassociate_from_administrator)
