"""REST API for findings: thin adapters over findings.search, triage, rules and notifications."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import access
from console.api import validated
from console.errors import NotFoundError
from findings import notifications, rules, search, triage
from findings.api import serializers as s
from findings.criteria import CriteriaError
from findings.serialize import finding_to_guardduty

EXPORT_MAX = 100_000
LIST_PARAMETERS = [
    OpenApiParameter("criteria", str, description="GuardDuty FindingCriteria as JSON (ANDed with the other filters)."),
    OpenApiParameter("sort", str, enum=list(search.SORTS)),
    OpenApiParameter("dir", str, enum=["asc", "desc"]),
    OpenApiParameter("cursor", str, description="next_cursor of the previous page (keyset pagination)."),
    OpenApiParameter("limit", int, description="1-200, default 50."),
    *[OpenApiParameter(p, str) for p in search.FILTER_PARAMS],
]


def _criteria(request: Request) -> dict[str, Any]:
    criteria = search.params_to_criteria(request.query_params)
    raw = request.query_params.get("criteria")
    if raw:
        try:
            extra = json.loads(raw)
        except ValueError as exc:
            raise CriteriaError("criteria is not valid JSON.") from exc
        if not isinstance(extra, dict):
            raise CriteriaError("criteria must be a FindingCriteria object.")
        if "status" not in request.query_params and "service.archived" in (extra.get("Criterion") or {}):
            criteria["Criterion"].pop("service.archived", None)
        criteria["Criterion"].update(extra.get("Criterion") or {})
    return criteria


def _page(request: Request, limit: int) -> search.Page:
    return search.search(actor=request.user, criteria=_criteria(request),
                         sort=request.query_params.get("sort") or search.DEFAULT_SORT,
                         direction=request.query_params.get("dir") or "desc",
                         cursor=request.query_params.get("cursor") or None, limit=limit)


def _limit(request: Request, default: int = 50, ceiling: int = 200) -> int:
    raw = request.query_params.get("limit") or str(default)
    if not raw.isdigit() or not 1 <= int(raw) <= ceiling:
        raise CriteriaError(f"limit is a whole number from 1 to {ceiling}.")
    return int(raw)


def _account(request: Request, aws_account_id: str | None):
    if aws_account_id:
        return access.access_account_by_aws_id(request.user, aws_account_id)
    account = getattr(request, "active_account", None)
    if account is None:
        raise NotFoundError("No such account.")
    return account


class FindingListApi(APIView):
    @extend_schema(parameters=LIST_PARAMETERS, responses=s.FindingPageOutput, operation_id="findings_list")
    def get(self, request: Request) -> Response:
        page = _page(request, _limit(request))
        return Response({"findings": [finding_to_guardduty(f) for f in page.rows], "next_cursor": page.next_cursor})


class FindingDetailApi(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT, operation_id="findings_get")
    def get(self, request: Request, finding_id: str) -> Response:
        finding = search.scoped(actor=request.user).select_related("account", "detector").filter(
            finding_id=finding_id).first()
        if finding is None:
            raise NotFoundError("No such finding.")
        return Response(finding_to_guardduty(finding))


class FindingArchiveApi(APIView):
    archived = True

    @extend_schema(request=s.FindingIdsInput, responses=s.CountOutput, operation_id="findings_archive")
    def post(self, request: Request) -> Response:
        data = validated(s.FindingIdsInput, request.data)
        findings = search.findings_by_ids(actor=request.user, finding_ids=data["finding_ids"])
        n = triage.findings_set_archived(actor=request.user, findings=findings, archived=self.archived)
        return Response({"count": n})


class FindingUnarchiveApi(FindingArchiveApi):
    archived = False

    @extend_schema(request=s.FindingIdsInput, responses=s.CountOutput, operation_id="findings_unarchive")
    def post(self, request: Request) -> Response:
        return super().post(request)


class FindingFeedbackApi(APIView):
    @extend_schema(request=s.FeedbackInput, responses=s.CountOutput)
    def post(self, request: Request) -> Response:
        data = validated(s.FeedbackInput, request.data)
        findings = search.findings_by_ids(actor=request.user, finding_ids=data["finding_ids"])
        n = triage.findings_set_feedback(actor=request.user, findings=findings, feedback=data["feedback"],
                                         comments=data["comments"])
        return Response({"count": n})


class FindingStatisticsApi(APIView):
    @extend_schema(parameters=LIST_PARAMETERS[:1] + LIST_PARAMETERS[5:], responses=s.StatisticsOutput)
    def get(self, request: Request) -> Response:
        summary = search.summary(actor=request.user, criteria=_criteria(request))
        return Response({
            "total": summary["total"],
            "count_by_severity": summary["severity"],
            "by_type": [{"key": t["type"], "count": t["n"]} for t in summary["by_type"]],
            "by_account": [{"key": a["account__aws_account_id"], "count": a["n"]} for a in summary["by_account"]],
            "by_date": [{"key": day.isoformat(), "count": n} for day, n in summary["series"]],
        })


CSV_COLUMNS = ["id", "severity", "type", "title", "accountId", "region", "resourceType", "resourceId", "count",
               "firstSeen", "lastSeen", "updatedAt", "archived", "feedback"]


class FindingExportApi(APIView):
    """Every finding matching the filter (up to 100,000), streamed page by page (keyset)."""

    @extend_schema(parameters=LIST_PARAMETERS[:3] + LIST_PARAMETERS[5:],
                   responses={(200, "text/csv"): OpenApiTypes.STR, (200, "application/json"): OpenApiTypes.OBJECT})
    def get(self, request: Request, fmt: str) -> StreamingHttpResponse | Response:
        if fmt not in ("csv", "json"):
            raise NotFoundError("Export formats: csv, json.")
        criteria = _criteria(request)
        sort = request.query_params.get("sort") or search.DEFAULT_SORT
        direction = request.query_params.get("dir") or "desc"
        first = search.search(actor=request.user, criteria=criteria, sort=sort, direction=direction, limit=500)
        user = request.user

        def pages() -> Iterator[list]:
            page, sent = first, 0
            while True:
                yield page.rows
                sent += len(page.rows)
                if not page.next_cursor or sent >= EXPORT_MAX:
                    return
                page = search.search(actor=user, criteria=criteria, sort=sort, direction=direction,
                                     cursor=page.next_cursor, limit=500)

        if fmt == "json":
            def body() -> Iterator[str]:
                yield "["
                comma = ""
                for rows in pages():
                    for f in rows:
                        yield comma + json.dumps(finding_to_guardduty(f))
                        comma = ","
                yield "]"
            response = StreamingHttpResponse(body(), content_type="application/json")
        else:
            def rows_csv() -> Iterator[str]:
                buffer = io.StringIO()
                writer = csv.writer(buffer)
                writer.writerow(CSV_COLUMNS)
                for rows in pages():
                    for f in rows:
                        writer.writerow([f.finding_id, f.severity, f.type, _csv_safe(f.title), f.account.aws_account_id,
                                         f.region, f.resource_type, _csv_safe(f.resource_id), f.count,
                                         f.first_seen.isoformat(), f.last_seen.isoformat(), f.updated_at.isoformat(),
                                         f.archived, f.feedback])
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
            response = StreamingHttpResponse(rows_csv(), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="findings.{fmt}"'
        return response


def _csv_safe(value: str) -> str:
    """Spreadsheet formula injection: attacker-chosen text never starts a cell with = + - @."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@dataclass(frozen=True)
class Resource:
    """A collection the API lists, creates, reads, changes and deletes through its services."""

    output: type[serializers.Serializer]
    input: type[serializers.Serializer]
    list: Callable[..., QuerySet]  # (actor) -> rows the actor may see
    get: Callable[..., Any]  # (actor, pk) -> row, or NotFoundError
    create: Callable[..., Any]  # (actor, account, **fields)
    update: Callable[..., Any]  # (actor, item, **changes)
    delete: Callable[..., None]  # (actor, item)
    fixed: tuple[str, ...] = ("account_id",)  # fields a PATCH may not change


class ResourceListApi(APIView):
    resource: Resource

    def get(self, request: Request) -> Response:
        return Response(self.resource.output(self.resource.list(actor=request.user), many=True).data)

    def post(self, request: Request) -> Response:
        data = dict(validated(self.resource.input, request.data))
        account = _account(request, data.pop("account_id", None))
        item = self.resource.create(actor=request.user, account=account, **data)
        return Response(self.resource.output(item).data, status=status.HTTP_201_CREATED)


class ResourceDetailApi(APIView):
    resource: Resource

    def get(self, request: Request, pk: int) -> Response:
        return Response(self.resource.output(self.resource.get(actor=request.user, pk=pk)).data)

    def patch(self, request: Request, pk: int) -> Response:
        item = self.resource.get(actor=request.user, pk=pk)
        data = {k: v for k, v in validated(self.resource.input, request.data, partial=True).items()
                if k not in self.resource.fixed}
        return Response(self.resource.output(self.resource.update(actor=request.user, item=item, **data)).data)

    def delete(self, request: Request, pk: int) -> Response:
        self.resource.delete(actor=request.user, item=self.resource.get(actor=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


def resource_views(name: str, resource: Resource) -> tuple[type[APIView], type[APIView]]:
    """The list and detail API classes of a resource, with its serializers in the OpenAPI schema."""
    list_api = extend_schema_view(
        get=extend_schema(responses=resource.output(many=True)),
        post=extend_schema(request=resource.input, responses={201: resource.output}),
    )(type(f"{name}ListApi", (ResourceListApi,), {"resource": resource}))
    detail_api = extend_schema_view(
        get=extend_schema(responses=resource.output),
        patch=extend_schema(request=resource.input, responses=resource.output),
        delete=extend_schema(responses={204: None}),
    )(type(f"{name}DetailApi", (ResourceDetailApi,), {"resource": resource}))
    return list_api, detail_api


FilterListApi, FilterDetailApi = resource_views("Filter", Resource(
    output=s.FilterOutput, input=s.FilterInput, list=rules.filter_list, get=rules.filter_get,
    create=rules.filter_create,
    update=lambda *, actor, item, **changes: rules.filter_update(actor=actor, saved_filter=item, **changes),
    delete=lambda *, actor, item: rules.filter_delete(actor=actor, saved_filter=item),
))
DestinationListApi, DestinationDetailApi = resource_views("Destination", Resource(
    output=s.DestinationOutput, input=s.DestinationInput, list=notifications.destination_list,
    get=notifications.destination_get, create=notifications.destination_create,
    update=lambda *, actor, item, **changes: notifications.destination_update(actor=actor, destination=item,
                                                                             **changes),
    delete=lambda *, actor, item: notifications.destination_delete(actor=actor, destination=item),
    fixed=("account_id", "kind"),
))


class FilterPreviewApi(APIView):
    @extend_schema(request=s.FilterPreviewInput, responses=s.CountOutput)
    def post(self, request: Request) -> Response:
        data = validated(s.FilterPreviewInput, request.data)
        account = access.access_account_by_aws_id(request.user, data["account_id"])
        return Response({"count": rules.filter_preview(actor=request.user, account=account, criteria=data["criteria"])})


class DestinationTestApi(APIView):
    @extend_schema(request=None, responses=s.DeliveryOutput, operation_id="findings_destinations_test")
    def post(self, request: Request, pk: int) -> Response:
        destination = notifications.destination_get(actor=request.user, pk=pk)
        return Response(s.DeliveryOutput(notifications.destination_test(actor=request.user, destination=destination)).data)


class DeliveryListApi(APIView):
    @extend_schema(responses=s.DeliveryOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        destination = notifications.destination_get(actor=request.user, pk=pk)
        return Response(s.DeliveryOutput(destination.deliveries.order_by("-created_at", "-id")[:200], many=True).data)
