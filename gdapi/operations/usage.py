"""GetUsageStatistics over ingest.selectors.usage_statistics (metered events/bytes priced with
GuardDuty's tiers, last 30 days). An administrator's detector covers its associated members."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from accounts import selectors as account_selectors
from gdapi.operations.base import Context, operation, paginate
from gdapi.protocol import bad_request
from ingest.selectors import usage_statistics

FEATURE_OF_SOURCE = {"CLOUD_TRAIL": "CLOUD_TRAIL", "FLOW_LOGS": "FLOW_LOGS", "DNS_LOGS": "DNS_LOGS",
                     "S3_LOGS": "S3_DATA_EVENTS"}
SOURCE_OF_FEATURE = {v: k for k, v in FEATURE_OF_SOURCE.items()}


def _amount(cost: float) -> dict[str, str]:
    text = f"{cost:.10f}".rstrip("0").rstrip(".")
    return {"Amount": text or "0", "Unit": "USD"}


@operation("GetUsageStatistics")
def get_usage_statistics(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    detector = ctx.detector(params["DetectorId"])
    if params.get("Unit", "USD") != "USD":
        raise bad_request("The request is rejected because the only unit is USD.")
    criteria = params["UsageCriteria"]
    members = account_selectors.member_list(actor=ctx.user, administrator=detector.account, only_associated=True)
    scope = {detector.account.aws_account_id: detector.account_id,
             **{m.member.aws_account_id: m.member_id for m in members}}
    wanted = criteria.get("AccountIds")
    if wanted:
        outside = sorted(set(wanted) - set(scope))
        if outside:
            raise bad_request(f"The request is rejected because account {outside[0]} is not this detector's account "
                              "or one of its members.")
        scope = {a: i for a, i in scope.items() if a in wanted}
    sources = set(criteria.get("DataSources") or []) | {SOURCE_OF_FEATURE[f] for f in criteria.get("Features") or []
                                                        if f in SOURCE_OF_FEATURE}
    kind = params["UsageStatisticType"]

    def by_source(account_ids: list[int]) -> dict[str, float]:
        rows = usage_statistics(actor=ctx.user, statistic="SUM_BY_DATA_SOURCE", account_ids=account_ids,
                                region=detector.region)
        return {r["key"]: r["cost"] for r in rows if not sources or r["key"] in sources}

    if kind == "SUM_BY_DATA_SOURCE":
        items = [{"DataSource": s, "Total": _amount(c)} for s, c in sorted(by_source(list(scope.values())).items())]
        member = "SumByDataSource"
    elif kind == "SUM_BY_FEATURES":
        items = [{"Feature": FEATURE_OF_SOURCE[s], "Total": _amount(c)}
                 for s, c in sorted(by_source(list(scope.values())).items()) if s in FEATURE_OF_SOURCE]
        member = "SumByFeature"
    elif kind == "SUM_BY_ACCOUNT":
        totals: dict[str, float] = defaultdict(float)
        for aws_id, account_id in scope.items():
            totals[aws_id] = sum(by_source([account_id]).values())
        items = [{"AccountId": a, "Total": _amount(c)} for a, c in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))]
        member = "SumByAccount"
    elif kind in ("SUM_BY_RESOURCE", "TOP_RESOURCES"):
        rows = usage_statistics(actor=ctx.user, statistic="TOP_RESOURCES", account_ids=list(scope.values()),
                                region=detector.region)
        resources = set(criteria.get("Resources") or [])
        items = [{"Resource": r["key"], "Total": _amount(r["cost"])} for r in rows
                 if not resources or r["key"] in resources]
        member = "SumByResource" if kind == "SUM_BY_RESOURCE" else "TopResources"
    else:
        raise bad_request(f"Vigil does not compute the {kind} usage statistic.")
    page, token = paginate(items, params)
    return {"UsageStatistics": {member: page}, "NextToken": token}
