"""How long an answered review is kept: answered reviews go after their own retention, open ones
never, and a dry run counts what the run then deletes."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session

from tactful.catalog.loader import load_catalog
from tactful.config import PrivacySettings, Settings
from tactful.crypto import Keystore
from tactful.main import default_catalog_path
from tactful.profiles import service as profiles_service
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
    assert sweep(dry_run=False) == 0


def test_the_review_record_setting_has_a_floor_and_a_two_year_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().privacy.review_record_days == 730
    monkeypatch.setenv("TACTFUL_PRIVACY__REVIEW_RECORD_DAYS", "400")
    assert Settings().privacy.review_record_days == 400
    with pytest.raises(ValidationError):
        PrivacySettings(review_record_days=29)  # the person must have time to read the answer
