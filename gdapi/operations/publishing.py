"""Create/Describe/Update/Delete/ListPublishingDestinations over gdapi.publishing."""

from __future__ import annotations

from typing import Any

from gdapi import publishing
from gdapi.operations import tags
from gdapi.operations.base import Context, operation, paginate


@operation("CreatePublishingDestination")
def create_publishing_destination(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    detector = ctx.detector(params["DetectorId"])
    props = params["DestinationProperties"]
    destination = publishing.destination_create(
        actor=ctx.user, detector=detector, destination_arn=props.get("DestinationArn", ""),
        kms_key_arn=props.get("KmsKeyArn", ""), expected_bucket_owner=props.get("ExpectedBucketOwner", ""),
        tags=params.get("Tags"),
    )
    return {"DestinationId": destination.destination_id}


@operation("DescribePublishingDestination")
def describe_publishing_destination(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    detector = ctx.detector(params["DetectorId"])
    destination = publishing.destination_get(actor=ctx.user, detector=detector,
                                             destination_id=params["DestinationId"])
    failure = publishing.failure_started(destination)
    return {"DestinationId": destination.destination_id, "DestinationType": "S3", "Status": destination.export_status,
            # Epoch milliseconds; GuardDuty answers 0 when publishing has not failed.
            "PublishingFailureStartTimestamp": int(failure.timestamp() * 1000) if failure else 0,
            "DestinationProperties": publishing.properties(destination), "Tags": destination.tags or None}


@operation("UpdatePublishingDestination")
def update_publishing_destination(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    detector = ctx.detector(params["DetectorId"])
    props = params.get("DestinationProperties", {})
    publishing.destination_update(actor=ctx.user, detector=detector, destination_id=params["DestinationId"],
                                  destination_arn=props.get("DestinationArn"), kms_key_arn=props.get("KmsKeyArn"),
                                  expected_bucket_owner=props.get("ExpectedBucketOwner"))
    return {}


@operation("DeletePublishingDestination")
def delete_publishing_destination(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    detector = ctx.detector(params["DetectorId"])
    publishing.destination_delete(actor=ctx.user, detector=detector, destination_id=params["DestinationId"])
    return {}


@operation("ListPublishingDestinations")
def list_publishing_destinations(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    detector = ctx.detector(params["DetectorId"])
    page, token = paginate(list(publishing.destination_list(actor=ctx.user, detector=detector)), params)
    return {"Destinations": [{"DestinationId": d.destination_id, "DestinationType": "S3", "Status": d.export_status}
                             for d in page], "NextToken": token}


def _tags_read(ctx: Context, detector: Any, name: str) -> dict[str, str]:
    return dict(publishing.destination_get(actor=ctx.user, detector=detector, destination_id=name).tags or {})


def _tags_write(ctx: Context, detector: Any, name: str, new_tags: dict[str, str]) -> None:
    publishing.destination_update(actor=ctx.user, detector=detector, destination_id=name, tags=new_tags)


tags.TAGGABLE["publishingDestination"] = tags.Taggable(_tags_read, _tags_write)
