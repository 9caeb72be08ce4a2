"""IPSet (trusted IP list) and ThreatIntelSet operations over intel.services / intel.selectors.

Lists belong to the managing account (the administrator for its members) in the detector's
region; members list and read them, only the administrator's admins change them (intel's rules).
"""

from __future__ import annotations

import re
from typing import Any

from accounts.models import Detector
from console.errors import NotFoundError
from gdapi.operations.base import Context, operation, paginate
from gdapi.protocol import bad_request
from intel import selectors, services
from intel.models import IntelSet

# GuardDuty also accepts S3 object URLs; Vigil reads only from S3, so those are rewritten to s3://.
_S3_URL_RES = (
    re.compile(r"^https://s3(?:[.-][a-z0-9-]+)?\.amazonaws\.com(?:\.cn)?/(?P<bucket>[^/]+)/(?P<key>.+)$"),
    re.compile(r"^https://(?P<bucket>[^/]+)\.s3(?:[.-][a-z0-9-]+)?\.amazonaws\.com(?:\.cn)?/(?P<key>.+)$"),
)


def s3_location(location: str) -> str:
    for pattern in _S3_URL_RES:
        match = pattern.match(location)
        if match:
            return f"s3://{match['bucket']}/{match['key']}"
    return location


def _kind_ops(kind: str) -> dict[str, str]:
    if kind == IntelSet.Kind.TRUSTED:
        return {"id": "IpSetId", "ids": "IpSetIds"}
    return {"id": "ThreatIntelSetId", "ids": "ThreatIntelSetIds"}


def _list_for(ctx: Context, detector: Detector, kind: str, set_id: str) -> IntelSet:
    try:
        intel_set = selectors.intel_set_get(actor=ctx.user, set_id=set_id)
    except NotFoundError as exc:
        raise bad_request("The request is rejected because the input list id is not valid.") from exc
    applies = selectors.intel_set_list(actor=ctx.user, account=detector.account, region=detector.region, kind=kind)
    if not applies.filter(id=intel_set.id).exists():
        raise bad_request("The request is rejected because the input list id is not valid.")
    return intel_set


def _register(kind: str, noun: str) -> None:
    names = _kind_ops(kind)

    def create(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
        detector = ctx.detector(params["DetectorId"])
        intel_set = services.intel_set_create(
            actor=ctx.user, account=detector.account, region=detector.region, kind=kind, name=params["Name"],
            fmt=params["Format"], location=s3_location(params["Location"]), activate=params["Activate"],
            expected_bucket_owner=params.get("ExpectedBucketOwner", ""), tags=params.get("Tags"),
        )
        return {names["id"]: intel_set.set_id}

    def get(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
        detector = ctx.detector(params["DetectorId"])
        intel_set = _list_for(ctx, detector, kind, params[names["id"]])
        return {"Name": intel_set.name, "Format": intel_set.format,
                "Location": intel_set.location or f"upload:{intel_set.upload_name or intel_set.name}",
                "Status": intel_set.status, "Tags": intel_set.tags or None,
                "ExpectedBucketOwner": intel_set.expected_bucket_owner or None}

    def update(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
        detector = ctx.detector(params["DetectorId"])
        intel_set = _list_for(ctx, detector, kind, params[names["id"]])
        location = params.get("Location")
        services.intel_set_update(actor=ctx.user, set_id=intel_set.set_id, name=params.get("Name"),
                                  location=s3_location(location) if location else None,
                                  activate=params.get("Activate"))
        return {}

    def delete(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
        detector = ctx.detector(params["DetectorId"])
        intel_set = _list_for(ctx, detector, kind, params[names["id"]])
        services.intel_set_delete(actor=ctx.user, set_id=intel_set.set_id)
        return {}

    def list_(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
        detector = ctx.detector(params["DetectorId"])
        ids = (selectors.intel_set_list(actor=ctx.user, account=detector.account, region=detector.region, kind=kind)
               .order_by("created_at", "id").values_list("set_id", flat=True))
        page, token = paginate(ids, params)
        return {names["ids"]: page, "NextToken": token}

    operation(f"Create{noun}")(create)
    operation(f"Get{noun}")(get)
    operation(f"Update{noun}")(update)
    operation(f"Delete{noun}")(delete)
    operation(f"List{noun}s")(list_)


_register(IntelSet.Kind.TRUSTED, "IPSet")
_register(IntelSet.Kind.THREAT, "ThreatIntelSet")
