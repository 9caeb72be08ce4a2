"""Model fields shared by the apps."""

from __future__ import annotations

from typing import Any

from django.db import models


class RowJSONField(models.JSONField):
    """A JSONField whose bulk inserts send each value as its own parameter.

    On PostgreSQL, Django 5.2's bulk_create passes every column as one array (INSERT … SELECT FROM
    UNNEST(%s::jsonb[], …)). psycopg writes a jsonb[] in text form, escaping each of the documents'
    quotes with a regular expression in Python: saving a batch's anomaly baselines cost more than
    scoring them. A field with its own placeholder keeps bulk_create on VALUES rows, where the
    documents go as they are. For the tables the pipeline bulk-writes (baselines, rule state,
    inventory, deliveries).
    """

    def get_placeholder(self, value: Any, compiler: Any, connection: Any) -> str:
        return "%s"
