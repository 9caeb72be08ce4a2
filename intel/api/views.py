"""REST API mirroring GuardDuty's CreateIPSet / CreateThreatIntelSet / Get / List / Update / Delete,
addressed by detector like GuardDuty (/detector/{detectorId}/ipset/{ipSetId}). Thin adapters."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import access
from accounts.models import Detector
from console.api import validated
from console.errors import NotFoundError, ServiceError
from intel import selectors, services
from intel.api import serializers as s
from intel.models import IntelSet

KINDS = {"ip-sets": (IntelSet.Kind.TRUSTED, "ipSetId", "ipSetIds"),
         "threat-intel-sets": (IntelSet.Kind.THREAT, "threatIntelSetId", "threatIntelSetIds")}
MAX_RESULTS = 50


def _detector(request: Request, detector_id: str) -> Detector:
    detector = (
        Detector.objects.select_related("account")
        .filter(detector_id=detector_id, account__in=access.accounts_visible_to(user=request.user))
        .first()
    )
    if detector is None:
        raise NotFoundError("No such detector.")
    return detector


def _kind(collection: str) -> tuple[str, str, str]:
    if collection not in KINDS:
        raise NotFoundError("No such collection.")
    return KINDS[collection]


def _content(request: Request, data: dict[str, Any]) -> tuple[bytes | None, str]:
    upload = request.FILES.get("file")
    if upload is not None:
        return upload.read(), upload.name
    if data.get("content") is not None:
        return data["content"].encode(), "api"
    return None, ""


def _set_in(detector: Detector, request: Request, set_id: str, kind: str) -> IntelSet:
    intel_set = selectors.intel_set_get(actor=request.user, set_id=set_id)
    manager = access.managing_account(detector.account)
    if intel_set.kind != kind or intel_set.region != detector.region or intel_set.account_id != manager.id:
        raise NotFoundError("No such list.")
    return intel_set


class IntelSetListApi(APIView):
    """GET: List*(MaxResults<=50, NextToken). POST: Create*."""

    @extend_schema(responses=s.IntelSetOutput(many=True), operation_id="intel_sets_list")
    def get(self, request: Request, detector_id: str, collection: str) -> Response:
        kind, _, ids_key = _kind(collection)
        detector = _detector(request, detector_id)
        qs = selectors.intel_set_list(actor=request.user, account=detector.account, region=detector.region, kind=kind)
        try:
            limit = min(int(request.query_params.get("maxResults", MAX_RESULTS)), MAX_RESULTS)
            start = int(request.query_params.get("nextToken") or 0)
        except ValueError:
            raise ServiceError("maxResults and nextToken must be whole numbers.")
        if limit < 1 or start < 0:
            raise ServiceError("maxResults must be 1 to 50.")
        page = list(qs[start : start + limit + 1])
        body: dict[str, Any] = {ids_key: [x.set_id for x in page[:limit]],
                                "items": s.IntelSetOutput(page[:limit], many=True).data}
        if len(page) > limit:
            body["nextToken"] = str(start + limit)
        return Response(body)

    @extend_schema(request=s.IntelSetCreateInput, responses=s.IntelSetOutput, operation_id="intel_sets_create")
    def post(self, request: Request, detector_id: str, collection: str) -> Response:
        kind, id_key, _ = _kind(collection)
        detector = _detector(request, detector_id)
        data = validated(s.IntelSetCreateInput, request.data)
        content, upload_name = _content(request, data)
        intel_set = services.intel_set_create(
            actor=request.user, account=detector.account, region=detector.region, kind=kind, name=data["name"],
            fmt=data["format"], location=data["location"], content=content, upload_name=upload_name,
            activate=data["activate"], expected_bucket_owner=data["expectedBucketOwner"], tags=data["tags"],
        )
        return Response({id_key: intel_set.set_id})


class IntelSetDetailApi(APIView):
    """GET: Get*. POST: Update*(Name, Location, Activate). DELETE: Delete*."""

    @extend_schema(responses=s.IntelSetOutput, operation_id="intel_sets_get")
    def get(self, request: Request, detector_id: str, collection: str, set_id: str) -> Response:
        kind, _, _ = _kind(collection)
        intel_set = _set_in(_detector(request, detector_id), request, set_id, kind)
        return Response(s.IntelSetOutput(intel_set).data)

    @extend_schema(request=s.IntelSetUpdateInput, responses=s.IntelSetOutput, operation_id="intel_sets_update")
    def post(self, request: Request, detector_id: str, collection: str, set_id: str) -> Response:
        kind, _, _ = _kind(collection)
        _set_in(_detector(request, detector_id), request, set_id, kind)
        data = validated(s.IntelSetUpdateInput, request.data)
        content, upload_name = _content(request, data)
        intel_set = services.intel_set_update(
            actor=request.user, set_id=set_id, name=data.get("name"), location=data.get("location"),
            content=content, upload_name=upload_name, fmt=data.get("format"), activate=data.get("activate"),
        )
        return Response(s.IntelSetOutput(intel_set).data)

    @extend_schema(responses={200: None}, operation_id="intel_sets_delete")
    def delete(self, request: Request, detector_id: str, collection: str, set_id: str) -> Response:
        kind, _, _ = _kind(collection)
        _set_in(_detector(request, detector_id), request, set_id, kind)
        services.intel_set_delete(actor=request.user, set_id=set_id)
        return Response({})


class IndicatorCheckApi(APIView):
    """Which lists (and built-in feeds) contain an IP address or domain, for this detector."""

    @extend_schema(responses=s.CheckOutput, operation_id="intel_check")
    def get(self, request: Request, detector_id: str) -> Response:
        detector = _detector(request, detector_id)
        value = (request.query_params.get("value") or "").strip()
        if not value or len(value) > 300:
            raise ServiceError("Give value=<IP address or domain> (at most 300 characters).")
        result = selectors.indicator_check(actor=request.user, account=detector.account, region=detector.region,
                                           value=value)
        return Response(s.CheckOutput(result).data)
