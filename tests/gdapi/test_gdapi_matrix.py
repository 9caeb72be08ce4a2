"""Every served GuardDuty operation, each of (unsigned, wrong secret, another account's key): refused with
AWS's error, and the victim account's data neither returned nor changed."""

from __future__ import annotations

import boto3
import pytest
from botocore import UNSIGNED, xform_name
from botocore.config import Config
from botocore.exceptions import ClientError

from accounts.models import AuditEvent, Detector, Member
from gdapi.operations import HANDLERS
from gdapi.operations.base import NOT_OWNED
from gdapi.protocol import shapes

DETECTOR_FREE = {"CreateDetector", "ListDetectors", "ListInvitations", "GetInvitationsCount", "DeclineInvitations",
                 "DeleteInvitations"}


def _value(shape_name: str, member: str, victim) -> object:
    """A minimal valid value for a required member, aimed at the victim's resources."""
    shape = shapes()[shape_name]
    kind = shape["type"]
    if member == "DetectorId":
        return victim["detector"]
    if member == "ResourceArn":
        return f"arn:aws:guardduty:us-east-1:{victim['account']}:detector/{victim['detector']}"
    if member in ("AccountId", "AdministratorId", "MasterId"):
        return victim["member"]
    if kind == "structure":
        return {name: _value(shape["members"][name]["shape"], name, victim) for name in shape.get("required", [])}
    if kind == "list":
        item = shape["member"]["shape"]
        return [_value(item, "AccountId" if member == "AccountIds" else member, victim)]
    if kind == "map":
        return {"k": "v"}
    if kind == "boolean":
        return True
    if kind in ("integer", "long"):
        return shape.get("min", 1)
    if kind == "double":
        return 1.0
    if "enum" in shape:
        return shape["enum"][0]
    if member == "Email":
        return "x@example.com"
    return "x" * max(shape.get("min", 1), 1)


def _params(op_name: str, victim) -> dict:
    op = shapes()[f"{op_name}Request"] if f"{op_name}Request" in shapes() else {"required": [], "members": {}}
    return {name: _value(op["members"][name]["shape"], name, victim) for name in op.get("required", [])}


@pytest.fixture
def victim_and_attacker(principal_factory):
    victim = principal_factory(region="us-east-1")
    attacker = principal_factory(region="us-east-1")
    member = principal_factory(region="us-east-1")
    Member.objects.create(administrator=victim.account, member=member.account, email=member.account.email,
                          relationship_status="Enabled")
    detector = victim.account.detectors.get()
    detector.tags = {"owner": "victim"}
    detector.save()
    return victim, attacker, {"detector": detector.detector_id, "account": victim.account.aws_account_id,
                              "member": member.account.aws_account_id}


def _state(victim) -> tuple:
    return (sorted(Detector.objects.filter(account=victim.account).values_list("detector_id", "status", "tags",
                                                                             "finding_publishing_frequency")),
            sorted(Member.objects.filter(administrator=victim.account).values_list("member_id",
                                                                                   "relationship_status")))


SERVED = sorted(HANDLERS)


def test_matrix_covers_the_served_operations():
    assert {"CreateDetector", "ListMembers", "TagResource", "AcceptAdministratorInvitation"} <= set(SERVED)


@pytest.mark.parametrize("op_name", SERVED)
def test_operation_refuses_unsigned_wrong_secret_and_foreign_keys(op_name, victim_and_attacker, make_client,
                                                                   endpoint):
    victim, attacker, names = victim_and_attacker
    params = _params(op_name, names)
    method = xform_name(op_name)
    before = _state(victim)

    unsigned = boto3.client("guardduty", endpoint_url=endpoint, region_name="us-east-1",
                            config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as exc:
        getattr(unsigned, method)(**params)
    assert exc.value.response["Error"]["Code"] == "MissingAuthenticationTokenException"

    with pytest.raises(ClientError) as exc:
        getattr(make_client(victim, secret="z" * 40), method)(**params)
    assert exc.value.response["Error"]["Code"] == "InvalidSignatureException"

    if op_name not in DETECTOR_FREE:
        with pytest.raises(ClientError) as exc:
            getattr(make_client(attacker), method)(**params)
        error = exc.value.response["Error"]
        assert error["Code"] in ("BadRequestException", "AccessDeniedException"), error
        if error["Code"] == "BadRequestException":
            assert error["Message"] == NOT_OWNED
        assert AuditEvent.objects.filter(account=attacker.account, action="gdapi.request_refused",
                                         details__operation=op_name).exists()
    assert _state(victim) == before
