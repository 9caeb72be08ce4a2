"""Model fields shared by the apps."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from django.db import models
from django.db.models.fields.json import KeyTransform
from psycopg.types.json import Jsonb

_encode = msgspec.json.encode
_decode = msgspec.json.decode


def _dumps(value: Any) -> bytes:
    """msgspec's encoder (~5x the standard library's), json.dumps for integers past 64 bits. Like
    msgspec, it writes sets and tuples as arrays and dates as ISO-8601 strings, on every database."""
    try:
        return _encode(value)
    except OverflowError:
        return json.dumps(value).encode()


class RowJSONField(models.JSONField):
    """A JSONField whose bulk inserts send each value as its own parameter, encoded and decoded by
    msgspec.

    On PostgreSQL, Django 5.2's bulk_create passes every column as one array (INSERT … SELECT FROM
    UNNEST(%s::jsonb[], …)). psycopg writes a jsonb[] in text form, escaping each of the documents'
    quotes with a regular expression in Python: saving a batch's anomaly baselines cost more than
    scoring them. A field with its own placeholder keeps bulk_create on VALUES rows, where the
    documents go as they are. For the tables the pipeline bulk-writes and reads back per object
    (baselines, rule state, inventory, deliveries), where the standard library's json cost ~1.4 % of
    a 200k-row flow object's instructions.
    """

    def get_placeholder(self, value: Any, compiler: Any, connection: Any) -> str:
        return "%s"

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if not prepared:
            value = self.get_prep_value(value)
        if self.encoder is not None:
            return connection.ops.adapt_json_value(value, self.encoder)
        if connection.vendor == "postgresql":
            return Jsonb(value, dumps=_dumps)
        return _dumps(value).decode()

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if isinstance(value, str) and self.decoder is None and not isinstance(expression, KeyTransform):
            try:
                return _decode(value)
            except msgspec.DecodeError:
                pass  # Django's answer for text that is not JSON: the text itself
        return super().from_db_value(value, expression, connection)
