"""Set-based database work for collection: dedup lookups and reservations, counters, subject moves,
and what a consent withdrawal does to stored events (`forget_withdrawn_purposes`).

Each helper is one or a few statements for a whole batch, never one per event. Rows that many
transactions touch (dedup keys, counters) are written in sorted key order, so that concurrent
transactions on PostgreSQL wait for each other instead of deadlocking.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import cast as typed

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Table,
    Text,
    case,
    cast,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tactful.bulk import insert_rows, one_of, upsert_rows
from tactful.catalog import drift
from tactful.catalog.filtering import DECISION_ID
from tactful.catalog.model import Catalog
from tactful.collect.models import DroppedField, Event, IngestCounter, MessageId, Quarantine
from tactful.collect.outcomes import OUTCOME_PURPOSE
from tactful.consent.gatekeeper import RecordsPurged, WithdrawalHook
from tactful.db import Base, truncate_log_after_commit
from tactful.types import Purpose

CHUNK = 500
COUNTER_SHARDS = 8
MAX_FIELD_NAME = 255
MAX_DROPPED_NAMES = 100
OTHER_FIELDS = drift.OTHER_FIELDS
"""Where the counts of names past the first MAX_DROPPED_NAMES of a request go: field names are chosen
by senders, and one request must not be able to add thousands of counter rows."""
UNNAMED_FIELD = drift.UNNAMED_FIELD
"""Where a dropped field is counted when its name does not look like a field name. Senders choose
names too: a property named after an e-mail address or a phone number would otherwise sit in this
aggregate table, which belongs to no subject and so escapes erasure."""

_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(?:\[\])*")
_DIGIT_RUN = re.compile(r"[0-9]{6}")


MAX_COUNTER_NAME = 64  # `ingest_counters.name`


def counter_name(prefix: str, path: str) -> str:
    """`prefix + path` as an ingestion counter's name: a path too long keeps its end (the field)."""
    name = prefix + path
    if len(name) <= MAX_COUNTER_NAME:
        return name
    return prefix + "…" + path[-(MAX_COUNTER_NAME - len(prefix) - 1) :]


def field_name(path: str) -> str:
    """The name a dropped field is counted under: its own when plausible, else UNNAMED_FIELD."""
    if (
        len(path) > MAX_FIELD_NAME
        or _DIGIT_RUN.search(path)
        or not all(_SEGMENT.fullmatch(segment) for segment in path.split("."))
    ):
        return UNNAMED_FIELD
    return path


@dataclass(frozen=True)
class SeenMessage:
    fingerprint: str | None
    erased: bool


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def table_of(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _insert(session: Session, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"collection supports SQLite and PostgreSQL, not {dialect}")


_SEEN = select(MessageId.digest, MessageId.fingerprint, MessageId.erased).where(
    one_of(MessageId.__table__.c.digest, "digests")
)
"""Built once: a statement per call costs more to build and cache-key than the query takes."""


def seen_messages(session: Session, digests: Iterable[str]) -> dict[str, SeenMessage]:
    """The dedup entries among `digests`, in one query per chunk."""
    wanted = sorted(set(digests))
    found: dict[str, SeenMessage] = {}
    for chunk in _chunks(wanted):
        rows = session.connection().execute(_SEEN, {"digests": list(chunk)})
        found.update((row.digest, SeenMessage(row.fingerprint, bool(row.erased))) for row in rows)
    return found


def reserve_messages(session: Session, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert dedup entries; return the digests inserted here (the others lost a race to another
    transaction that inserted the same digest first)."""
    if not rows:
        return set()
    table = table_of(MessageId)
    ordered = sorted(rows, key=lambda row: str(row["digest"]))
    if session.get_bind().dialect.name == "sqlite":
        # Every SQLite transaction begins IMMEDIATE (`tactful.db`): this one has held the write lock
        # since before `seen_messages` read these digests, so none can have been reserved since and
        # a plain bulk insert wins them all. (Were that broken, the primary key would refuse the
        # insert and the whole request would roll back: an error, never a lost or doubled event.)
        insert_rows(session, table, ordered)
        return {str(row["digest"]) for row in ordered}
    # One statement shape for every batch size (executemany), so SQLAlchemy compiles it once.
    statement = (
        _insert(session, table).on_conflict_do_nothing(index_elements=["digest"]).returning(table.c.digest)
    )
    return set(session.execute(statement, ordered).scalars())


def add_counts(session: Session, counts: Mapping[str, int], dropped: Mapping[str, int]) -> None:
    """Add to the running totals, in this transaction, on one random shard per row."""
    shard = random.randrange(COUNTER_SHARDS)
    _upsert(session, table_of(IngestCounter), "name", "value", counts, shard)
    _upsert(session, table_of(DroppedField), "field", "count", _bounded(dropped), shard)


def _bounded(counted: Mapping[str, int]) -> dict[str, int]:
    dropped: dict[str, int] = {}
    for path, n in counted.items():
        name = field_name(path)
        dropped[name] = dropped.get(name, 0) + n
    if len(dropped) <= MAX_DROPPED_NAMES:
        return dropped
    ranked = sorted(dropped.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[:MAX_DROPPED_NAMES])
    kept[OTHER_FIELDS] = kept.get(OTHER_FIELDS, 0) + sum(n for _, n in ranked[MAX_DROPPED_NAMES:])
    return kept


def _upsert(
    session: Session, table: Table, key: str, column: str, counts: Mapping[str, int], shard: int
) -> None:
    totals: dict[str, int] = {}
    for name, n in counts.items():
        if n:
            totals[name[:MAX_FIELD_NAME]] = totals.get(name[:MAX_FIELD_NAME], 0) + n
    rows = [{key: name, "shard": shard, column: n} for name, n in sorted(totals.items())]
    upsert_rows(session, table, rows, keys=(key, "shard"), add=(column,))


def totals(session: Session) -> tuple[dict[str, int], dict[str, int]]:
    counters = session.execute(
        select(IngestCounter.name, func.sum(IngestCounter.value)).group_by(IngestCounter.name)
    )
    dropped = session.execute(
        select(DroppedField.field, func.sum(DroppedField.count)).group_by(DroppedField.field)
    )
    return {name: int(n) for name, n in counters}, {name: int(n) for name, n in dropped}


def move_subject(session: Session, *, source: uuid.UUID, target: uuid.UUID) -> int:
    """Point collection's rows of a merged subject at the survivor. A sealed quarantine payload stays
    with the subject whose key sealed it (see `quarantine`)."""
    moved = 0
    for model, kept in (
        (Event, None),
        (Quarantine, Quarantine.raw_enc.is_not(None)),
        (MessageId, None),
    ):
        statement = update(model).where(model.subject_id == source)
        if kept is not None:
            statement = statement.where(~kept)
        result = session.execute(
            statement.values(subject_id=target), execution_options={"synchronize_session": False}
        )
        moved += int(getattr(result, "rowcount", 0) or 0)
    return moved


# -- withdrawal ------------------------------------------------------------------------------------


def _purpose_lists(dialect: str) -> tuple[ColumnElement[bool], Any, ColumnElement[Any]]:
    """For one backend: whether a row's `purposes` is a list, its elements as a table correlated
    to the row (column `value`), and the aggregate that writes the kept elements back as a list
    in their stored order (lists are stored sorted)."""
    if dialect == "postgresql":
        is_list = func.jsonb_typeof(Event.purposes) == "array"
        empty: ColumnElement[Any] = func.jsonb_build_array()
        elements = func.jsonb_array_elements_text
    elif dialect == "sqlite":
        is_list = func.json_type(Event.purposes) == "array"
        empty = func.json_array()
        elements = func.json_each
    else:
        raise NotImplementedError(f"collection supports SQLite and PostgreSQL, not {dialect}")
    # A value that is no list (JSON null, SQL NULL) reads as empty inside the function call too:
    # neither backend promises to test `is_list` in the WHERE clause before the subquery.
    listed = case((is_list, Event.purposes), else_=empty)
    if dialect == "postgresql":
        # A scalar function's columns are named only by an explicit list: `AS items(value, position)`.
        items = elements(listed).table_valued("value", with_ordinality="position").render_derived("items")
        return is_list, items, func.jsonb_agg(postgresql.aggregate_order_by(items.c.value, items.c.position))
    # SQLite 3.40 has no ORDER BY inside aggregates; json_each walks an array in order and a filter
    # keeps that order.
    items = elements(listed).table_valued("value")
    return is_list, items, func.json_group_array(items.c.value)


def withdrawal_hook(catalog: Catalog) -> WithdrawalHook:
    """Consent's withdrawal hook for events collected under `catalog` (wired by `main`)."""

    def forget(
        session: Session, *, subject_id: uuid.UUID, purposes: frozenset[Purpose], at: datetime
    ) -> RecordsPurged:
        return forget_withdrawn_purposes(
            session, subject_id=subject_id, purposes=purposes, at=at, catalog=catalog
        )

    return forget


def forget_withdrawn_purposes(
    session: Session,
    *,
    subject_id: uuid.UUID,
    purposes: frozenset[Purpose],
    at: datetime,
    catalog: Catalog | None = None,
) -> RecordsPurged:
    """Keep the subject's stored events only for `purposes` (consent's withdrawal hook, wired by
    `main` through `withdrawal_hook`): an event stored for none of them is deleted, the others lose
    the purposes not listed, and, with the `catalog`, the fields none of whose declared purposes the
    event is still stored for (`collect.fields`: context fields, and user traits).

    Two statements for the subject, whatever its number of events, and one per group of fields
    declared for the same purposes; the database reads and rewrites each row. Without `analytics`,
    the events also lose the decision ids that made them outcomes. Events stored before
    consent was applied (`purposes` null) say nothing about purposes and are left alone. Every event
    counts, whatever its time: one stored after `at` by a transaction that had not yet seen the
    refusal carries the refused purpose too. A deletion asks for the write-ahead log to be emptied
    after the commit (`db.truncate_log_after_commit`), so that no copy of the rows stays in it."""
    is_list, items, aggregate = _purpose_lists(session.get_bind().dialect.name)
    keep = sorted(p.value for p in purposes)
    own = Event.subject_id == subject_id
    kept_any = exists(select(items.c.value).where(items.c.value.in_(keep)))
    lost_some = exists(select(items.c.value).where(items.c.value.not_in(keep)))
    removed = session.execute(
        delete(Event).where(own, is_list, ~kept_any), execution_options={"synchronize_session": False}
    )
    remaining = select(aggregate).where(items.c.value.in_(keep)).scalar_subquery()
    narrowed = session.execute(
        update(Event).where(own, is_list, lost_some).values(purposes=remaining),
        execution_options={"synchronize_session": False},
    )
    rewritten = (
        0 if catalog is None else _forget_fields(session, catalog, own=own, is_list=is_list, items=items)
    )
    if OUTCOME_PURPOSE not in purposes:
        rewritten += _forget_decision_ids(session, own=own)
    result = RecordsPurged(
        removed=typed(CursorResult[Any], removed).rowcount or 0,
        narrowed=typed(CursorResult[Any], narrowed).rowcount or 0,
    )
    if result.removed or result.narrowed or rewritten:
        truncate_log_after_commit(session)
    return result


def _forget_decision_ids(session: Session, *, own: ColumnElement[bool]) -> int:
    """Take `properties.decision_id` out of the subject's events: it is kept for measuring outcomes
    alone (`collect.outcomes`), which the withdrawal ended."""
    column = Event.__table__.c.properties
    without, present = _removal(session.get_bind().dialect.name, column, [(DECISION_ID,)])
    result = session.execute(
        update(Event).where(own, present).values(properties=without),
        execution_options={"synchronize_session": False},
    )
    return typed(CursorResult[Any], result).rowcount or 0


def field_groups(catalog: Catalog) -> dict[frozenset[Purpose], tuple[list[str], list[str]]]:
    """The stored context paths and user trait names, grouped by their atoms' declared purposes."""
    groups: dict[frozenset[Purpose], tuple[list[str], list[str]]] = {}
    for path, atom in catalog.stored_context:
        groups.setdefault(atom.purposes, ([], []))[0].append(".".join(path))
    for name, atom in catalog.trait_atoms.items():
        groups.setdefault(atom.purposes, ([], []))[1].append(name)
    return groups


def _forget_fields(
    session: Session, catalog: Catalog, *, own: ColumnElement[bool], is_list: ColumnElement[bool], items: Any
) -> int:
    """Remove from the subject's events each group of fields the event is no longer stored for any
    of the purposes of (the lists were narrowed just before); the number of rows rewritten."""
    rewritten = 0
    dialect = session.get_bind().dialect.name
    identify = Event.type == "identify"
    for declared, (context_paths, trait_names) in sorted(
        field_groups(catalog).items(), key=lambda g: sorted(g[0])
    ):
        in_context = [tuple(p.split(".")) for p in context_paths] + [("traits", t) for t in trait_names]
        in_traits = [(name,) for name in trait_names]
        context, context_present = _removal(dialect, Event.__table__.c.context, in_context)
        values: dict[str, Any] = {"context": context}
        present = context_present
        if in_traits:
            traits, traits_present = _removal(dialect, Event.__table__.c.traits, in_traits)
            values["traits"] = case((identify, traits), else_=Event.__table__.c.traits)
            present = or_(present, identify & traits_present)
        holds = exists(select(items.c.value).where(items.c.value.in_(sorted(p.value for p in declared))))
        result = session.execute(
            update(Event).where(own, is_list, ~holds, present).values(**values),
            execution_options={"synchronize_session": False},
        )
        rewritten += typed(CursorResult[Any], result).rowcount or 0
    if rewritten:
        _drop_emptied(session, dialect, own, catalog)
    return rewritten


def _drop_emptied(session: Session, dialect: str, own: ColumnElement[bool], catalog: Catalog) -> None:
    """Remove the objects of the subject's events' context that removals left empty (`page: {}`),
    the deepest first; one statement per object that fields are declared in."""
    column = Event.__table__.c.context
    parents = {path[:end] for path, _ in catalog.stored_context for end in range(1, len(path))}
    if catalog.trait_atoms:
        parents.add(("traits",))
    for parent in sorted(parents, key=lambda p: (-len(p), p)):
        value, _ = _removal(dialect, column, [parent])
        if dialect == "postgresql":
            array = literal(list(parent), postgresql.ARRAY(Text))
            empty = column.op("#>", return_type=column.type)(array) == cast(literal("{}"), postgresql.JSONB)
        else:
            empty = func.json_extract(column, "$" + "".join(f'."{part}"' for part in parent)) == "{}"
        session.execute(
            update(Event).where(own, empty).values(context=value),
            execution_options={"synchronize_session": False},
        )


def _removal(dialect: str, column: Any, paths: Sequence[tuple[str, ...]]) -> tuple[Any, ColumnElement[bool]]:
    """`column` without `paths`, and whether any of them is there."""
    if dialect == "postgresql":
        value = column
        found = []
        for path in paths:
            array = literal(list(path), postgresql.ARRAY(Text))
            value = value.op("#-", return_type=column.type)(array)
            found.append(column.op("#>", return_type=column.type)(array).is_not(None))
        return value, or_(*found)
    quoted = ["$" + "".join(f'."{part}"' for part in path) for path in paths]
    return func.json_remove(column, *quoted), or_(*(func.json_type(column, q).is_not(None) for q in quoted))
