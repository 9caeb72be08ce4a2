"""GuardDuty FindingCriteria and SortCriteria compiled to ORM filters (parameters, never SQL text).

`{"Criterion": {"<json path>": {"Equals": [...], "GreaterThan": n, ...}}}`: attributes are ANDed,
the values of one Equals are ORed. Each supported attribute maps to an indexed column of the
findings table; timestamps compare as epoch milliseconds, `severity` Equals matches whole levels
(GuardDuty's documented `["7","8"]` = High), `service.archived` true/false.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from gdapi.protocol import bad_request

MAX_ATTRIBUTES = 50
MAX_VALUES = 50


@dataclass(frozen=True)
class Field:
    path: str                 # ORM lookup path
    kind: str = "str"         # str | int | float | bool | time
    equals_path: str = ""     # a different column for Equals/NotEquals (severity: the whole level)


def _ip_paths(*prefixes: str) -> dict[str, Field]:
    return {f"{p}.remoteIpDetails.ipAddressV4": Field("remote_ip") for p in prefixes}


FIELDS: dict[str, Field] = {
    "accountId": Field("account__aws_account_id"),
    "id": Field("finding_id"),
    "region": Field("region"),
    "type": Field("type"),
    "title": Field("title"),
    "description": Field("description"),
    "severity": Field("severity", "float", equals_path="severity_level"),
    "createdAt": Field("created_at", "time"),
    "updatedAt": Field("updated_at", "time"),
    "resource.resourceType": Field("resource_type"),
    "resource.instanceDetails.instanceId": Field("instance_id"),
    "resource.accessKeyDetails.accessKeyId": Field("access_key_id"),
    "resource.s3BucketDetails.name": Field("bucket_name"),
    "service.archived": Field("archived", "bool"),
    "service.count": Field("count", "int"),
    "service.eventFirstSeen": Field("first_seen", "time"),
    "service.eventLastSeen": Field("last_seen", "time"),
    "service.userFeedback": Field("feedback"),
    "service.additionalInfo.threatListName": Field("threat_list_name"),
    "service.evidence.threatIntelligenceDetails.threatListName": Field("threat_list_name"),
    **_ip_paths("service.action.awsApiCallAction", "service.action.networkConnectionAction",
                "service.action.portProbeAction.portProbeDetails", "service.action.kubernetesApiCallAction"),
}

SORT_FIELDS: dict[str, str] = {
    "accountId": "account__aws_account_id", "id": "finding_id", "region": "region", "type": "type",
    "severity": "severity", "createdAt": "created_at", "updatedAt": "updated_at", "title": "title",
    "resource.resourceType": "resource_type", "service.count": "count", "service.eventFirstSeen": "first_seen",
    "service.eventLastSeen": "last_seen", "service.archived": "archived",
}

_OPERATORS = {
    # member name -> (lookup, takes a list)
    "Eq": ("exact", True), "Equals": ("exact", True),
    "Neq": ("not", True), "NotEquals": ("not", True),
    "Gt": ("gt", False), "GreaterThan": ("gt", False),
    "Gte": ("gte", False), "GreaterThanOrEqual": ("gte", False),
    "Lt": ("lt", False), "LessThan": ("lt", False),
    "Lte": ("lte", False), "LessThanOrEqual": ("lte", False),
    "Matches": ("matches", True), "NotMatches": ("notmatches", True),
}


def _convert(field: Field, value: Any, attribute: str) -> Any:
    try:
        if field.kind == "time":
            return dt.datetime.fromtimestamp(int(value) / 1000, dt.UTC)
        if field.kind == "int":
            return int(float(value)) if isinstance(value, str) and "." in value else int(value)
        if field.kind == "float":
            return float(value)
        if field.kind == "bool":
            text = str(value).lower()
            if text not in ("true", "false"):
                raise ValueError(text)
            return text == "true"
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise bad_request(f"The request is rejected because the value {value!r} is not valid for {attribute}.") from exc
    return str(value)


def _wildcard_regex(pattern: str) -> str:
    """GuardDuty's `*` and `?` wildcards as an anchored regular expression (everything else literal)."""
    return "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + "$"


def _condition_q(attribute: str, field: Field, condition: dict[str, Any], *, allow_matches: bool) -> Q:
    q = Q()
    for operator, raw in condition.items():
        lookup, is_list = _OPERATORS[operator]
        if lookup in ("matches", "notmatches"):
            if not allow_matches:
                raise bad_request(f"The request is rejected because {operator} is only allowed in filters.")
            if len(raw) > 5 or sum(v.count("*") + v.count("?") for v in raw) > 5:
                raise bad_request("The request is rejected because Matches/NotMatches allow at most 5 values and "
                                  "5 wildcard characters.")
            any_match = Q()
            for value in raw:
                any_match |= Q(**{f"{field.path}__regex": _wildcard_regex(str(value))})
            q &= any_match if lookup == "matches" else ~any_match
            continue
        values: Iterable[Any] = raw if is_list else [raw]
        if is_list and len(raw) > MAX_VALUES:
            raise bad_request(f"The request is rejected because {attribute} has more than {MAX_VALUES} values.")
        if lookup in ("exact", "not"):
            path = field.equals_path or field.path
            kind_field = Field(path, "int") if field.equals_path else field
            converted = [_convert(kind_field, v, attribute) for v in values]
            match = Q(**{f"{path}__in": converted})
            q &= match if lookup == "exact" else ~match
        else:
            q &= Q(**{f"{field.path}__{lookup}": _convert(field, next(iter(values)), attribute)})
    return q


def criteria_q(criteria: dict[str, Any] | None, *, allow_matches: bool = False) -> Q:
    """FindingCriteria (member names, as parsed from the model) -> Q over findings."""
    criterion = (criteria or {}).get("Criterion") or {}
    if len(criterion) > MAX_ATTRIBUTES:
        raise bad_request(f"The request is rejected because FindingCriteria has more than {MAX_ATTRIBUTES} attributes.")
    q = Q()
    for attribute, condition in criterion.items():
        field = FIELDS.get(attribute)
        if field is None:
            raise bad_request(f"The request is rejected because the attribute {attribute} is not supported by Vigil's "
                              f"finding criteria. Supported: {', '.join(sorted(FIELDS))}.")
        q &= _condition_q(attribute, field, condition, allow_matches=allow_matches)
    return q


def sort_order(sort: dict[str, Any] | None, *, default: str = "-updated_at") -> list[str]:
    """ORDER BY for SortCriteria, with the row id as a tie-breaker so pages are stable (and an index
    on (account, column) also serves the tie: SQLite keeps the rowid in it, PostgreSQL sorts incrementally)."""
    if not sort or not sort.get("AttributeName"):
        column = default
    else:
        attribute = sort["AttributeName"]
        if attribute not in SORT_FIELDS:
            raise bad_request(f"The request is rejected because findings cannot be sorted by {attribute}. "
                              f"Supported: {', '.join(sorted(SORT_FIELDS))}.")
        column = ("-" if sort.get("OrderBy", "ASC") == "DESC" else "") + SORT_FIELDS[attribute]
    # Always ascending: an index on (account, column DESC) keeps equal keys in rowid order.
    return [column, "id"]


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
