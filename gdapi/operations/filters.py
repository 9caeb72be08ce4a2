"""Create/Get/Update/Delete/ListFilters over gdapi.filters (saved filters and suppression rules)."""

from __future__ import annotations

from typing import Any

from gdapi import filters
from gdapi.operations import tags
from gdapi.operations.base import Context, operation, paginate


@operation("CreateFilter")
def create_filter(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    detector = ctx.detector(params["DetectorId"])
    item = filters.filter_create(
        actor=ctx.user, account=detector.account, region=detector.region, name=params["Name"],
        criteria=params["FindingCriteria"], action=params.get("Action", "NOOP"), rank=params.get("Rank"),
        description=params.get("Description", ""), tags=params.get("Tags"),
    )
    return {"Name": item.name}


@operation("GetFilter")
def get_filter(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    detector = ctx.detector(params["DetectorId"])
    item = filters.filter_get(actor=ctx.user, account=detector.account, region=detector.region,
                              name=params["FilterName"])
    return {"Name": item.name, "Description": item.description, "Action": item.action, "Rank": item.rank,
            "FindingCriteria": item.criteria, "Tags": item.tags or None, "CreatedAt": item.created_at,
            "UpdatedAt": item.updated_at}


@operation("UpdateFilter")
def update_filter(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    detector = ctx.detector(params["DetectorId"])
    item = filters.filter_update(
        actor=ctx.user, account=detector.account, region=detector.region, name=params["FilterName"],
        description=params.get("Description"), action=params.get("Action"), rank=params.get("Rank"),
        criteria=params.get("FindingCriteria"),
    )
    return {"Name": item.name}


@operation("DeleteFilter")
def delete_filter(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    detector = ctx.detector(params["DetectorId"])
    filters.filter_delete(actor=ctx.user, account=detector.account, region=detector.region, name=params["FilterName"])
    return {}


@operation("ListFilters")
def list_filters(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    detector = ctx.detector(params["DetectorId"])
    names = filters.filter_list(actor=ctx.user, account=detector.account, region=detector.region) \
        .values_list("name", flat=True)
    page, token = paginate(names, params)
    return {"FilterNames": page, "NextToken": token}


def _filter_tags(ctx: Context, detector: Any, name: str) -> dict[str, str]:
    return dict(filters.filter_get(actor=ctx.user, account=detector.account, region=detector.region,
                                   name=name).tags or {})


def _filter_write(ctx: Context, detector: Any, name: str, new_tags: dict[str, str]) -> None:
    filters.filter_update(actor=ctx.user, account=detector.account, region=detector.region, name=name, tags=new_tags)


tags.TAGGABLE["filter"] = tags.Taggable(_filter_tags, _filter_write)
