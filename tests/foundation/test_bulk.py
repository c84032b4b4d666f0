"""Rows bulk-inserted through `insert_rows` are stored exactly as the model's own types store them;
`one_of` answers as an IN list does."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, insert, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from tactful.bulk import _utc_text, insert_rows, one_of, upsert_rows
from tactful.collect.models import Event, IngestCounter, MessageId
from tactful.db import Database
from tests.backends import migrated_database

TABLE = Event.__table__
assert isinstance(TABLE, Table)


def row(**changes: Any) -> dict[str, Any]:
    at = datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC)
    return {
        "id": uuid.uuid4(),
        "subject_id": uuid.uuid4(),
        "message_id": f"m-{uuid.uuid4()}",
        "type": "track",
        "event": "Order Completed",
        "group_id": None,
        "timestamp": at,
        "original_timestamp": None,
        "received_at": at.astimezone(timezone(timedelta(hours=-5))),
        "properties": {"revenue": 12.5, "products": [{"sku": "é-1", "n": 2**70}], "x": None},
        "traits": {},
        "context": {"locale": "fr-FR"},
        "consent": None,
        "gpc": True,
        "write_key_id": None,
        "request_id": "r-1",
    } | changes


def stored(db: Database, ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    with db.session() as session:
        found = session.execute(select(TABLE).where(TABLE.c.id.in_(ids)).order_by(TABLE.c.message_id))
        return [dict(r) for r in found.mappings()]


JSON_COLUMNS = ("properties", "traits", "context", "consent")


def raw(db: Database, message_id: str) -> dict[str, Any]:
    """The row as the database holds it, without any type's reading; JSON text parsed (its spacing
    is the serializer's choice)."""
    columns = [c.name for c in TABLE.columns if c.name not in ("id", "message_id")]
    with db.session() as session:
        found = session.execute(
            text(f"SELECT {', '.join(columns)} FROM events WHERE message_id = :m"),  # noqa: S608 - model names
            {"m": message_id},
        ).one()
    held = dict(zip(columns, found, strict=True))
    for name in JSON_COLUMNS:
        if isinstance(held[name], str):
            held[name] = json.loads(held[name])
    return held


def test_rows_handed_to_the_driver_are_stored_as_the_model_stores_them(backend: str, tmp_path: Path) -> None:
    with migrated_database(backend, tmp_path) as db:
        by_model, by_driver = row(), row(received_at=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC))
        by_driver |= {"subject_id": by_model["subject_id"], "timestamp": by_model["timestamp"]}
        by_model["received_at"] = by_driver["received_at"]
        with db.session() as session:
            session.execute(insert(TABLE), [by_model])
            insert_rows(session, TABLE, [by_driver])
            insert_rows(session, TABLE, [])
        assert raw(db, by_model["message_id"]) == raw(db, by_driver["message_id"])


def test_a_missing_column_takes_its_default(backend: str, tmp_path: Path) -> None:
    table = MessageId.__table__
    assert isinstance(table, Table)
    at = datetime(2026, 3, 4, tzinfo=UTC)
    with migrated_database(backend, tmp_path) as db:
        with db.session() as session:
            insert_rows(
                session,
                table,
                [{"digest": "d-1", "fingerprint": None, "subject_id": None, "first_seen_at": at}],
            )
        with db.session() as session:
            [held] = session.scalars(select(MessageId)).all()
            assert (held.digest, held.erased, held.first_seen_at) == ("d-1", False, at)


def test_naive_datetimes_are_refused_like_the_model(backend: str, tmp_path: Path) -> None:
    with (
        migrated_database(backend, tmp_path) as db,
        db.session() as session,
        pytest.raises((ValueError, StatementError), match="naive datetimes"),
    ):
        insert_rows(session, TABLE, [row(timestamp=datetime(2026, 1, 1))])


# -- one_of ---------------------------------------------------------------------------------------

_DIGESTS = st.lists(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
    max_size=30,
    unique=True,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stored_ids=_DIGESTS, asked=_DIGESTS)
def test_one_of_matches_exactly_the_listed_values(
    session: Session, stored_ids: list[str], asked: list[str]
) -> None:
    # Quotes, brackets, backslashes and any other character travel inside the one JSON or array
    # parameter; the answer is the expanding IN's.
    table = cast(Table, MessageId.__table__)
    prefix = uuid.uuid4().hex[:8]
    rows = [{"digest": f"{prefix}{d}", "first_seen_at": datetime.now(UTC)} for d in stored_ids]
    if rows:
        session.execute(insert(table), rows)
    wanted = [f"{prefix}{d}" for d in asked]
    found = set(session.scalars(select(table.c.digest).where(one_of(table.c.digest, "ds")), {"ds": wanted}))
    expected = set(session.scalars(select(table.c.digest).where(table.c.digest.in_(wanted))))
    assert found == expected == {f"{prefix}{d}" for d in set(stored_ids) & set(asked)}


def test_one_of_takes_uuids_and_lists_past_the_driver_parameter_limit(session: Session) -> None:
    table = cast(Table, MessageId.__table__)
    subjects = [uuid.uuid4() for _ in range(3)]
    session.execute(
        insert(table),
        [
            {"digest": f"u{i}-{s.hex}", "subject_id": s, "first_seen_at": datetime.now(UTC)}
            for i, s in enumerate(subjects)
        ],
    )
    others = [uuid.uuid4() for _ in range(40_000)]  # SQLite binds at most 32,766 parameters
    query = select(table.c.subject_id).where(one_of(table.c.subject_id, "ids"))
    assert set(session.scalars(query, {"ids": [*others, subjects[1]]})) == {subjects[1]}
    assert list(session.scalars(query, {"ids": []})) == []


def test_upsert_rows_replaces_and_adds_on_conflict(session: Session) -> None:
    counters = cast(Table, IngestCounter.__table__)
    name = f"probe-{uuid.uuid4().hex[:8]}"
    upsert_rows(
        session, counters, [{"name": name, "shard": 0, "value": 2}], keys=("name", "shard"), add=("value",)
    )
    upsert_rows(
        session,
        counters,
        [{"name": name, "shard": 0, "value": 3}, {"name": name, "shard": 1, "value": 5}],
        keys=("name", "shard"),
        add=("value",),
    )
    found = dict(
        session.execute(select(counters.c.shard, counters.c.value).where(counters.c.name == name)).all()
    )
    assert found == {0: 5, 1: 5}
    upsert_rows(
        session,
        counters,
        [{"name": name, "shard": 1, "value": 9}],
        keys=("name", "shard"),
        replace=("value",),
    )
    assert session.scalar(select(counters.c.value).where(counters.c.name == name, counters.c.shard == 1)) == 9


def test_one_of_is_served_by_the_index_on_sqlite(tmp_path: Path) -> None:
    # Rendered as a bare condition (not `(… IN …) = 1`), alone or with others: the planner searches
    # the key's index instead of scanning a table that grows with every event.
    with migrated_database("sqlite", tmp_path) as db:
        table = cast(Table, MessageId.__table__)
        alone = select(table.c.digest).where(one_of(table.c.digest, "ds"))
        combined = select(table.c.digest).where(one_of(table.c.digest, "ds"), table.c.erased.is_(False))
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            for statement in (alone, combined):
                sql = str(statement.compile(dialect=db.engine.dialect))
                plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", ("[]",))]
                assert any(step.startswith("SEARCH message_ids USING") for step in plan), plan


@given(
    st.lists(
        st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7, minutes=-30))])), max_size=6
    )
)
def test_datetime_text_is_each_value_in_utc_whatever_came_before(values: list[datetime]) -> None:
    # Each value twice in a row, then the list again: the one-entry cache never answers for another.
    for value in [twice for each in values for twice in (each, each)] + values:
        expected = value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        assert _utc_text(value) == expected
    with pytest.raises(ValueError, match="naive"):
        _utc_text(datetime(2026, 1, 1))  # the refusal under test: a naive datetime
