"""One view serves every GuardDuty operation: route by the model, authenticate by SigV4, parse
and validate the input by the model, call the handler (which calls the domain services), and
serialise the output by the model. Errors leave in GuardDuty's shape."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta
from urllib.parse import quote, unquote, urlsplit

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from accounts.events import audit_record
from accounts.models import AuditEvent
from console.errors import ServiceError
from gdapi import auth, services
from gdapi.operations import HANDLERS
from gdapi.operations.base import Context, RefusedError, translate
from gdapi.protocol import (
    GuardDutyError,
    Operation,
    OutputShapeError,
    bad_request,
    internal_error,
    parse_input,
    route,
    serialize_output,
)
from gdapi.sigv4 import SignatureError

logger = logging.getLogger("vigil.gdapi")


def _error_response(code: str, message: str, status: int, request_id: str) -> HttpResponse:
    body = json.dumps({"message": message, "__type": code})
    response = HttpResponse(body, status=status, content_type="application/json")
    response["x-amzn-ErrorType"] = code
    response["x-amzn-RequestId"] = request_id
    return response


def _raw_path(request: HttpRequest, op: Operation, path_params: dict[str, str], rest: str) -> str:
    """The path exactly as the client sent it, for the canonical request. Servers that keep the
    raw URI (gunicorn RAW_URI, uWSGI/ASGI REQUEST_URI) give it directly; otherwise the decoded
    path is re-encoded the way botocore encodes each URI label."""
    for name in ("RAW_URI", "REQUEST_URI"):
        raw = request.META.get(name)
        if raw:
            path = urlsplit(raw).path if "://" in raw else raw.split("?", 1)[0]
            if unquote(path) == request.path:
                return path
    prefix = request.path[: len(request.path) - len(rest)] if rest else request.path
    return quote(prefix, safe="/~") + op.render_path(path_params).lstrip("/")


def _query(request: HttpRequest) -> dict[str, list[str]]:
    return {key: request.GET.getlist(key) for key in request.GET}


def _log_refusal(request: HttpRequest, op_name: str, code: str, message: str, *, key=None, caller=None) -> None:
    key_id = key.access_key_id if key is not None else ""
    logger.warning("GuardDuty API refused %s %s (%s): %s; key=%s remote=%s",
                   op_name, request.path, code, message, key_id or "-", request.META.get("REMOTE_ADDR", "-"))
    if key is not None and not _recently_audited(key, op_name, code):
        # Recorded even when the signature is wrong: repeated failures on a real key id are worth seeing.
        audit_record(account=key.account, actor=caller.user if caller else None, action="gdapi.request_refused",
                     target=key_id, operation=op_name, error=code, reason=message[:300],
                     remote_addr=request.META.get("REMOTE_ADDR", ""))


def _recently_audited(key, op_name: str, code: str) -> bool:
    """One audit row per key, operation and error a minute: a script hammering with a bad secret is
    logged every time but cannot flood the account's audit log."""
    since = timezone.now() - timedelta(seconds=60)
    return AuditEvent.objects.filter(account=key.account, action="gdapi.request_refused", target=key.access_key_id,
                                     created_at__gte=since, details__operation=op_name,
                                     details__error=code).exists()


@csrf_exempt
def dispatch(request: HttpRequest, rest: str) -> HttpResponse:
    request_id = str(uuid.uuid4())
    op_name = "-"
    caller: auth.Caller | None = None
    try:
        op, path_params = route(request.method or "GET", "/" + rest)
        op_name = op.name
        try:
            body = request.body
        except Exception as exc:  # RequestDataTooBig and friends: refuse before any work
            raise bad_request("The request is rejected because the request body is too large.") from exc
        caller, error, key = auth.authenticate(request, canonical_path=_raw_path(request, op, path_params, rest),
                                               body=body)
        if error is not None:
            _log_refusal(request, op_name, error.code, error.message, key=key)
            return _error_response(error.code, error.message, error.status, request_id)
        services.access_key_touch(key=caller.key)
        handler = HANDLERS.get(op.name)
        if handler is None:
            raise bad_request(f"Vigil does not implement the {op.name} operation.")
        params = parse_input(op, path_params=path_params, query=_query(request),
                             headers=auth.request_headers(request), body=body)
        ctx = Context(caller=caller, op=op)
        try:
            with transaction.atomic():
                data = handler(ctx, params)
                payload = serialize_output(op, data)
        except ServiceError as exc:
            raise translate(exc) from exc
    except RefusedError as exc:
        _log_refusal(request, op_name, exc.code, exc.message, key=caller.key if caller else None, caller=caller)
        return _error_response(exc.code, exc.message, exc.status, request_id)
    except GuardDutyError as exc:
        return _error_response(exc.code, exc.message, exc.status, request_id)
    except SignatureError as exc:
        return _error_response(exc.code, exc.message, exc.status, request_id)
    except OutputShapeError:
        logger.exception("GuardDuty API answer for %s does not fit the service model", op_name)
        err = internal_error()
        return _error_response(err.code, err.message, err.status, request_id)
    except Exception:
        logger.exception("GuardDuty API %s failed", op_name)
        err = internal_error()
        return _error_response(err.code, err.message, err.status, request_id)
    response = HttpResponse(payload, status=op.status, content_type="application/json")
    response["x-amzn-RequestId"] = request_id
    return response
