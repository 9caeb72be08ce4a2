"""Bulk statements that the write paths build themselves (many rows in one VALUES list)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from django.db import connection


@lru_cache(maxsize=64)
def numbered(sql: str) -> str:
    """`sql`'s %s placeholders as PostgreSQL's $1, $2, … (the statement has no other percent sign)."""
    parts = sql.split("%s")
    if any("%" in part for part in parts):
        raise ValueError("only %s placeholders, and no other percent sign, can be numbered")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)) + parts[-1]


def execute_bulk(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Execute one generated statement (only %s placeholders, no literal percent sign) and return
    its rows (empty without RETURNING), in the current transaction.

    psycopg splits every statement into its placeholders with a regular expression and builds a
    tuple per placeholder, caching the result only for statements under 4 KB: a VALUES list of
    thousands of parameters paid ~10 ms of CPU for that on each execution. On PostgreSQL the
    statement is numbered here instead (cached per statement text) and run by psycopg's RawCursor,
    which sends it as it is."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    from psycopg import RawCursor

    connection.ensure_connection()
    with connection.wrap_database_errors, RawCursor(connection.connection) as cursor:
        cursor.execute(numbered(sql), params)
        return cursor.fetchall() if cursor.description else []


def upsert(model: Any, rows: list[Any], *, conflict: list[str], update: str = "", where: str = "",
           params: list[Any] | None = None, returning: str = "") -> list[tuple[Any, ...]]:
    """INSERT rows … ON CONFLICT (conflict) DO UPDATE SET update [WHERE where] [RETURNING returning]
    (DO NOTHING without `update`), one statement on PostgreSQL and SQLite alike. bulk_create can
    neither add to a column nor update conditionally. `update`, `where` and `returning` name the
    table and columns as {table} and {field name}."""
    meta, quote = model._meta, connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(row, True), connection) for row in rows for f in fields]
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(rows))
    columns = ", ".join(quote(f.column) for f in fields)
    return insert_on_conflict(model, f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {placeholders}", values,  # noqa: S608
                              conflict=conflict, update=update, where=where, params=params, returning=returning)


def insert_on_conflict(model: Any, insert: str, values: list[Any], *, conflict: list[str], update: str, where: str,
                       params: list[Any] | None, returning: str) -> list[tuple[Any, ...]]:
    """Run `insert` (… VALUES or … SELECT) with its ON CONFLICT clause; see upsert for the rest.
    Identifiers come from the model and the caller's literals; every value is a parameter."""
    meta, quote = model._meta, connection.ops.quote_name
    names = {"table": quote(meta.db_table), **{f.name: quote(f.column) for f in meta.concrete_fields}}
    targets = ", ".join(quote(meta.get_field(n).column) for n in conflict)
    sql = f"{insert} ON CONFLICT ({targets}) "
    sql += f"DO UPDATE SET {update.format(**names)}" if update else "DO NOTHING"
    if where:
        sql += f" WHERE {where.format(**names)}"
    if returning:
        sql += f" RETURNING {returning.format(**names)}"
    return execute_bulk(sql, values + (params or []))


def upsert_columns(model: Any, *, same: Any, per_row: dict[str, list[Any]], conflict: list[str], update: str = "",
                   where: str = "", params: list[Any] | None = None, returning: str = "") -> list[tuple[Any, ...]]:
    """upsert of rows that share every value of `same` (a model instance) but the columns in
    `per_row` (field name -> one value per row), in that order; `update` "" does nothing on conflict.

    On PostgreSQL the shared values go once and each per-row column as one array (INSERT … SELECT
    FROM unnest): a VALUES list of a 250-object batch's ledger rows is 4,000 placeholders, which
    psycopg scans with a regular expression and Django prepares one field at a time (a fifth of a
    small object's CPU). Elsewhere, rows are built from `same` for upsert."""
    n = len(next(iter(per_row.values())))
    if connection.vendor != "postgresql":
        rows = []
        for i in range(n):
            row = copy.copy(same)
            for name, values in per_row.items():
                setattr(row, name, values[i])
            rows.append(row)
        return upsert(model, rows, conflict=conflict, update=update, where=where, params=params, returning=returning)
    meta, quote = model._meta, connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    varying = [meta.get_field(name) for name in per_row]
    select, values = [], []
    for f in fields:
        if f.name in per_row:
            select.append(f"u.{quote(f.column)}")
        else:  # typed: a bare parameter in a SELECT list would be text
            select.append(f"CAST(%s AS {f.cast_db_type(connection)})")
            values.append(f.get_db_prep_save(f.pre_save(same, True), connection))
    arrays = ", ".join(f"CAST(%s AS {f.db_type(connection).split('(')[0]}[])" for f in varying)
    values += [[f.get_db_prep_save(v, connection) for v in per_row[f.name]] for f in varying]
    insert = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
              f"SELECT {', '.join(select)} FROM unnest({arrays}) WITH ORDINALITY "
              f"AS u({', '.join(quote(f.column) for f in varying)}, ordinality) ORDER BY u.ordinality")
    return insert_on_conflict(model, insert, values, conflict=conflict, update=update, where=where, params=params,
                              returning=returning)
