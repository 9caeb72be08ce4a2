"""Detector operations over accounts.services / accounts.selectors."""

from __future__ import annotations

from typing import Any

from accounts import selectors, services
from accounts.models import Detector
from gdapi.operations.base import Context, operation, paginate
from gdapi.protocol import aws_timestamp

SERVICE_ROLE = "arn:aws:iam::{account}:role/aws-service-role/guardduty.amazonaws.com/AWSServiceRoleForAmazonGuardDuty"


def _s3_setting(params: dict[str, Any]) -> bool | None:
    """S3 data events from the deprecated DataSources or from Features (Features win, as in GuardDuty)."""
    value = params.get("DataSources", {}).get("S3Logs", {}).get("Enable")
    for feature in params.get("Features", []):
        if feature.get("Name") == "S3_DATA_EVENTS" and "Status" in feature:
            value = feature["Status"] == "ENABLED"
    return value


def _status(enabled: bool) -> str:
    return "ENABLED" if enabled else "DISABLED"


def detector_output(detector: Detector) -> dict[str, Any]:
    foundational = _status(detector.is_enabled)
    return {
        "CreatedAt": aws_timestamp(detector.created_at),
        "UpdatedAt": aws_timestamp(detector.updated_at),
        "FindingPublishingFrequency": detector.finding_publishing_frequency,
        "ServiceRole": SERVICE_ROLE.format(account=detector.account.aws_account_id),
        "Status": _status(detector.is_enabled),
        "DataSources": {
            "CloudTrail": {"Status": _status(detector.cloudtrail_enabled) if detector.is_enabled else foundational},
            "DNSLogs": {"Status": _status(detector.dns_logs_enabled) if detector.is_enabled else foundational},
            "FlowLogs": {"Status": _status(detector.flow_logs_enabled) if detector.is_enabled else foundational},
            "S3Logs": {"Status": _status(detector.s3_data_events_enabled)},
        },
        "Features": [
            {"Name": "CLOUD_TRAIL", "Status": _status(detector.cloudtrail_enabled), "UpdatedAt": detector.updated_at},
            {"Name": "DNS_LOGS", "Status": _status(detector.dns_logs_enabled), "UpdatedAt": detector.updated_at},
            {"Name": "FLOW_LOGS", "Status": _status(detector.flow_logs_enabled), "UpdatedAt": detector.updated_at},
            {"Name": "S3_DATA_EVENTS", "Status": _status(detector.s3_data_events_enabled),
             "UpdatedAt": detector.updated_at},
        ],
        "Tags": detector.tags or None,
    }


@operation("CreateDetector")
def create_detector(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    s3 = _s3_setting(params)
    detector = services.detector_create(
        actor=ctx.user, account=ctx.account, region=ctx.region, enable=params["Enable"],
        finding_publishing_frequency=params.get("FindingPublishingFrequency"),
        data_sources={"s3_data_events": s3} if s3 is not None else None,
        tags=params.get("Tags"),
    )
    return {"DetectorId": detector.detector_id}


@operation("GetDetector")
def get_detector(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return detector_output(ctx.detector(params["DetectorId"]))


@operation("UpdateDetector")
def update_detector(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    detector = ctx.detector(params["DetectorId"])
    s3 = _s3_setting(params)
    frequency = params.get("FindingPublishingFrequency")
    if frequency == detector.finding_publishing_frequency:
        frequency = None
    if frequency is not None or s3 is not None:
        services.detector_update(actor=ctx.user, detector=detector, finding_publishing_frequency=frequency,
                                 data_sources={"s3_data_events": s3} if s3 is not None else None)
    if "Enable" in params and params["Enable"] != detector.is_enabled:
        if params["Enable"]:
            services.detector_resume(actor=ctx.user, detector=detector)
        else:
            services.detector_suspend(actor=ctx.user, detector=detector)
    return {}


@operation("DeleteDetector")
def delete_detector(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    detector = ctx.detector(params["DetectorId"])
    # The API call itself is the confirmation the console asks a person to type.
    services.detector_delete(actor=ctx.user, detector=detector, confirm=detector.detector_id)
    return {}


@operation("ListDetectors")
def list_detectors(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    ids = (selectors.detector_list(actor=ctx.user, region=ctx.region).filter(account=ctx.account)
           .order_by("detector_id").values_list("detector_id", flat=True))
    page, token = paginate(ids, params)
    return {"DetectorIds": page, "NextToken": token}
