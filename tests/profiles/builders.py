"""Small builders for profile tests: a catalog view with the atoms profiles read, and messages."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import event
from sqlalchemy.orm import Session

from tactful.profiles import computed

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Atom:
    name: str
    category: str
    identifier: bool = False
    retention: timedelta = timedelta(days=365)


@dataclass(frozen=True)
class Catalog:
    trait_atoms: Mapping[str, Atom] = field(default_factory=dict)
    atoms: Mapping[str, Atom] = field(default_factory=dict)


_TRAITS = (
    Atom("traits.first_name", "user.name", identifier=True),
    Atom("traits.email", "user.contact.email", identifier=True),
    Atom("traits.phone", "user.contact.phone", identifier=True),
    Atom("traits.age_range", "user.demographic.age_range"),
    Atom("traits.loyalty_tier", "user.behavior.purchase", retention=timedelta(days=30)),
)
_COMPUTED = (
    Atom(computed.LAST_SEEN, "user.behavior.browsing"),
    Atom(computed.EVENT_COUNTS, "user.behavior.browsing"),
    Atom(computed.FAVORITE_CATEGORY, "user.derived.inference"),
    Atom(computed.LIFETIME_VALUE, "user.behavior.purchase"),
)


def catalog(*, without: tuple[str, ...] = ()) -> Catalog:
    traits = {a.name.removeprefix("traits."): a for a in _TRAITS if a.name not in without}
    every = {a.name: a for a in (*_TRAITS, *_COMPUTED) if a.name not in without}
    return Catalog(trait_atoms=traits, atoms=every)


def unique(label: str) -> str:
    """Identifiers unique per test: the keystore (and its blind index) is shared by the run."""
    return f"{label}-{uuid.uuid4().hex[:12]}"


def track(event: str, at: datetime = T0, **properties: object) -> dict[str, object]:
    return {"type": "track", "event": event, "timestamp": at.isoformat(), "properties": properties}


def page(at: datetime = T0) -> dict[str, object]:
    return {"type": "page", "timestamp": at.isoformat(), "properties": {"path": "/"}}


@contextmanager
def statements(session: Session) -> Iterator[list[str]]:
    """The verbs (SELECT, INSERT, ...) of the SQL statements run on `session` inside the block."""
    seen: list[str] = []
    connection = session.connection()

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement.split()[0].upper())

    event.listen(connection, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(connection, "before_cursor_execute", count)
