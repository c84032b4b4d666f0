"""Filing privacy requests: due dates by the subject's regimes, each type's rule of verification, no
subject created for an unknown identity, no pending link crossed, repetition flagged and never
refused, nothing named kept in clear, the listing's order, extensions and rejections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.crypto import Keystore
from tactful.errors import Conflict, InvalidInput
from tactful.profiles import links
from tactful.profiles import service as profiles_service
from tactful.rights import answering
from tactful.rights import requests as requests_service
from tactful.rights.due import ExtensionCode, LegalRegime, RepeatCode, RequestType, due_dates
from tactful.rights.models import PrivacyRequest
from tactful.rights.schemas import RejectionReason, RequestStatus, VerifiedBy
from tests.profiles.builders import unique
from tests.rights.requesting import CALENDAR, file, held, policy, subjects

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
GDPR, CCPA = LegalRegime.GDPR, LegalRegime.CCPA


# -- due dates by regime ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("establishment", "country", "regimes"),
    [
        (None, "FR", (GDPR,)),  # the catalog's controller is in the EEA: GDPR for everyone
        (None, "US", (CCPA, GDPR)),  # a Californian of an EEA controller: both, the earliest wins
        ("US", "US", (CCPA,)),
        ("US", None, (GDPR,)),  # nowhere known: the default, GDPR
        ("US", "FR", (GDPR,)),
    ],
)
@pytest.mark.parametrize("kind", list(RequestType))
def test_due_dates_follow_the_subjects_regimes(
    session: Session,
    keystore: Keystore,
    establishment: str | None,
    country: str | None,
    regimes: tuple[LegalRegime, ...],
    kind: RequestType,
) -> None:
    traits = {"country": country} if country else {}
    user, _ = held(session, keystore, at=NOW, **traits)
    changes = {"first_name": "Ada"} if kind is RequestType.RECTIFICATION else None
    record = file(
        session, keystore, policy(establishment=establishment), kind, at=NOW, user_id=user, changes=changes
    )
    expected = due_dates(kind, regimes=regimes, received_at=NOW, calendar=CALENDAR)
    assert record.regimes == regimes
    assert record.due_at == expected.due_at
    assert record.confirm_by == expected.confirm_by
    assert record.effective_due_at == expected.due_at


def test_an_unknown_person_is_dated_by_the_establishment_and_the_default(
    session: Session, keystore: Keystore
) -> None:
    record = file(
        session, keystore, policy(establishment="US"), RequestType.ACCESS, at=NOW, user_id=unique("nobody")
    )
    assert record.regimes == (GDPR,)
    assert record.due_at == due_dates(RequestType.ACCESS, regimes=[GDPR], received_at=NOW).due_at


# -- verification ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(requests_service.NEEDS_PROOF))
def test_requests_to_know_delete_or_correct_always_need_verification(
    session: Session, keystore: Keystore, kind: RequestType
) -> None:
    user, _ = held(session, keystore, at=NOW)
    with pytest.raises(InvalidInput) as refused:
        file(session, keystore, policy(), kind, at=NOW, user_id=user, verified_by=None)
    assert refused.value.code == "verification_required"
    # A duplicate of a verified request is refused the same way: verification is never carried over.
    changes = {"first_name": "Ada"} if kind is RequestType.RECTIFICATION else None
    file(session, keystore, policy(), kind, at=NOW, user_id=user, changes=changes)
    with pytest.raises(InvalidInput):
        file(session, keystore, policy(), kind, at=NOW, user_id=user, verified_by=None, changes=changes)


@pytest.mark.parametrize("kind", sorted(requests_service.AT_ONCE))
def test_narrowing_requests_need_no_proof(session: Session, keystore: Keystore, kind: RequestType) -> None:
    user, subject = held(session, keystore, at=NOW)
    record = file(session, keystore, policy(), kind, at=NOW, user_id=user, verified_by=None)
    assert record.status is RequestStatus.RECEIVED
    assert record.verified_by is None
    assert record.subject_id == subject
    verified = file(session, keystore, policy(), kind, at=NOW, user_id=user, verified_by=VerifiedBy.TOKEN)
    assert verified.status is RequestStatus.VERIFIED


def test_changes_belong_to_a_rectification_and_name_declared_traits(
    session: Session, keystore: Keystore
) -> None:
    user, _ = held(session, keystore, at=NOW)
    cases = [
        (RequestType.ACCESS, {"first_name": "Ada"}, "changes_not_allowed"),
        (RequestType.RECTIFICATION, None, "changes_required"),
        (RequestType.RECTIFICATION, {"shoe_size": 42}, "unknown_trait"),
    ]
    for kind, changes, code in cases:
        with pytest.raises(InvalidInput) as refused:
            file(session, keystore, policy(), kind, at=NOW, user_id=user, changes=changes)
        assert refused.value.code == code


# -- who is found ----------------------------------------------------------------------------------


@pytest.mark.parametrize("named", ["user_id", "anonymous_id", "email"])
def test_an_identity_not_held_creates_no_subject(session: Session, keystore: Keystore, named: str) -> None:
    before = subjects(session)
    value = f"{unique('nobody')}@example.com"
    record = file(session, keystore, policy(), RequestType.ERASURE, at=NOW, **{named: value})
    assert record.subject_id is None
    assert subjects(session) == before
    assert profiles_service.find_subject(session, keystore=keystore, **{named: value}) is None


def test_an_anonymous_id_never_crosses_a_pending_link(session: Session, keystore: Keystore) -> None:
    _user, user_subject = held(session, keystore, at=NOW)
    anonymous = unique("anon")
    browser = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=anonymous, user_id=None, at=NOW
    )
    links.record(session, keystore=keystore, links=[(user_subject, anonymous)], at=NOW)  # claimed, unproven
    session.flush()
    for kind in (RequestType.ACCESS, RequestType.OBJECTION):
        record = file(session, keystore, policy(), kind, at=NOW, anonymous_id=anonymous)
        assert record.subject_id == browser.subject_id != user_subject


def test_an_email_is_found_through_the_blind_index(session: Session, keystore: Keystore) -> None:
    email = f"{unique('ada')}@example.com"
    _, subject = held(session, keystore, at=NOW, email=email)
    record = file(session, keystore, policy(), RequestType.ACCESS, at=NOW, email=email.upper())
    assert record.subject_id == subject


def test_nothing_named_is_kept_in_clear(session: Session, keystore: Keystore) -> None:
    email = f"{unique('ada')}@example.com"
    record = file(session, keystore, policy(), RequestType.ACCESS, at=NOW, email=email)
    row = session.get(PrivacyRequest, record.id)
    assert row is not None
    stored = repr([getattr(row, c.key) for c in PrivacyRequest.__table__.columns])
    assert email not in stored
    assert email.split("@")[0] not in stored
    assert row.identity_digest == requests_service.identity_digest(keystore, record.named_by, email.upper())


# -- repetition ------------------------------------------------------------------------------------


def test_a_third_request_to_know_in_a_year_is_flagged_under_ccpa_and_still_filed(
    session: Session, keystore: Keystore
) -> None:
    user, _ = held(session, keystore, at=NOW, country="US")
    context = policy(establishment="US")
    first = file(session, keystore, context, RequestType.ACCESS, at=NOW - timedelta(days=200), user_id=user)
    second = file(
        session, keystore, context, RequestType.PORTABILITY, at=NOW - timedelta(days=100), user_id=user
    )
    third = file(session, keystore, context, RequestType.ACCESS, at=NOW, user_id=user)
    assert first.flags == second.flags == ()
    assert [(f.code, f.count) for f in third.flags] == [(RepeatCode.CCPA_ACCESS_LIMIT, 3)]
    assert third.status is RequestStatus.VERIFIED  # flagged for the operator, never refused


def test_a_repeat_while_open_is_flagged_under_gdpr(session: Session, keystore: Keystore) -> None:
    user, _ = held(session, keystore, at=NOW)
    file(session, keystore, policy(), RequestType.ERASURE, at=NOW, user_id=user)
    again = file(session, keystore, policy(), RequestType.ERASURE, at=NOW + timedelta(hours=1), user_id=user)
    assert [f.code for f in again.flags] == [RepeatCode.GDPR_REPEAT_WHILE_OPEN]
    other = file(session, keystore, policy(), RequestType.ACCESS, at=NOW + timedelta(hours=2), user_id=user)
    assert other.flags == ()


# -- the listing, extensions, rejections -----------------------------------------------------------


def test_the_listing_puts_overdue_requests_first_and_pages_through_all(
    session: Session, keystore: Keystore
) -> None:
    session.execute(PrivacyRequest.__table__.delete())  # this test's rows alone (rolled back after)
    filed = {
        days: file(
            session,
            keystore,
            policy(),
            RequestType.ACCESS,
            at=NOW - timedelta(days=days),
            user_id=unique("u"),
        )
        for days in (0, 10, 40, 70, 20, 90)
    }
    closed = answering.reject(
        session, keystore=keystore, public_id=filed[90].public_id, reason=RejectionReason.UNFOUNDED, at=NOW,
        actor="tests",
    )  # fmt: skip
    listed = requests_service.list_requests(session, at=NOW, limit=100)
    order = [record.public_id for _, record in listed]
    overdue = [filed[70].public_id, filed[40].public_id]  # oldest due first; the closed one is not overdue
    assert order[:2] == overdue
    assert set(order[2:]) == {filed[d].public_id for d in (0, 10, 20)} | {closed.public_id}
    assert [r.public_id for _, r in requests_service.list_requests(session, at=NOW, overdue=True)] == overdue
    paged: list[str] = []
    after = None
    while True:
        page = requests_service.list_requests(session, at=NOW, after=after, limit=2)
        if not page:
            break
        paged += [record.public_id for _, record in page]
        after = page[-1][0]
    assert paged == order
    rejected = requests_service.list_requests(session, at=NOW, status=RequestStatus.REJECTED)
    assert [r.public_id for _, r in rejected] == [closed.public_id]


def test_an_extension_needs_reasons_in_the_first_month_and_comes_once(
    session: Session, keystore: Keystore
) -> None:
    user, _ = held(session, keystore, at=NOW)
    record = file(session, keystore, policy(), RequestType.ACCESS, at=NOW, user_id=user)

    def extend(reasons: str, days: int) -> ExtensionCode:
        code, _ = answering.extend(
            session, keystore=keystore, calendar=CALENDAR, public_id=record.public_id, reasons=reasons,
            at=NOW + timedelta(days=days), actor="tests",
        )  # fmt: skip
        return code

    assert extend("   ", 3) is ExtensionCode.REASONS_MISSING
    assert extend("many requests at once", 40) is ExtensionCode.NOTICE_LATE
    assert extend("many requests at once", 3) is ExtensionCode.ACCEPTED
    assert extend("again", 4) is ExtensionCode.NOT_EXTENDABLE
    extended = requests_service.get_request(session, public_id=record.public_id)
    assert extended is not None
    assert (
        extended.effective_due_at
        == due_dates(RequestType.ACCESS, regimes=[GDPR], received_at=NOW).extended_due_at
    )


@pytest.mark.parametrize(("country", "parts"), [("FR", {"gdpr"}), ("US", {"gdpr", "ccpa"})])
def test_a_rejection_says_how_to_complain_or_on_what_basis(
    session: Session, keystore: Keystore, country: str, parts: set[str]
) -> None:
    user, _ = held(session, keystore, at=NOW, country=country)
    record = file(session, keystore, policy(), RequestType.ERASURE, at=NOW, user_id=user)
    rejected = answering.reject(
        session, keystore=keystore, public_id=record.public_id, reason=RejectionReason.EXCESSIVE, at=NOW,
        actor="tests",
    )  # fmt: skip
    assert rejected.status is RequestStatus.REJECTED
    assert rejected.receipt is not None
    reasons = rejected.receipt["rejected"]
    assert reasons["reason"] == "excessive"
    assert set(reasons) - {"reason"} == parts
    if "gdpr" in parts:
        assert "supervisory authority" in reasons["gdpr"]["right_to_complain"]
    if "ccpa" in parts:
        assert reasons["ccpa"]["basis"]
    with pytest.raises(Conflict):
        answering.reject(
            session, keystore=keystore, public_id=record.public_id, reason=RejectionReason.OTHER, at=NOW,
            actor="tests",
        )  # fmt: skip


def test_rows_are_filed_with_the_key_that_filed_them(session: Session, keystore: Keystore) -> None:
    user, _ = held(session, keystore, at=NOW)
    record = file(session, keystore, policy(), RequestType.ACCESS, at=NOW, user_id=user)
    row = session.scalars(select(PrivacyRequest).where(PrivacyRequest.public_id == record.public_id)).one()
    assert row.actor_key_id is not None
    assert row.verified_by == "operator"
    assert record.public_id.startswith("prq_")
    assert len(record.public_id) >= 24
