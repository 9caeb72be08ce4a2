"""GuardDuty's FindingCriteria and SortCriteria for the REST-JSON API, on the shared engine.

The criteria engine lives in findings.criteria (one engine for the console, the API, gdapi and
suppression rules); this module turns its neutral CriteriaError into GuardDuty's
BadRequestException and keeps the protocol's own encrypted nextToken pagination.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.db.models import Q

from findings import criteria as engine
from findings.criteria import FIELDS, MAX_ATTRIBUTES, MAX_VALUES, SORT_FIELDS, Field  # noqa: F401 - re-exported
from gdapi.protocol import bad_request


def _rejected(exc: engine.CriteriaError):
    message = "the" + exc.message[3:] if exc.message.startswith("The ") else exc.message
    return bad_request(f"The request is rejected because {message}")


def criteria_q(criteria: dict[str, Any] | None, *, allow_matches: bool = False) -> Q:
    """FindingCriteria (member names, as parsed from the model) -> Q over findings."""
    try:
        return engine.criteria_q(criteria, allow_matches=allow_matches)
    except engine.CriteriaError as exc:
        raise _rejected(exc) from exc


def sort_order(sort: dict[str, Any] | None, *, default: str = "-updated_at") -> list[str]:
    try:
        return engine.sort_order(sort, default=default)
    except engine.CriteriaError as exc:
        raise _rejected(exc) from exc


def _token_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"t": value.isoformat()}
    return value


def _from_token_value(value: Any) -> Any:
    if isinstance(value, dict) and "t" in value:
        return dt.datetime.fromisoformat(value["t"])
    return value


def _cipher() -> Any:
    from gdapi.crypto import token_cipher

    return token_cipher()


def keyset_page(queryset: Any, order: list[str], *, size: int, token: str | None) -> tuple[list[Any], str | None]:
    """One page after the position in `token`, by (sort column, row id): stable while findings
    arrive, and page 1000 costs what page 1 does (no OFFSET). The token is encrypted, so it
    neither reveals row ids nor can be forged."""
    column, tie = order
    field = column.lstrip("-")
    descending = column.startswith("-")
    if token:
        try:
            state = json.loads(_cipher().decrypt(token.encode()))
            value, last_id = _from_token_value(state["v"]), int(state["id"])
            if state.get("o") != order:
                raise ValueError("order changed")
        except Exception as exc:  # any undecryptable or malformed token is the client's error
            raise bad_request("The request is rejected because the nextToken is not valid.") from exc
        op = "lt" if descending else "gt"
        queryset = queryset.filter(Q(**{f"{field}__{op}": value}) | Q(**{field: value, "id__gt": last_id}))
    rows = list(queryset.order_by(column, tie)[:size + 1])
    if len(rows) <= size:
        return rows, None
    rows = rows[:size]
    value = rows[-1]
    for part in field.split("__"):
        value = getattr(value, part)
    state = {"v": _token_value(value), "id": rows[-1].id, "o": order}
    return rows, _cipher().encrypt(json.dumps(state).encode()).decode()
