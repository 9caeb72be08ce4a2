"""TagResource / UntagResource / ListTagsForResource.

An ARN names a resource under a detector (`…:detector/<id>` or `…:detector/<id>/<kind>/<name>`).
Each taggable kind registers how to read and write its tags through its own services, so the
rules (who may change what) stay in one place.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from accounts import services
from accounts.models import Detector
from gdapi.operations.base import Context, RefusedError, operation
from gdapi.protocol import bad_request

MAX_TAGS = 50  # GuardDuty: at most 50 tags per resource
ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:guardduty:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):detector/(?P<detector>[^/]+)"
    r"(?:/(?P<kind>[A-Za-z]+)/(?P<name>[^/]+))?$"
)


@dataclass(frozen=True)
class Taggable:
    read: Callable[[Context, Detector, str], dict[str, str]]
    write: Callable[[Context, Detector, str, dict[str, str]], None]


def _detector_tags(ctx: Context, detector: Detector, name: str) -> dict[str, str]:
    return dict(detector.tags or {})


def _detector_write(ctx: Context, detector: Detector, name: str, tags: dict[str, str]) -> None:
    services.detector_update(actor=ctx.user, detector=detector, tags=tags)


# kind ("" for the detector itself) -> accessors; other apps' resources are added by their modules.
TAGGABLE: dict[str, Taggable] = {"": Taggable(_detector_tags, _detector_write)}


def _resolve(ctx: Context, arn: str) -> tuple[Taggable, Detector, str]:
    match = ARN_RE.match(arn)
    if not match:
        raise bad_request("The request is rejected because the resource ARN is not valid.")
    if match["account"] != ctx.account.aws_account_id or match["region"] != ctx.region:
        raise RefusedError("AccessDeniedException",
                           "The request is rejected because the resource is not owned by the current account.", 403)
    taggable = TAGGABLE.get(match["kind"] or "")
    if taggable is None:
        raise bad_request(f"The request is rejected because resources of type {match['kind']} cannot be tagged.")
    return taggable, ctx.detector(match["detector"]), match["name"] or ""


@operation("TagResource")
def tag_resource(ctx: Context, params: dict[str, Any]) -> None:
    taggable, detector, name = _resolve(ctx, params["ResourceArn"])
    tags = {**taggable.read(ctx, detector, name), **params["Tags"]}
    if len(tags) > MAX_TAGS:
        raise bad_request(f"The request is rejected because a resource can have at most {MAX_TAGS} tags.")
    taggable.write(ctx, detector, name, tags)


@operation("UntagResource")
def untag_resource(ctx: Context, params: dict[str, Any]) -> None:
    taggable, detector, name = _resolve(ctx, params["ResourceArn"])
    tags = taggable.read(ctx, detector, name)
    remaining = {k: v for k, v in tags.items() if k not in set(params["TagKeys"])}
    if remaining != tags:
        taggable.write(ctx, detector, name, remaining)


@operation("ListTagsForResource")
def list_tags_for_resource(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    taggable, detector, name = _resolve(ctx, params["ResourceArn"])
    return {"Tags": taggable.read(ctx, detector, name)}
