"""Bulk inserts of append-only rows, with cheaper parameter binding on SQLite.

    model table ──insert_rows(session, table, rows)──▶ PostgreSQL: a Core insert of the rows
                                                  └──▶ SQLite: the same values, converted column by
                                                       column and handed to the driver's executemany

Only for inserts of plain dicts; reads go through the model, whose own types read what was written
(the tests compare the stored text column by column). Binding is a large share of a bulk insert's
time on SQLite: `json.dumps` for every JSON value, two conversions for every datetime. Foundation, so
that every domain's append-only tables (events, the consent ledger, the audit log) share one path.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Table, Uuid, insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import ScalarElementColumnDefault as ScalarElementArgument

from tactful import jsontext
from tactful.db import UTCDateTime


def _json_text(value: object) -> str:
    return jsontext.dumps(value)  # None is JSON null, as SQLAlchemy's JSON type (none_as_null=False)


def _utc_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: pass an aware UTC datetime")
        value = value.astimezone(UTC)
    # SQLite's DATETIME storage format: always with microseconds.
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _driver_value(column: Column[Any]) -> Callable[[Any], object] | None:
    """How a Python value of `column` is handed to the SQLite driver, as the model's type does it
    (None: as it is)."""
    if isinstance(column.type, JSON):
        return _json_text
    if isinstance(column.type, UTCDateTime):
        return _utc_text
    if isinstance(column.type, Uuid):
        return _uuid_hex
    return None


def _uuid_hex(value: uuid.UUID | None) -> str | None:
    return None if value is None else value.hex


class _DriverInsert:
    """One INSERT statement of every column of a table, and each column's conversion."""

    def __init__(self, table: Table) -> None:
        columns = list(table.columns)
        for column in columns:
            default = column.default
            if default is not None and not (isinstance(default, ScalarElementArgument) and default.is_scalar):
                raise TypeError(f"{table.name}.{column.name}: only scalar defaults are written here")
        self.columns = tuple(
            (
                c.name,
                c.default.arg if isinstance(c.default, ScalarElementArgument) else None,
                _driver_value(c),
            )
            for c in columns
        )
        marks = ", ".join("?" for _ in columns)
        names = ", ".join(c.name for c in columns)
        self.sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608 - model names

    def values(self, row: Mapping[str, Any]) -> tuple[object, ...]:
        # A missing column without a default is SQL NULL, as in the model's insert (a JSON column
        # given None holds JSON null instead, so the two are told apart here too).
        return tuple(
            [
                row.get(name, default)
                if convert is None or (default is None and name not in row)
                else convert(row.get(name, default))
                for name, default, convert in self.columns
            ]
        )


_INSERTS: dict[tuple[str, int], _DriverInsert] = {}


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, object]]) -> None:
    """Insert `rows` (plain dicts; a missing column takes its scalar default) into `table`.

    On SQLite the statement goes to the driver's executemany with each value converted as the
    model's type would: per-row parameter processing is most of a bulk insert's time there.
    """
    if not rows:
        return
    if session.get_bind().dialect.name != "sqlite":
        session.execute(insert(table), list(rows))
        return
    key = (table.name, id(table))
    statement = _INSERTS.get(key)
    if statement is None:
        statement = _INSERTS[key] = _DriverInsert(table)
    session.connection().exec_driver_sql(statement.sql, [statement.values(row) for row in rows])
