"""REST API for accounts, members, invitations and detectors: thin adapters over the services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import access, selectors, services
from accounts.api import serializers as s
from console.api import validated


def _unprocessed_response(unprocessed: list[services.Unprocessed]) -> Response:
    return Response({"unprocessed_accounts": [{"account_id": u.account_id, "result": u.result} for u in unprocessed]})


class AccountListApi(APIView):
    @extend_schema(responses=s.AccountOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(s.AccountOutput(selectors.account_list(actor=request.user), many=True).data)

    @extend_schema(request=s.AccountInput, responses={201: s.AccountOutput})
    def post(self, request: Request) -> Response:
        account = services.account_create(actor=request.user, **validated(s.AccountInput, request.data))
        return Response(s.AccountOutput(account).data, status=status.HTTP_201_CREATED)


class AccountDetailApi(APIView):
    @extend_schema(responses=s.AccountOutput)
    def get(self, request: Request, aws_account_id: str) -> Response:
        return Response(s.AccountOutput(access.access_account_by_aws_id(request.user, aws_account_id)).data)


class MemberListApi(APIView):
    @extend_schema(responses=s.MemberOutput(many=True))
    def get(self, request: Request, aws_account_id: str) -> Response:
        account = access.access_account_by_aws_id(request.user, aws_account_id)
        only_associated = request.query_params.get("only_associated") in ("1", "true")
        members = selectors.member_list(actor=request.user, administrator=account, only_associated=only_associated)
        return Response(s.MemberOutput(members, many=True).data)

    @extend_schema(request=s.MembersCreateInput, responses=s.UnprocessedOutput(many=True))
    def post(self, request: Request, aws_account_id: str) -> Response:
        account = access.access_account_by_aws_id(request.user, aws_account_id)
        data = validated(s.MembersCreateInput, request.data)
        return _unprocessed_response(
            services.member_create(actor=request.user, administrator=account, account_details=data["account_details"])
        )


MEMBER_OPERATIONS = {
    "invite": services.member_invite,
    "disassociate": services.member_disassociate,
    "delete": services.member_delete,
    "stop-monitoring": services.member_monitoring_stop,
    "start-monitoring": services.member_monitoring_start,
}


class MemberOperationApi(APIView):
    @extend_schema(request=s.AccountIdsInput, responses=s.UnprocessedOutput(many=True),
                   operation_id="accounts_members_operation")
    def post(self, request: Request, aws_account_id: str, operation: str) -> Response:
        account = access.access_account_by_aws_id(request.user, aws_account_id)
        service = MEMBER_OPERATIONS.get(operation)
        if service is None:
            return Response({"detail": f"Unknown operation {operation!r}."}, status=status.HTTP_404_NOT_FOUND)
        data = validated(s.AccountIdsInput, request.data)
        kwargs: dict[str, Any] = {"actor": request.user, "administrator": account, "account_ids": data["account_ids"]}
        if operation == "invite":
            kwargs["message"] = data["message"]
        return _unprocessed_response(service(**kwargs))


class InvitationListApi(APIView):
    @extend_schema(responses=s.InvitationOutput(many=True))
    def get(self, request: Request, aws_account_id: str) -> Response:
        account = access.access_account_by_aws_id(request.user, aws_account_id)
        return Response(s.InvitationOutput(selectors.invitation_list(actor=request.user, member_account=account), many=True).data)


class InvitationAcceptApi(APIView):
    @extend_schema(request=s.InvitationAcceptInput, responses=s.MemberOutput)
    def post(self, request: Request, aws_account_id: str) -> Response:
        account = access.access_account_by_aws_id(request.user, aws_account_id)
        data = validated(s.InvitationAcceptInput, request.data)
        record = services.invitation_accept(actor=request.user, member_account=account,
                                            administrator_aws_id=data["administrator_id"], invitation_id=data["invitation_id"])
        return Response(s.MemberOutput(record).data)


class InvitationDeclineApi(APIView):
    decline = True

    @extend_schema(request=s.AccountIdsInput, responses=s.UnprocessedOutput(many=True))
    def post(self, request: Request, aws_account_id: str) -> Response:
        account = access.access_account_by_aws_id(request.user, aws_account_id)
        data = validated(s.AccountIdsInput, request.data)
        service = services.invitation_decline if self.decline else services.invitation_delete
        return _unprocessed_response(service(actor=request.user, member_account=account,
                                             administrator_aws_ids=data["account_ids"]))


class InvitationDeleteApi(InvitationDeclineApi):
    decline = False


class AdministratorApi(APIView):
    @extend_schema(responses=s.MemberOutput)
    def get(self, request: Request, aws_account_id: str) -> Response:
        account = access.access_account_by_aws_id(request.user, aws_account_id)
        record = selectors.administrator_get(actor=request.user, member_account=account)
        return Response(s.MemberOutput(record).data if record else {})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, aws_account_id: str) -> Response:
        account = access.access_account_by_aws_id(request.user, aws_account_id)
        services.administrator_disassociate(actor=request.user, member_account=account)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditListApi(APIView):
    @extend_schema(responses=s.AuditEventOutput(many=True))
    def get(self, request: Request, aws_account_id: str) -> Response:
        account = access.access_account_by_aws_id(request.user, aws_account_id)
        access.require_role(request.user, account, access.ADMIN_ROLES, what="read the audit log")
        return Response(s.AuditEventOutput(selectors.audit_list(actor=request.user, account=account)[:500], many=True).data)


class DetectorListApi(APIView):
    @extend_schema(responses=s.DetectorOutput(many=True))
    def get(self, request: Request) -> Response:
        detectors = selectors.detector_list(actor=request.user, region=request.query_params.get("region"))
        return Response(s.DetectorOutput(detectors, many=True).data)

    @extend_schema(request=s.DetectorCreateInput, responses={201: s.DetectorOutput})
    def post(self, request: Request) -> Response:
        data = validated(s.DetectorCreateInput, request.data)
        account = access.access_account_by_aws_id(request.user, data.pop("account_id"))
        detector = services.detector_create(actor=request.user, account=account, **data)
        return Response(s.DetectorOutput(detector).data, status=status.HTTP_201_CREATED)


class DetectorDetailApi(APIView):
    @extend_schema(responses=s.DetectorOutput)
    def get(self, request: Request, detector_id: str) -> Response:
        return Response(s.DetectorOutput(selectors.detector_get(actor=request.user, detector_id=detector_id)).data)

    @extend_schema(request=s.DetectorUpdateInput, responses=s.DetectorOutput)
    def patch(self, request: Request, detector_id: str) -> Response:
        detector = selectors.detector_get(actor=request.user, detector_id=detector_id)
        detector = services.detector_update(actor=request.user, detector=detector,
                                            **validated(s.DetectorUpdateInput, request.data))
        return Response(s.DetectorOutput(detector).data)

    @extend_schema(request=s.DetectorDeleteInput, responses={204: None})
    def delete(self, request: Request, detector_id: str) -> Response:
        detector = selectors.detector_get(actor=request.user, detector_id=detector_id)
        data = validated(s.DetectorDeleteInput, request.data)
        services.detector_delete(actor=request.user, detector=detector, confirm=data["confirm"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class DetectorSuspendApi(APIView):
    resume = False

    @extend_schema(request=None, responses=s.DetectorOutput)
    def post(self, request: Request, detector_id: str) -> Response:
        detector = selectors.detector_get(actor=request.user, detector_id=detector_id)
        service = services.detector_resume if self.resume else services.detector_suspend
        return Response(s.DetectorOutput(service(actor=request.user, detector=detector)).data)


class DetectorResumeApi(DetectorSuspendApi):
    resume = True
