"""Bulk inserts of append-only rows, with cheaper parameter binding on SQLite; list membership as
one bound parameter.

    model table ──insert_rows(session, table, rows)──▶ PostgreSQL: a Core insert of the rows
                                                  └──▶ SQLite: the same values, converted column by
                                                       column and handed to the driver's executemany

Only for inserts of plain dicts; reads go through the model, whose own types read what was written
(the tests compare the stored text column by column). Binding is a large share of a bulk insert's
time on SQLite: `json.dumps` for every JSON value, two conversions for every datetime. Foundation, so
that every domain's append-only tables (events, the consent ledger, the audit log) share one path.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, ColumnElement, String, Table, Uuid, bindparam, insert
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.schema import ScalarElementColumnDefault as ScalarElementArgument
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator, TypeEngine

from tactful import jsontext
from tactful.db import UTCDateTime


def _json_text(value: object) -> str:
    return jsontext.dumps(value)  # None is JSON null, as SQLAlchemy's JSON type (none_as_null=False)


_last_utc: tuple[datetime, str] | None = None
"""The last datetime written and its text: a request stamps most of its rows with one `at`."""


def _utc_text(value: datetime | None) -> str | None:
    global _last_utc  # a one-entry cache; swapping the tuple is atomic
    if value is None:
        return None
    last = _last_utc
    if last is not None and last[0] is value:
        return last[1]
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: pass an aware UTC datetime")
        value = value.astimezone(UTC)
    # SQLite's DATETIME storage format, always with microseconds: the text less its "+00:00".
    text = value.isoformat(" ", "microseconds")[:-6]
    _last_utc = (value, text)
    return text


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


def _driver_insert(table: Table) -> _DriverInsert:
    key = (table.name, id(table))
    statement = _INSERTS.get(key)
    if statement is None:
        statement = _INSERTS[key] = _DriverInsert(table)
    return statement


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
    statement = _driver_insert(table)
    session.connection().exec_driver_sql(statement.sql, [statement.values(row) for row in rows])


def upsert_rows(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, object]],
    *,
    keys: tuple[str, ...],
    replace: tuple[str, ...] = (),
    add: tuple[str, ...] = (),
) -> None:
    """Insert `rows`; where one with the same `keys` exists, set its `replace` columns to the new
    values and add the new values to its `add` columns (counters). One statement for all rows,
    through the driver on SQLite as `insert_rows` does."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect != "sqlite":
        session.connection().execute(_upsert_statement(dialect, table, keys, replace, add), list(rows))
        return
    statement = _driver_insert(table)
    sql = _upsert_sql(statement.sql, table.name, keys, replace, add)
    session.connection().exec_driver_sql(sql, [statement.values(row) for row in rows])


@functools.cache
def _upsert_sql(
    insert_sql: str, name: str, keys: tuple[str, ...], replace: tuple[str, ...], add: tuple[str, ...]
) -> str:
    updates = [f"{c} = excluded.{c}" for c in replace] + [f"{c} = {name}.{c} + excluded.{c}" for c in add]
    return f"{insert_sql} ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(updates)}"


@functools.cache
def _upsert_statement(
    dialect: str, table: Table, keys: tuple[str, ...], replace: tuple[str, ...], add: tuple[str, ...]
) -> Any:
    # Built once per shape: building its `excluded` columns costs more than running it for a batch.
    if dialect != "postgresql":
        raise NotImplementedError(f"upserts run on SQLite and PostgreSQL, not {dialect}")
    statement = postgresql.insert(table)
    updates = {c: statement.excluded[c] for c in replace} | {
        c: table.c[c] + statement.excluded[c] for c in add
    }
    return statement.on_conflict_do_update(index_elements=list(keys), set_=updates)


# -- membership in a list bound as one parameter -------------------------------------------------


class _ListOf(TypeDecorator[list[Any]]):
    """A list bound as one value: JSON text on SQLite (read back by `json_each`), an array of the
    column's type on PostgreSQL. Uuids go to SQLite in their stored form (hex, as `Uuid` stores them)."""

    impl = String
    cache_ok = True

    def __init__(self, item: TypeEngine[Any]) -> None:
        super().__init__()
        self.item = item

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(self.item))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Sequence[Any] | None, dialect: Dialect) -> Any:
        items = list(value or ())
        if dialect.name != "sqlite":
            return items
        return jsontext.dumps([item.hex if isinstance(item, uuid.UUID) else item for item in items])


class OneOf(ColumnElement[bool]):
    """`column IN (<the list bound as parameter `name`>)`, one statement text whatever the length.

    An expanding IN renders a new statement for every list length (over a microsecond per item, on
    every execution); this stays one cached statement with one parameter.
    """

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a condition as it is, not `(… IN …) = 1` (which no index serves)
    _traverse_internals = [  # noqa: RUF012 - SQLAlchemy reads this class attribute
        ("column", InternalTraversal.dp_clauseelement),
        ("parameter", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], name: str) -> None:
        self.column = column
        self.parameter = bindparam(name, type_=_ListOf(column.type))


@compiles(OneOf, "sqlite")
def _one_of_sqlite(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, parameter = compiler.process(element.column, **kw), compiler.process(element.parameter, **kw)
    return f"{column} IN (SELECT value FROM json_each({parameter}))"  # noqa: S608 - compiled clauses


@compiles(OneOf)
def _one_of_array(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, parameter = compiler.process(element.column, **kw), compiler.process(element.parameter, **kw)
    return f"{column} = ANY({parameter})"


def one_of(column: ColumnElement[Any], name: str) -> OneOf:
    """A condition that `column` is in the list given as parameter `name` at execution."""
    return OneOf(column, name)
