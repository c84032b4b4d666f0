"""Bulk-write views of tables: the same table, with cheaper parameter binding on SQLite.

    model table ──write_view(session, table)──▶ PostgreSQL: the table itself
                                           └──▶ SQLite: a twin whose JSON columns bind as orjson text
                                                and whose UTC datetimes bind in one step

A view is only for Core inserts and upserts of plain dicts; reads go through the model, whose own
types read what the view wrote (the tests compare the stored text column by column). Binding is a
large share of a bulk insert's time on SQLite: `json.dumps` for every JSON value, two conversions
for every datetime.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, MetaData, Table, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from tactful.collect import jsontext
from tactful.db import UTCDateTime

_VIEWS: dict[tuple[str, int], Table] = {}


def _json_text(value: object) -> str:
    return jsontext.dumps(value)  # None is JSON null, as SQLAlchemy's JSON type (none_as_null=False)


def _utc_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored: pass an aware UTC datetime")
    # SQLite's DATETIME storage format: always with microseconds.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


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


def write_view(session: Session, table: Table) -> Table:
    """The table to bulk-insert `table`'s rows through in this session."""
    if session.get_bind().dialect.name != "sqlite":
        return table
    key = (table.name, id(table))
    view = _VIEWS.get(key)
    if view is None:
        view = _VIEWS[key] = _twin(table)
    return view
