"""GuardDuty FindingCriteria: the one criteria engine of the findings page, the API, gdapi and suppression.

`{"Criterion": {"<json path>": {"Equals": [...], "GreaterThan": n, ...}}}`: attributes are ANDed,
the values of one Equals are ORed. Each supported attribute maps to an indexed column of the
findings table. The same field table serves two back ends:

- `criteria_q` compiles to ORM filters (parameters, never SQL text) for listing and previews;
- `criteria_match` evaluates against one finding's column values, for suppression at upsert time
  (the finding does not exist in the table yet, so it cannot be queried).

Timestamps compare as epoch milliseconds, `severity` Equals matches whole levels (GuardDuty's
documented `["7","8"]` = High), `service.archived` true/false. Matches/NotMatches (saved filters
only) take `*` and `?` wildcards.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from console.errors import ServiceError

MAX_ATTRIBUTES = 50
MAX_VALUES = 50
MAX_MATCH_VALUES = 5
MAX_WILDCARDS = 5


class CriteriaError(ServiceError):
    """FindingCriteria or SortCriteria that cannot be compiled (400)."""

    code = "invalid_criteria"


@dataclass(frozen=True)
class Field:
    path: str                 # ORM lookup path (also the key in criteria_match's values)
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
    "resource.accessKeyDetails.principalId": Field("principal_id"),
    "resource.accessKeyDetails.userName": Field("user_name"),
    "resource.s3BucketDetails.name": Field("bucket_name"),
    "service.action.actionType": Field("action_type"),
    "service.action.awsApiCallAction.api": Field("api"),
    "service.action.dnsRequestAction.domain": Field("domain"),
    "service.archived": Field("archived", "bool"),
    "service.resourceRole": Field("resource_role"),
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
        raise CriteriaError(f"The value {value!r} is not valid for {attribute}.") from exc
    return str(value)


def wildcard_regex(pattern: str) -> str:
    """GuardDuty's `*` and `?` wildcards as an anchored regular expression (everything else literal)."""
    return "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + "$"


@dataclass(frozen=True)
class _Condition:
    attribute: str
    field: Field
    lookup: str
    values: tuple[Any, ...]


def _parse(criteria: Mapping[str, Any] | None, *, allow_matches: bool) -> list[_Condition]:
    """Validate FindingCriteria once and return typed conditions, shared by both back ends."""
    if criteria is not None and not isinstance(criteria, Mapping):
        raise CriteriaError("FindingCriteria must be an object with a Criterion map.")
    criterion = (criteria or {}).get("Criterion") or {}
    if not isinstance(criterion, Mapping):
        raise CriteriaError("FindingCriteria.Criterion must be a map of attribute to condition.")
    if len(criterion) > MAX_ATTRIBUTES:
        raise CriteriaError(f"FindingCriteria has more than {MAX_ATTRIBUTES} attributes.")
    conditions: list[_Condition] = []
    for attribute, condition in criterion.items():
        field = FIELDS.get(attribute)
        if field is None:
            raise CriteriaError(f"The attribute {attribute} is not supported by Vigil's finding criteria. "
                                f"Supported: {', '.join(sorted(FIELDS))}.")
        if not isinstance(condition, Mapping) or not condition:
            raise CriteriaError(f"The condition for {attribute} must be a non-empty object.")
        for operator, raw in condition.items():
            if operator not in _OPERATORS:
                raise CriteriaError(f"Unknown operator {operator} for {attribute}.")
            lookup, is_list = _OPERATORS[operator]
            if is_list:
                if isinstance(raw, (str, bytes)) or not isinstance(raw, Iterable):
                    raise CriteriaError(f"{operator} for {attribute} takes a list of values.")
                raw = list(raw)
                if not raw:
                    raise CriteriaError(f"{operator} for {attribute} needs at least one value.")
            if lookup in ("matches", "notmatches"):
                if not allow_matches:
                    raise CriteriaError(f"{operator} is only allowed in filters (saved filters and suppression rules).")
                if len(raw) > MAX_MATCH_VALUES or sum(str(v).count("*") + str(v).count("?") for v in raw) > MAX_WILDCARDS:
                    raise CriteriaError(f"Matches/NotMatches allow at most {MAX_MATCH_VALUES} values and "
                                        f"{MAX_WILDCARDS} wildcard characters ({attribute}).")
                conditions.append(_Condition(attribute, field, lookup, tuple(str(v) for v in raw)))
                continue
            if is_list and len(raw) > MAX_VALUES:
                raise CriteriaError(f"{attribute} has more than {MAX_VALUES} values.")
            values = raw if is_list else [raw]
            if lookup in ("exact", "not") and field.equals_path:
                equals_field = Field(field.equals_path, "int")
                converted = tuple(_convert(equals_field, v, attribute) for v in values)
                conditions.append(_Condition(attribute, equals_field, lookup, converted))
            else:
                converted = tuple(_convert(field, v, attribute) for v in values)
                conditions.append(_Condition(attribute, field, lookup, converted))
    return conditions


def validate(criteria: Mapping[str, Any] | None, *, allow_matches: bool = False) -> dict[str, Any]:
    """Raise CriteriaError unless the criteria compile; return them as a plain dict."""
    _parse(criteria, allow_matches=allow_matches)
    return {"Criterion": dict((criteria or {}).get("Criterion") or {})}


def criteria_q(criteria: Mapping[str, Any] | None, *, allow_matches: bool = False) -> Q:
    """FindingCriteria -> Q over findings (indexed columns, bound parameters)."""
    q = Q()
    for c in _parse(criteria, allow_matches=allow_matches):
        path = c.field.path
        if c.lookup in ("matches", "notmatches"):
            any_match = Q()
            for value in c.values:
                any_match |= Q(**{f"{path}__regex": wildcard_regex(value)})
            q &= any_match if c.lookup == "matches" else ~any_match
        elif c.lookup in ("exact", "not"):
            match = Q(**{f"{path}__in": list(c.values)})
            q &= match if c.lookup == "exact" else ~match
        else:
            q &= Q(**{f"{path}__{c.lookup}": c.values[0]})
    return q


_COMPARE = {
    "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b,
}


def criteria_match(criteria: Mapping[str, Any] | None, values: Mapping[str, Any], *,
                   allow_matches: bool = True) -> bool:
    """Does one finding, given as {ORM path: value} (see `finding_values`), satisfy the criteria?

    Same semantics as `criteria_q`; tests check both back ends agree finding by finding.
    """
    for c in _parse(criteria, allow_matches=allow_matches):
        value = values.get(c.field.path)
        if c.lookup in ("matches", "notmatches"):
            text = "" if value is None else str(value)
            hit = any(re.match(wildcard_regex(v), text, re.DOTALL) for v in c.values)
            if hit != (c.lookup == "matches"):
                return False
        elif c.lookup in ("exact", "not"):
            if (value in c.values) != (c.lookup == "exact"):
                return False
        elif value is None or not _COMPARE[c.lookup](value, c.values[0]):
            return False
    return True


def finding_values(finding: Any) -> dict[str, Any]:
    """The criteria paths of a stored Finding, for `criteria_match`."""
    out = {}
    for field in FIELDS.values():
        for path in filter(None, (field.path, field.equals_path)):
            if path == "account__aws_account_id":
                out[path] = finding.account.aws_account_id
            else:
                out[path] = getattr(finding, path)
    return out


def sort_order(sort: Mapping[str, Any] | None, *, default: str = "-updated_at") -> list[str]:
    """ORDER BY for SortCriteria, with the row id as a tie-breaker so pages are stable (and an index
    on (account, column) also serves the tie: SQLite keeps the rowid in it, PostgreSQL sorts incrementally)."""
    if not sort or not sort.get("AttributeName"):
        column = default
    else:
        attribute = sort["AttributeName"]
        if attribute not in SORT_FIELDS:
            raise CriteriaError(f"Findings cannot be sorted by {attribute}. "
                                f"Supported: {', '.join(sorted(SORT_FIELDS))}.")
        column = ("-" if sort.get("OrderBy", "ASC") == "DESC" else "") + SORT_FIELDS[attribute]
    # Always ascending: an index on (account, column DESC) keeps equal keys in rowid order.
    return [column, "id"]
