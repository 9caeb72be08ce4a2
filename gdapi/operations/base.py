"""What every operation handler shares: the caller's context, the registry, pagination tokens and
the mapping from Vigil's domain errors to GuardDuty's error types."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from accounts import selectors as account_selectors
from accounts.models import Account, Detector
from console.errors import ConflictError, NotFoundError, PermissionDeniedError, ServiceError
from gdapi.auth import Caller
from gdapi.protocol import GuardDutyError, Operation, access_denied, bad_request, operations

NOT_OWNED = "The request is rejected because the input detectorId is not owned by the current account."

Handler = Callable[["Context", dict[str, Any]], dict[str, Any] | None]
HANDLERS: dict[str, Handler] = {}


class RefusedError(GuardDutyError):
    """A refusal about who may do what (foreign detector, role too low): logged and audited."""


def operation(name: str) -> Callable[[Handler], Handler]:
    if name not in operations():
        raise LookupError(f"{name} is not a GuardDuty operation in botocore's model")

    def register(fn: Handler) -> Handler:
        if name in HANDLERS:
            raise LookupError(f"{name} registered twice")
        HANDLERS[name] = fn
        return fn
    return register


@dataclass(frozen=True)
class Context:
    caller: Caller
    op: Operation

    @property
    def user(self) -> Any:
        return self.caller.user

    @property
    def account(self) -> Account:
        return self.caller.account

    @property
    def region(self) -> str:
        return self.caller.region

    def detector(self, detector_id: str) -> Detector:
        """The caller's own detector in the signed region; anything else is answered as GuardDuty does."""
        detector = (
            account_selectors.detector_list(actor=self.user, region=self.region)
            .filter(detector_id=detector_id, account=self.account)
            .first()
        )
        if detector is None:
            raise RefusedError("BadRequestException", NOT_OWNED, 400)
        return detector


def translate(exc: ServiceError) -> GuardDutyError:
    """GuardDuty answers most refusals as BadRequestException; role refusals are AccessDeniedException."""
    if isinstance(exc, PermissionDeniedError):
        refused = RefusedError("AccessDeniedException", exc.message, 403)
        return refused
    if isinstance(exc, NotFoundError | ConflictError):
        return bad_request(exc.message)
    return bad_request(exc.message)


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{offset}".encode()).decode().rstrip("=")


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        version, _, offset = raw.partition(":")
        value = int(offset)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise bad_request("The request is rejected because the nextToken is not valid.") from exc
    if version != "v1" or value < 0:
        raise bad_request("The request is rejected because the nextToken is not valid.")
    return value


def paginate(items: Sequence[Any], params: dict[str, Any], *, default: int = 50) -> tuple[list[Any], str | None]:
    """One page by offset (the order must be stable: every caller orders by a unique key)."""
    size = params.get("MaxResults") or default
    offset = _decode_token(params.get("NextToken"))
    page = list(items[offset:offset + size + 1])
    next_token = _encode_token(offset + size) if len(page) > size else None
    return page[:size], next_token


__all__ = ["HANDLERS", "NOT_OWNED", "Context", "RefusedError", "access_denied", "operation", "paginate", "translate"]
