"""The per-dialect upsert that batch writes of profile rows share, built once per table: building
its `excluded` columns costs more than executing it for a hundred rows."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


@functools.cache
def _upsert(dialect: str, table: Table, updated: tuple[str, ...]) -> Any:
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        statement = sqlite.insert(table)
    else:
        raise NotImplementedError(f"profiles supports SQLite and PostgreSQL, not {dialect}")
    return statement.on_conflict_do_update(
        index_elements=["subject_id", "atom"], set_={c: statement.excluded[c] for c in updated}
    )


def upsert(session: Session, table: Table, updated: tuple[str, ...]) -> Any:
    """INSERT … ON CONFLICT (subject_id, atom) DO UPDATE of the `updated` columns."""
    return _upsert(session.get_bind().dialect.name, table, updated)
