"""Finding operations over findings.selectors / findings.services / findings.triage / findings.samples.

Which findings a detector sees follows GuardDuty: its own account's findings in its region, plus
those of the members associated with it (an administrator's detector), never anyone else's.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Count, Max, QuerySet
from django.db.models.functions import TruncDate

from accounts import selectors as account_selectors
from accounts.models import Detector
from findings import samples, triage
from findings.models import Finding
from findings.selectors import finding_list
from findings.serialize import finding_to_guardduty
from gdapi.criteria import criteria_q, keyset_page, sort_order
from gdapi.operations.base import Context, operation
from gdapi.protocol import bad_request, from_wire


def finding_scope(ctx: Context, detector: Detector) -> QuerySet[Finding]:
    members = account_selectors.member_list(actor=ctx.user, administrator=detector.account,
                                            only_associated=True).values_list("member_id", flat=True)
    return (finding_list(actor=ctx.user, region=detector.region, archived=None)
            .filter(account_id__in=[detector.account_id, *members]))


def _by_ids(ctx: Context, params: dict[str, Any]) -> tuple[Detector, list[Finding]]:
    detector = ctx.detector(params["DetectorId"])
    wanted = list(dict.fromkeys(params["FindingIds"]))
    found = list(finding_scope(ctx, detector).filter(finding_id__in=wanted))
    if len(found) != len(wanted):
        raise bad_request("The request is rejected because one or more input findingIds are not valid for this "
                          "detector.")
    return detector, found


@operation("ListFindings")
def list_findings(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    detector = ctx.detector(params["DetectorId"])
    findings = finding_scope(ctx, detector).filter(criteria_q(params.get("FindingCriteria")))
    # Only ids are answered: skip the JSON documents and the joins.
    slim = findings.select_related(None).defer("resource", "service", "evidence_events", "description")
    rows, token = keyset_page(slim, sort_order(params.get("SortCriteria")), size=params.get("MaxResults") or 50,
                              token=params.get("NextToken"))
    return {"FindingIds": [f.finding_id for f in rows], "NextToken": token}


@operation("GetFindings")
def get_findings(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    detector = ctx.detector(params["DetectorId"])
    findings = (finding_scope(ctx, detector).filter(finding_id__in=params["FindingIds"])
                .order_by(*sort_order(params.get("SortCriteria"))))
    # Unknown ids are left out of the answer, as GuardDuty does.
    return {"Findings": [from_wire("Finding", finding_to_guardduty(f)) for f in findings]}


def _set_archived(archived: bool) -> Any:
    def handler(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
        _, findings = _by_ids(ctx, params)
        triage.findings_set_archived(actor=ctx.user, findings=findings, archived=archived)
        return {}
    return handler


operation("ArchiveFindings")(_set_archived(True))
operation("UnarchiveFindings")(_set_archived(False))


@operation("UpdateFindingsFeedback")
def update_findings_feedback(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    _, findings = _by_ids(ctx, params)
    triage.findings_set_feedback(actor=ctx.user, findings=findings, feedback=params["Feedback"],
                                 comments=params.get("Comments", ""))
    return {}


@operation("CreateSampleFindings")
def create_sample_findings(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    detector = ctx.detector(params["DetectorId"])
    samples.sample_findings_create(actor=ctx.user, detector=detector, finding_types=params.get("FindingTypes"))
    return {}


_GROUPS = {
    "ACCOUNT": ("GroupedByAccount", ["account__aws_account_id"]),
    "DATE": ("GroupedByDate", ["day"]),
    "FINDING_TYPE": ("GroupedByFindingType", ["type"]),
    "RESOURCE": ("GroupedByResource", ["account__aws_account_id", "resource_id", "resource_type"]),
    "SEVERITY": ("GroupedBySeverity", ["severity"]),
}


def _group_item(group: str, row: dict[str, Any]) -> dict[str, Any]:
    item = {"LastGeneratedAt": row["last"], "TotalFindings": row["total"]}
    if group == "ACCOUNT":
        item["AccountId"] = row["account__aws_account_id"]
    elif group == "DATE":
        item.update(Date=row["day"], Severity=row["max_severity"])
    elif group == "FINDING_TYPE":
        item["FindingType"] = row["type"]
    elif group == "RESOURCE":
        item.update(AccountId=row["account__aws_account_id"], ResourceId=row["resource_id"],
                    ResourceType=row["resource_type"])
    else:
        item["Severity"] = row["severity"]
    return item


@operation("GetFindingsStatistics")
def get_findings_statistics(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    detector = ctx.detector(params["DetectorId"])
    findings = finding_scope(ctx, detector).filter(criteria_q(params.get("FindingCriteria"))).order_by()
    types, group = params.get("FindingStatisticTypes"), params.get("GroupBy")
    if bool(types) == bool(group):
        raise bad_request("The request is rejected because exactly one of findingStatisticTypes and groupBy "
                          "must be given.")
    if types:
        counts: dict[str, int] = defaultdict(int)
        for row in findings.values("severity").annotate(total=Count("id")):
            counts[str(float(row["severity"]))] += row["total"]
        return {"FindingStatistics": {"CountBySeverity": dict(counts)}}
    member, keys = _GROUPS[group]
    if group == "DATE":
        findings = findings.annotate(day=TruncDate("updated_at"))
    rows = (findings.values(*keys).annotate(total=Count("id"), last=Max("updated_at"), max_severity=Max("severity"))
            .order_by("total" if params.get("OrderBy") == "ASC" else "-total", *keys))
    limit = params.get("MaxResults") or 25
    return {"FindingStatistics": {member: [_group_item(group, row) for row in rows[:limit]]}}
