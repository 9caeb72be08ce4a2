"""GuardDuty's REST-JSON protocol, driven by botocore's bundled service model.

Routing (HTTP method + requestUri template -> operation), input parsing and validation (members
by location: uri, querystring, header, JSON body under each member's camelCase locationName;
required members, enums, lengths and ranges from the shapes) and output serialisation (member
names -> locationName, timestamps as epoch seconds) all read the same model botocore uses to
build requests and parse our answers, so the two cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import botocore.loaders

SERVICE = "guardduty"


class GuardDutyError(Exception):
    """An error answered in GuardDuty's shape: `{"message": ..., "__type": code}` + x-amzn-ErrorType."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def bad_request(message: str) -> GuardDutyError:
    return GuardDutyError("BadRequestException", message, 400)


def access_denied(message: str) -> GuardDutyError:
    return GuardDutyError("AccessDeniedException", message, 403)


def internal_error(message: str = "The request is rejected because an internal server error occurred.") -> GuardDutyError:
    return GuardDutyError("InternalServerErrorException", message, 500)


@functools.cache
def service_model() -> dict[str, Any]:
    return botocore.loaders.Loader().load_service_model(SERVICE, "service-2")


def shapes() -> dict[str, Any]:
    return service_model()["shapes"]


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    uri: str
    pattern: re.Pattern[str]
    input_shape: str | None
    output_shape: str | None
    status: int

    def render_path(self, params: dict[str, str]) -> str:
        """The path as botocore sends it: each label percent-encoded (all but unreserved)."""
        def encode(match: re.Match[str]) -> str:
            label = match[1]
            if label.endswith("+"):
                return quote(params[label[:-1]], safe="/~")
            return quote(params[label], safe="-_.~")
        return re.sub(r"{(.*?)}", encode, self.uri)


def _label_regex(label: str, input_shape: str | None) -> str:
    name = label.rstrip("+")
    greedy = label.endswith("+")
    if input_shape and not greedy:
        member = shapes()[input_shape]["members"].get(name, {})
        # ARNs hold slashes (detector/…/filter/…) and botocore encodes them as %2F, which the
        # WSGI server has already decoded: match them greedily.
        greedy = member.get("shape", "").endswith("Arn")
    return f"(?P<{name}>.+)" if greedy else f"(?P<{name}>[^/]+)"


@functools.cache
def operations() -> dict[str, Operation]:
    result: dict[str, Operation] = {}
    for name, op in service_model()["operations"].items():
        uri = op["http"]["requestUri"].split("?")[0]
        input_shape = op.get("input", {}).get("shape")
        regex = ""
        for piece in re.split(r"({[^}]+})", uri):
            if piece.startswith("{"):
                regex += _label_regex(piece[1:-1], input_shape)
            else:
                regex += re.escape(piece)
        result[name] = Operation(
            name=name, method=op["http"]["method"].upper(), uri=uri, pattern=re.compile(f"^{regex}$"),
            input_shape=input_shape, output_shape=op.get("output", {}).get("shape"),
            status=op["http"].get("responseCode", 200),
        )
    return result


@functools.cache
def _routes() -> list[Operation]:
    # Most literal characters first, so /detector/{id}/member/get wins over a shorter template.
    return sorted(operations().values(), key=lambda o: -len(re.sub(r"{.*?}", "", o.uri)))


def route(method: str, path: str) -> tuple[Operation, dict[str, str]]:
    path = path.rstrip("/") if path != "/" else path
    path_matched = False
    for op in _routes():
        match = op.pattern.match(path)
        if match:
            path_matched = True
            if op.method == method.upper():
                return op, match.groupdict()
    if path_matched:
        raise GuardDutyError("MethodNotAllowedException", f"{method} is not allowed on {path}.", 405)
    raise GuardDutyError("UnknownOperationException", "No GuardDuty operation has this path.", 404)


# --- input ----------------------------------------------------------------------------------


class _Invalid(Exception):
    pass


def _describe(path: str) -> str:
    return path or "the request"


def _parse_scalar_text(shape: dict[str, Any], text: str, path: str) -> Any:
    """A value from the URI, query string or a header (always text on the wire)."""
    kind = shape["type"]
    if kind in ("integer", "long"):
        try:
            return int(text)
        except ValueError as exc:
            raise _Invalid(f"{path} must be an integer.") from exc
    if kind == "double":
        try:
            return float(text)
        except ValueError as exc:
            raise _Invalid(f"{path} must be a number.") from exc
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise _Invalid(f"{path} must be true or false.")
        return text.lower() == "true"
    return text


def _parse_json(shape_name: str, value: Any, path: str) -> Any:
    shape = shapes()[shape_name]
    kind = shape["type"]
    if kind == "structure":
        if not isinstance(value, dict):
            raise _Invalid(f"{_describe(path)} must be an object.")
        result: dict[str, Any] = {}
        for member_name, member in shape["members"].items():
            wire = member.get("locationName", member_name)
            if wire in value and value[wire] is not None:
                result[member_name] = _parse_json(member["shape"], value[wire], f"{path}.{wire}" if path else wire)
        return result
    if kind == "list":
        if not isinstance(value, list):
            raise _Invalid(f"{path} must be a list.")
        return [_parse_json(shape["member"]["shape"], item, f"{path}[{i}]") for i, item in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            raise _Invalid(f"{path} must be an object.")
        return {
            _parse_json(shape["key"]["shape"], k, f"{path} key"): _parse_json(shape["value"]["shape"], v, f"{path}.{k}")
            for k, v in value.items()
        }
    if kind == "string":
        if not isinstance(value, str):
            raise _Invalid(f"{path} must be a string.")
        return value
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"{path} must be an integer.")
        return value
    if kind == "double":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid(f"{path} must be a number.")
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _Invalid(f"{path} must be true or false.")
        return value
    if kind == "timestamp":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(value, dt.UTC)
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError as exc:
                raise _Invalid(f"{path} must be a timestamp.") from exc
        raise _Invalid(f"{path} must be a timestamp.")
    return value


@functools.cache
def _compiled_pattern(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct: leave that check to the services
        return None


def _validate(shape_name: str, value: Any, path: str, problems: list[str]) -> None:
    shape = shapes()[shape_name]
    kind = shape["type"]
    label = _describe(path)
    if kind == "structure":
        for required in shape.get("required", []):
            if required not in value:
                wire = shape["members"][required].get("locationName", required)
                problems.append(f"{wire if not path else path + '.' + wire} is required.")
        for member_name, member_value in value.items():
            member = shape["members"][member_name]
            wire = member.get("locationName", member_name)
            _validate(member["shape"], member_value, f"{path}.{wire}" if path else wire, problems)
        return
    if kind in ("list", "map", "string"):
        size = len(value)
        noun = "characters" if kind == "string" else "items"
        if "min" in shape and size < shape["min"]:
            problems.append(f"{label} must have at least {shape['min']} {noun}.")
        if "max" in shape and size > shape["max"]:
            problems.append(f"{label} must have at most {shape['max']} {noun}.")
    if kind == "string":
        if "enum" in shape and value not in shape["enum"]:
            problems.append(f"{label} must be one of: {', '.join(shape['enum'])}.")
        pattern = _compiled_pattern(shape["pattern"]) if "pattern" in shape else None
        if pattern is not None and not pattern.search(value):
            problems.append(f"{label} does not match the pattern {shape['pattern']}.")
    elif kind in ("integer", "long", "double"):
        if "min" in shape and value < shape["min"]:
            problems.append(f"{label} must be at least {shape['min']}.")
        if "max" in shape and value > shape["max"]:
            problems.append(f"{label} must be at most {shape['max']}.")
    elif kind == "list":
        for i, item in enumerate(value):
            _validate(shape["member"]["shape"], item, f"{path}[{i}]", problems)
    elif kind == "map":
        for k, v in value.items():
            _validate(shape["key"]["shape"], k, f"{path} key", problems)
            _validate(shape["value"]["shape"], v, f"{path}.{k}", problems)


def parse_input(op: Operation, *, path_params: dict[str, str], query: dict[str, list[str]],
                headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The operation's input as {MemberName: value}, validated against the model."""
    if op.input_shape is None:
        return {}
    shape = shapes()[op.input_shape]
    params: dict[str, Any] = {}
    try:
        body_members = {n: m for n, m in shape["members"].items() if "location" not in m}
        if body_members and body.strip():
            try:
                document = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise _Invalid("The request body is not valid JSON.") from exc
            if not isinstance(document, dict):
                raise _Invalid("The request body must be a JSON object.")
            for name, member in body_members.items():
                wire = member.get("locationName", name)
                if document.get(wire) is not None:
                    params[name] = _parse_json(member["shape"], document[wire], wire)
        for name, member in shape["members"].items():
            location, wire = member.get("location"), member.get("locationName", name)
            member_shape = shapes()[member["shape"]]
            if location == "uri" and wire in path_params:
                params[name] = _parse_scalar_text(member_shape, path_params[wire], wire)
            elif location == "querystring" and wire in query:
                values = query[wire]
                if member_shape["type"] == "list":
                    item_shape = shapes()[member_shape["member"]["shape"]]
                    params[name] = [_parse_scalar_text(item_shape, v, wire) for v in values]
                else:
                    params[name] = _parse_scalar_text(member_shape, values[-1], wire)
            elif location == "header" and wire.lower() in headers:
                params[name] = _parse_scalar_text(member_shape, headers[wire.lower()], wire)
    except _Invalid as exc:
        raise bad_request(f"The request is rejected because an invalid or out-of-range value is specified "
                          f"as an input parameter: {exc}") from exc
    problems: list[str] = []
    _validate(op.input_shape, params, "", problems)
    if problems:
        raise bad_request("The request is rejected because an invalid or out-of-range value is specified as an "
                          "input parameter: " + " ".join(problems[:10]))
    return params


# --- output ---------------------------------------------------------------------------------


class OutputShapeError(Exception):
    """Our own answer does not fit the model: a bug, answered as InternalServerErrorException."""


def _serialize(shape_name: str, value: Any, path: str) -> Any:
    shape = shapes()[shape_name]
    kind = shape["type"]
    if kind == "structure":
        if not isinstance(value, dict):
            raise OutputShapeError(f"{path or shape_name}: expected a dict for {shape_name}")
        unknown = set(value) - set(shape["members"])
        if unknown:
            raise OutputShapeError(f"{path or shape_name}: unknown members {sorted(unknown)} for {shape_name}")
        out: dict[str, Any] = {}
        for name, member in shape["members"].items():
            if value.get(name) is None:
                if name in shape.get("required", []):
                    raise OutputShapeError(f"{path or shape_name}: required member {name} missing")
                continue
            out[member.get("locationName", name)] = _serialize(member["shape"], value[name], f"{path}.{name}")
        return out
    if kind == "list":
        return [_serialize(shape["member"]["shape"], item, f"{path}[]") for item in value]
    if kind == "map":
        return {str(k): _serialize(shape["value"]["shape"], v, f"{path}.{k}") for k, v in value.items()}
    if kind == "timestamp":
        if isinstance(value, dt.datetime):
            return value.timestamp()
        if isinstance(value, dt.date):
            return dt.datetime.combine(value, dt.time(), dt.UTC).timestamp()
        if isinstance(value, str):
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        return float(value)
    if kind in ("integer", "long"):
        return int(value)
    if kind == "double":
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            raise OutputShapeError(f"{path}: not a finite number")
        return number
    if kind == "boolean":
        return bool(value)
    if kind == "string":
        text = str(value)
        if "enum" in shape and text not in shape["enum"]:
            raise OutputShapeError(f"{path}: {text!r} is not one of {shape['enum']}")
        return text
    return value


def serialize_output(op: Operation, data: dict[str, Any] | None) -> bytes:
    """JSON body for the operation's output shape. Members with a location (headers) are not
    used by GuardDuty's outputs; an operation with no output shape answers an empty body."""
    if op.output_shape is None or op.status == 204:
        return b""
    if data is None:
        return b""
    return json.dumps(_serialize(op.output_shape, data, ""), separators=(",", ":")).encode()


def aws_timestamp(value: dt.datetime | None) -> str | None:
    """GuardDuty's string timestamps: ISO 8601 in UTC with milliseconds, e.g. 2019-10-04T03:29:05.958Z."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def from_wire(shape_name: str, document: dict[str, Any]) -> dict[str, Any]:
    """A camelCase document (e.g. findings.serialize's GetFindings JSON) as member names, checked
    against the model on the way; keys the model does not know are dropped, as botocore would."""
    try:
        return _parse_json(shape_name, document, "")
    except _Invalid as exc:
        raise OutputShapeError(f"{shape_name}: {exc}") from exc
