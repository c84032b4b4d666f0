"""Bulk-write views of tables: the same table, with cheaper parameter binding on SQLite.

    model table ──write_view(session, table)──▶ PostgreSQL: the table itself
                                           └──▶ SQLite: a twin whose JSON columns bind as orjson text
                                                and whose UTC datetimes bind in one step
    model table ──insert_rows(session, table, rows)──▶ PostgreSQL: a Core insert of the rows
                                                  └──▶ SQLite: the same values, converted column by
                                                       column and handed to the driver's executemany

A view is only for Core inserts and upserts of plain dicts; reads go through the model, whose own
types read what the view wrote (the tests compare the stored text column by column). Binding is a
large share of a bulk insert's time on SQLite: `json.dumps` for every JSON value, two conversions
for every datetime.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, MetaData, Table, Text, Uuid, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import ScalarElementColumnDefault as ScalarElementArgument
from sqlalchemy.types import TypeDecorator

from tactful.collect import jsontext
from tactful.db import UTCDateTime

_VIEWS: dict[tuple[str, int], Table] = {}


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


class _JSONText(TypeDecorator[Any]):
    impl = Text
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        return _json_text


class _UTCText(TypeDecorator[datetime]):
    impl = Text
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        return _utc_text


def _twin(table: Table) -> Table:
    def kind(column: Column[Any]) -> Any:
        if isinstance(column.type, JSON):
            return _JSONText()
        if isinstance(column.type, UTCDateTime):
            return _UTCText()
        return column.type

    columns = [Column(c.name, kind(c), primary_key=c.primary_key) for c in table.columns]
    return Table(table.name, MetaData(), *columns)


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


def write_view(session: Session, table: Table) -> Table:
    """The table to bulk-insert `table`'s rows through in this session."""
    if session.get_bind().dialect.name != "sqlite":
        return table
    key = (table.name, id(table))
    view = _VIEWS.get(key)
    if view is None:
        view = _VIEWS[key] = _twin(table)
    return view
