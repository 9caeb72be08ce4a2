"""Triage writes: archive/unarchive, feedback, and GuardDuty's CreateSampleFindings.

GuardDuty's rule: only the administrator account's people archive findings (their members'
included); a member's own people see their findings read-only, except feedback.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts import access
from accounts.events import audit_record
from accounts.models import Account
from console.errors import NotFoundError, PermissionDeniedError, ServiceError
from findings.catalog import FINDING_TYPES
from findings.models import Feedback, Finding
from findings.search import scoped
from findings.services import FindingDraft, findings_upsert_many

MAX_IDS = 50


def _visible(actor: Any, finding_ids: Iterable[str]) -> list[Finding]:
    ids = list(dict.fromkeys(str(i) for i in finding_ids))
    if not ids:
        raise ServiceError("Select at least one finding.")
    if len(ids) > MAX_IDS * 20:
        raise ServiceError(f"At most {MAX_IDS * 20} findings at a time.")
    findings = list(scoped(actor=actor).filter(finding_id__in=ids).select_related("account"))
    if len(findings) != len(ids):
        raise NotFoundError("No such finding.")
    return findings


@transaction.atomic
def findings_set_archived(*, actor: Any, finding_ids: Iterable[str], archived: bool) -> int:
    """Archive or unarchive findings; all or nothing. Returns how many changed."""
    findings = _visible(actor, finding_ids)
    by_account: dict[int, list[Finding]] = defaultdict(list)
    for finding in findings:
        by_account[finding.account_id].append(finding)
    what = "archive findings" if archived else "unarchive findings"
    changed = 0
    for group in by_account.values():
        manager = access.require_manager_role(actor, group[0].account, access.TRIAGE_ROLES, what=what)
        pks = [f.pk for f in group if f.archived != archived]
        if pks:
            # updated_at is GuardDuty's "last updated": archiving does not change it (only occurrences do).
            changed += Finding.objects.filter(pk__in=pks).update(archived=archived)
            audit_record(account=manager, actor=actor, action="findings.archive" if archived else "findings.unarchive",
                         target=group[0].account.aws_account_id,
                         finding_ids=[f.finding_id for f in group if f.pk in pks][:100], count=len(pks))
    return changed


def _may_give_feedback(actor: Any, account: Account) -> bool:
    roles = {access.role_in(actor, account), access.role_in(actor, access.managing_account(account))}
    return bool(roles & set(access.TRIAGE_ROLES))


@transaction.atomic
def findings_feedback(*, actor: Any, finding_ids: Iterable[str], feedback: str, comments: str = "") -> int:
    """GuardDuty's UpdateFindingsFeedback. Members' own admins and analysts may give feedback too."""
    if feedback not in (Feedback.USEFUL, Feedback.NOT_USEFUL):
        raise ServiceError("Feedback is USEFUL or NOT_USEFUL.")
    findings = _visible(actor, finding_ids)
    for finding in findings:
        if not _may_give_feedback(actor, finding.account):
            raise PermissionDeniedError("Viewers cannot give feedback on findings.")
    Finding.objects.filter(pk__in=[f.pk for f in findings]).update(feedback=feedback)
    for account_id in {f.account_id for f in findings}:
        account = next(f.account for f in findings if f.account_id == account_id)
        audit_record(account=account, actor=actor, action="findings.feedback", target=account.aws_account_id,
                     feedback=feedback, comments=comments[:500],
                     finding_ids=[f.finding_id for f in findings if f.account_id == account_id][:100])
    if feedback == Feedback.NOT_USEFUL:
        from findings.rules import proposals_consider

        for finding in findings:
            proposals_consider(finding=finding)
    return len(findings)


# --- sample findings -------------------------------------------------------------------------

def _sample_resource(resource_type: str, region: str) -> dict[str, Any]:
    if resource_type == "Instance":
        return {"resourceType": "Instance", "instanceDetails": {
            "instanceId": "i-99999999", "instanceType": "m3.xlarge", "imageId": "ami-99999999",
            "availabilityZone": f"{region}a", "instanceState": "running",
            "networkInterfaces": [{"privateIpAddress": "10.0.0.1", "publicIp": "198.51.100.0",
                                   "vpcId": "GeneratedFindingVPCId", "subnetId": "GeneratedFindingSubnetId"}],
            "tags": [{"key": "GeneratedFindingInstaceTag1", "value": "GeneratedFindingInstaceValue1"}]}}
    if resource_type == "S3Bucket":
        return {"resourceType": "S3Bucket", "s3BucketDetails": [{
            "name": "bucketName", "arn": "arn:aws:s3:::bucketName", "type": "Destination",
            "owner": {"id": "CanonicalId of Owner"}}],
            "accessKeyDetails": {"accessKeyId": "GeneratedFindingAccessKeyId", "principalId": "GeneratedFindingPrincipalId",
                                 "userName": "GeneratedFindingUserName", "userType": "IAMUser"}}
    return {"resourceType": resource_type or "AccessKey", "accessKeyDetails": {
        "accessKeyId": "GeneratedFindingAccessKeyId", "principalId": "GeneratedFindingPrincipalId",
        "userName": "GeneratedFindingUserName", "userType": "IAMUser"}}


def _sample_action(action_type: str) -> dict[str, Any]:
    remote = {"ipAddressV4": "198.51.100.0", "organization": {"asn": "-1", "asnOrg": "GeneratedFindingASNOrg"},
              "country": {"countryName": "GeneratedFindingCountryName"}, "city": {"cityName": "GeneratedFindingCityName"}}
    if action_type == "NETWORK_CONNECTION":
        return {"actionType": action_type, "networkConnectionAction": {
            "connectionDirection": "OUTBOUND", "protocol": "TCP", "blocked": False, "remoteIpDetails": remote,
            "remotePortDetails": {"port": 80, "portName": "HTTP"}, "localPortDetails": {"port": 39677}}}
    if action_type == "DNS_REQUEST":
        return {"actionType": action_type, "dnsRequestAction": {"domain": "GeneratedFindingDomainName",
                                                                "protocol": "UDP", "blocked": False}}
    if action_type == "PORT_PROBE":
        return {"actionType": action_type, "portProbeAction": {"blocked": False, "portProbeDetails": [
            {"localPortDetails": {"port": 22, "portName": "SSH"}, "remoteIpDetails": remote}]}}
    return {"actionType": "AWS_API_CALL", "awsApiCallAction": {
        "api": "GeneratedFindingAPIName", "serviceName": "GeneratedFindingAPIServiceName",
        "callerType": "Remote IP", "remoteIpDetails": remote}}


@transaction.atomic
def findings_create_samples(*, actor: Any, account: Account, region: str,
                            finding_types: Iterable[str] | None = None) -> list[int]:
    """One sample finding of each type (or of the given types), marked `[SAMPLE]` and
    `additionalInfo.sample = true` so automation can tell them apart. Repeating it counts up."""
    access.require_role(actor, account, access.ADMIN_ROLES, what="generate sample findings")
    names = list(finding_types or FINDING_TYPES)
    unknown = [n for n in names if n not in FINDING_TYPES]
    if unknown:
        raise ServiceError(f"Unknown finding types: {', '.join(unknown[:5])}.")
    detector = account.detectors.filter(region=region).first()
    now = timezone.now()
    drafts = []
    for name in names:
        kind = FINDING_TYPES[name]
        drafts.append(FindingDraft(
            account_id=account.id, region=region, type=name, severity=kind.severity, dedup_key="sample",
            title=f"[SAMPLE] {kind.description.split(':')[0].rstrip('.')}"[:500], description=kind.description,
            resource=_sample_resource(kind.resource_type, region),
            service={"action": _sample_action(kind.action), "resourceRole": "TARGET",
                     "additionalInfo": {"sample": True}},
            first_seen=now, last_seen=now, detector_id=detector.pk if detector else None, is_sample=True,
        ))
    result = findings_upsert_many(drafts=drafts, now=now)
    audit_record(account=account, actor=actor, action="findings.create_samples", target=region, count=len(drafts))
    return result.created + result.updated
