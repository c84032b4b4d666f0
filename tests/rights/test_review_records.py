"""What an answered review keeps doing and for how long: an overturn binds the person, whose profile
merges do not shake it off, in one indexed query; answered reviews go after their own retention,
open ones never, and a dry run counts what the run then deletes."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tactful.catalog.loader import load_catalog
from tactful.config import PrivacySettings, Settings
from tactful.crypto import Keystore
from tactful.main import default_catalog_path
from tactful.profiles import service as profiles_service
from tactful.rights import review_records
from tactful.rights.models import DecisionReview
from tactful.rights.retention import run_retention
from tactful.rights.reviews import Outcome, ReviewStatus

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ASKED = frozenset({"price", "rate", "loan"})


def _review(
    session: Session,
    subject: uuid.UUID,
    experience: str,
    outcome: Outcome | None,
    *,
    answered: datetime | None = NOW - DAY,
    filed: datetime = NOW - 30 * DAY,
) -> DecisionReview:
    """A review of a decision of `experience` about `subject`: open when `outcome` is None."""
    status = ReviewStatus.ANSWERED if outcome else ReviewStatus.OPEN
    row = DecisionReview(
        id=uuid.uuid4(), public_id="rv_" + secrets.token_urlsafe(12),
        decision_id="dc_" + secrets.token_urlsafe(16), kind="review", status=status.value,
        subject_id=subject, placement="price_box", experience=experience, experience_version=1,
        variation="member", level="1:all", decided_at=filed - DAY, explanation={}, statement_enc=None,
        statement_removed=[], filed_by="server_key", filed_key_id=uuid.uuid4(), filed_at=filed,
        due_at=filed + 30 * DAY, outcome=outcome.value if outcome else None, reason_enc=None,
        replacement=None, answered_key_id=uuid.uuid4() if outcome else None,
        answered_at=answered if outcome else None,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row


def _subject(
    session: Session,
    keystore: Keystore,
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    previous_id: str | None = None,
    at: datetime = NOW,
) -> uuid.UUID:
    return profiles_service.resolve(
        session, keystore=keystore, anonymous_id=anonymous_id, user_id=user_id, previous_id=previous_id, at=at
    ).subject_id


def _unique(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex}"


def test_an_overturn_binds_the_person_whichever_way_their_profiles_merge(
    session: Session, keystore: Keystore
) -> None:
    older, user, anon = _unique("user"), _unique("user"), _unique("anon")
    first = _subject(session, keystore, user_id=older, at=NOW - 9 * DAY)  # the older account survives
    known = _subject(session, keystore, user_id=user, at=NOW - 5 * DAY)
    visitor = _subject(session, keystore, anonymous_id=anon, at=NOW - 2 * DAY)
    _review(session, visitor, "price", Outcome.OVERTURNED)  # decided while browsing anonymously
    _review(session, known, "rate", Outcome.OVERTURNED)
    _review(session, known, "loan", Outcome.UPHELD)  # upheld: the decision stands
    _review(session, known, "card", Outcome.OVERTURNED)  # overturned, but not asked for
    _review(session, first, "loan", None)  # open: nothing decided yet
    stranger = _subject(session, keystore, user_id=_unique("user"))
    _review(session, stranger, "loan", Outcome.OVERTURNED)  # someone else's

    def bound(subject: uuid.UUID) -> frozenset[str]:
        return review_records.overturned(session, subject_id=subject, experiences=ASKED)

    assert (bound(known), bound(visitor), bound(first)) == ({"rate"}, {"price"}, frozenset())
    # The visitor logs in: their profile merges into the user's, and the overturn comes along.
    assert _subject(session, keystore, user_id=user, anonymous_id=anon) == known
    assert bound(known) == {"price", "rate"}
    # The user's profile merges into the older account: both overturns bind the survivor.
    assert _subject(session, keystore, user_id=older, previous_id=user) == first
    assert profiles_service.find_subject(session, keystore=keystore, user_id=user) == first
    assert profiles_service.find_subject(session, keystore=keystore, anonymous_id=anon) == first
    assert bound(first) == {"price", "rate"}
    assert bound(stranger) == {"loan"}
    assert (
        review_records.overturned(session, subject_id=first, experiences=frozenset({"loan"})) == frozenset()
    )


@contextmanager
def _statements(session: Session) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []
    connection = session.connection()

    def record(conn: Connection, cursor: object, statement: str, parameters: Any, *args: object) -> None:
        seen.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(connection, "before_cursor_execute", record)


def test_the_read_is_one_query_by_the_subject_and_merge_indexes(session: Session, keystore: Keystore) -> None:
    subject = _subject(session, keystore, user_id=_unique("user"))
    _review(session, subject, "price", Outcome.OVERTURNED)
    with _statements(session) as seen:
        assert review_records.overturned(session, subject_id=subject, experiences=ASKED) == {"price"}
    [(statement, parameters)] = seen
    if session.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL's plan depends on its statistics; the indexes are the same
    plan = session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
    steps = " | ".join(str(row[-1]) for row in plan)
    assert "ix_decision_reviews_subject_id" in steps, steps
    assert "ix_subjects_merged_into" in steps, steps
    assert "SCAN decision_reviews" not in steps, steps


# -- retention ------------------------------------------------------------------------------------

CATALOG = load_catalog(default_catalog_path())


def test_answered_reviews_go_after_their_retention_and_open_ones_never(
    session: Session, keystore: Keystore
) -> None:
    days = 60
    settings = Settings(privacy=PrivacySettings(review_record_days=days))
    subject = _subject(session, keystore, user_id=_unique("user"))
    old, recent = NOW - (days + 1) * DAY, NOW - (days - 1) * DAY
    gone = [
        _review(session, subject, "price", Outcome.OVERTURNED, answered=old).id,
        _review(session, subject, "rate", Outcome.UPHELD, answered=old).id,
    ]
    kept = [
        _review(session, subject, "loan", Outcome.OVERTURNED, answered=recent).id,
        _review(session, subject, "card", None, filed=NOW - 900 * DAY).id,  # open, however old
    ]
    asked = ASKED | {"card"}
    assert review_records.overturned(session, subject_id=subject, experiences=asked) == {"price", "loan"}

    def sweep(*, dry_run: bool) -> int:
        report = run_retention(
            session, catalog=CATALOG, settings=settings, at=NOW, keystore=keystore, dry_run=dry_run
        )
        [row] = [r for r in report.rows if r.store == "decision reviews"]
        assert row.category == "answered reviews"
        return row.count

    would = sweep(dry_run=True)
    assert would >= len(gone)  # (other rows of the shared database go by the same rule)
    session.expire_all()
    assert all(session.get(DecisionReview, row) is not None for row in gone), "a dry run changes nothing"
    assert sweep(dry_run=False) == would
    session.expire_all()
    assert [session.get(DecisionReview, row) for row in gone] == [None, None]
    assert all(session.get(DecisionReview, row) is not None for row in kept)
    # The overturn whose record went binds no more; the one still kept does.
    assert review_records.overturned(session, subject_id=subject, experiences=asked) == {"loan"}
    assert sweep(dry_run=False) == 0


def test_the_review_record_setting_has_a_floor_and_a_two_year_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().privacy.review_record_days == 730
    monkeypatch.setenv("TACTFUL_PRIVACY__REVIEW_RECORD_DAYS", "400")
    assert Settings().privacy.review_record_days == 400
    with pytest.raises(ValidationError):
        PrivacySettings(review_record_days=29)  # the person must have time to read the answer
