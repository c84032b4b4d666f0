"""Privacy requests: filed, dated, flagged and read; the operator extends or rejects them in
`answering`; their jobs run in `jobs`.

    filing (type, one identifier, how the person was verified)
        │ access, portability, erasure, rectification need proof (operator or token); the four
        │ narrowing types need none (a claim that restricts is always accepted, DESIGN §4)
        ▼
    profiles.find_subject ── no one ──▶ subject_id None: the job completes "nothing held"
        │ (an anonymous id leads to its own subject: a pending link is never crossed; nothing is
        │  created)
        ▼
    regimes from the subject's place (the gate's rule) ──▶ due.due_dates ──▶ due, confirm by
    earlier requests of the same person ──▶ due.repeat_flags ──▶ flags (never a refusal)
        ▼
    privacy_requests row (the identifier as a keyed hash only) + `rights.request_filed` audit entry

Every read of a request is audited with the key's id; no entry names an identifier.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, and_, case, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from tactful.audit import service as audit_service
from tactful.catalog.model import Catalog
from tactful.config import PrivacySettings
from tactful.consent.gatekeeper import PolicyContext, applicable_regimes, read_inputs
from tactful.crypto import Keystore
from tactful.errors import InvalidInput
from tactful.policy import Regime
from tactful.profiles import service as profiles_service
from tactful.profiles.traits import normalise_email
from tactful.rights.due import (
    BusinessCalendar,
    LegalRegime,
    PriorRequest,
    RepeatCode,
    RepeatFlag,
    RequestType,
    due_dates,
    repeat_flags,
)
from tactful.rights.models import PrivacyRequest
from tactful.rights.schemas import (
    OPEN_STATUSES,
    NamedBy,
    RequestRecord,
    RequestStatus,
    VerifiedBy,
)
from tactful.types import new_id

REQUESTS_KEY = "privacy-requests"
"""The system key that hashes what a request named: used for nothing else (DESIGN invariant 11)."""
FILED = "rights.request_filed"
READ = "rights.request_read"
LISTED = "rights.requests_listed"
CHANGES_CONTEXT = "privacy_request.changes"

NEEDS_PROOF = frozenset(
    {RequestType.ACCESS, RequestType.PORTABILITY, RequestType.ERASURE, RequestType.RECTIFICATION}
)
"""Erasure cannot be undone, access discloses: these always need the operator's or a token's word."""
AT_ONCE = frozenset(
    {
        RequestType.OPT_OUT_SALE_SHARE,
        RequestType.LIMIT_SENSITIVE,
        RequestType.OBJECTION,
        RequestType.RESTRICTION,
    }
)
"""They only narrow what is done: accepted from anyone, carried out while the filing waits."""

# -- helpers ---------------------------------------------------------------------------------------


def calendar_of(settings: PrivacySettings) -> BusinessCalendar:
    return BusinessCalendar(
        timezone=settings.timezone, country=settings.holiday_country, subdivision=settings.holiday_subdivision
    )


def legal_regimes(regimes: Iterable[Regime]) -> tuple[LegalRegime, ...]:
    """The regimes whose deadlines apply. A custom regime (not `gdpr` or `ccpa`) is held to GDPR's,
    the shorter for requests to know: a deployment that knows better names its regime `ccpa`."""
    known = {r.value for r in LegalRegime}
    found = {LegalRegime(r.name) if r.name in known else LegalRegime.GDPR for r in regimes}
    return tuple(sorted(found or {LegalRegime.GDPR}))


def identity_digest(keystore: Keystore, kind: NamedBy, value: str) -> str:
    """A keyed hash of what a request named, under its own system key; e-mail addresses as the blind
    index normalises them."""
    key, _ = keystore.system.read_or_create(REQUESTS_KEY)
    text = normalise_email(value) if kind is NamedBy.EMAIL else value
    return hmac.new(
        key, f"{kind.value}\x00{text}".encode("utf-8", "surrogatepass"), hashlib.sha256
    ).hexdigest()


def _flags(stored: object) -> tuple[RepeatFlag, ...]:
    items = stored if isinstance(stored, list) else []
    return tuple(RepeatFlag(RepeatCode(f["code"]), int(f["count"])) for f in items)


def record_of(row: PrivacyRequest) -> RequestRecord:
    return RequestRecord(
        id=row.id,
        public_id=row.public_id,
        type=RequestType(row.type),
        status=RequestStatus(row.status),
        regimes=tuple(LegalRegime(r) for r in row.regime.split(",") if r),
        subject_id=row.subject_id,
        named_by=NamedBy(row.identity_kind),
        verified_by=VerifiedBy(row.verified_by) if row.verified_by else None,
        actor_key_id=row.actor_key_id,
        received_at=row.received_at,
        due_at=row.due_at,
        confirm_by=row.confirm_by,
        extended_due_at=row.extended_due_at,
        extension_reason=row.extension_reason,
        flags=_flags(row.flags),
        steps=dict(row.steps or {}),
        receipt=row.receipt,
        failure_code=row.failure_code,
        attempts=row.attempts,
        closed_at=row.closed_at,
    )


def audit_details(
    row: PrivacyRequest, key_id: uuid.UUID | None, **more: audit_service.Scalar
) -> dict[str, Any]:
    # What the request is, never what it named.
    base: dict[str, audit_service.Scalar] = {"request": row.public_id, "type": row.type}
    if key_id is not None:
        base["key_id"] = str(key_id)
    return base | more


# -- filing ----------------------------------------------------------------------------------------


def check_changes(
    kind: RequestType, changes: Mapping[str, object] | None, *, catalog: Catalog
) -> dict[str, object]:
    """A rectification's changes, each a trait the catalog declares; other types carry none."""
    if kind is not RequestType.RECTIFICATION:
        if changes:
            raise InvalidInput(
                "only a rectification carries changes", code="changes_not_allowed", field="changes"
            )
        return {}
    if not changes:
        raise InvalidInput(
            "a rectification names the traits to correct", code="changes_required", field="changes"
        )
    unknown = sorted(name for name in changes if name not in catalog.trait_atoms)
    if unknown:
        raise InvalidInput(
            f"the catalog declares no trait {unknown[0]!r}",
            code="unknown_trait",
            field="changes",
        )
    return dict(changes)


def check_verification(kind: RequestType, verified_by: VerifiedBy | None) -> None:
    if kind in NEEDS_PROOF and verified_by is None:
        raise InvalidInput(
            f"a request of type {kind.value} needs verification: an operator's (admin key) or a subject "
            "token's",
            code="verification_required",
            field="verified_by",
        )


def _prior(session: Session, digest: str, subject_id: uuid.UUID | None) -> list[PriorRequest]:
    same = PrivacyRequest.identity_digest == digest
    who = or_(same, PrivacyRequest.subject_id == subject_id) if subject_id is not None else same
    rows = session.execute(
        select(PrivacyRequest.type, PrivacyRequest.received_at, PrivacyRequest.closed_at).where(who)
    )
    return [PriorRequest(RequestType(r.type), r.received_at, r.closed_at) for r in rows]


def file_request(
    session: Session,
    *,
    keystore: Keystore,
    policy: PolicyContext,
    calendar: BusinessCalendar,
    kind: RequestType,
    named_by: NamedBy,
    value: str,
    verified_by: VerifiedBy | None,
    key_id: uuid.UUID | None,
    at: datetime,
    actor: str,
    changes: Mapping[str, object] | None = None,
) -> RequestRecord:
    """File a request; the caller has checked who may file it (the key's scope, the token). Never
    creates a subject. Raises InvalidInput for a request its type's rules refuse."""
    check_verification(kind, verified_by)
    wanted = check_changes(kind, changes, catalog=policy.catalog)
    lookup = {named_by.value: value}
    subject_id = profiles_service.find_subject(session, keystore=keystore, **lookup)
    traits: Mapping[str, object] = {}
    if subject_id is not None:
        traits = read_inputs(session, keystore=keystore, subject_ids=[subject_id], at=at)[subject_id].traits
    regimes = legal_regimes(applicable_regimes(policy, traits))
    dates = due_dates(kind, regimes=regimes, received_at=at, calendar=calendar)
    digest = identity_digest(keystore, named_by, value)
    flags = repeat_flags(kind, regimes=regimes, received_at=at, prior=_prior(session, digest, subject_id))
    row = PrivacyRequest(
        id=new_id(),
        public_id="prq_" + secrets.token_urlsafe(18),
        type=kind.value,
        status=(RequestStatus.VERIFIED if verified_by is not None else RequestStatus.RECEIVED).value,
        regime=",".join(r.value for r in regimes),
        subject_id=subject_id,
        identity_kind=named_by.value,
        identity_digest=digest,
        verified_by=verified_by.value if verified_by is not None else None,
        actor_key_id=key_id,
        received_at=at,
        due_at=dates.due_at,
        confirm_by=dates.confirm_by,
        extended_due_at=None,
        extension_reason=None,
        extension_noticed_at=None,
        flags=[{"code": f.code.value, "count": f.count} for f in flags],
        changes_enc=None,
        steps={},
        receipt=None,
        failure_code=None,
        attempts=0,
        lease_owner=None,
        lease_expires_at=None,
        updated_at=at,
        closed_at=None,
    )
    if wanted and subject_id is not None:
        # New values of a person's traits are personal data: sealed under their key until applied.
        text = json.dumps(wanted, ensure_ascii=False)
        row.changes_enc = keystore.encrypt(subject_id, text, context=f"{CHANGES_CONTEXT}:{row.id}")
    session.add(row)
    session.flush()
    audit_service.append(
        session,
        keystore=keystore,
        action=FILED,
        actor=actor,
        at=at,
        subject_id=subject_id,
        details=audit_details(
            row,
            key_id,
            verified_by=row.verified_by or "none",
            regimes=row.regime,
            flags=",".join(f.code.value for f in flags) or None,
        ),
    )
    return record_of(row)


def changes_of(keystore: Keystore, record: RequestRecord, sealed: bytes | None) -> dict[str, object]:
    """A rectification's changes, opened under its subject's key ({} once applied or unreadable)."""
    if sealed is None or record.subject_id is None:
        return {}
    text = keystore.decrypt(record.subject_id, sealed, context=f"{CHANGES_CONTEXT}:{record.id}")
    opened = json.loads(text)
    return dict(opened) if isinstance(opened, dict) else {}


# -- reading ---------------------------------------------------------------------------------------


def get_row(session: Session, public_id: str) -> PrivacyRequest | None:
    return session.scalars(select(PrivacyRequest).where(PrivacyRequest.public_id == public_id)).one_or_none()


def get_request(session: Session, *, public_id: str) -> RequestRecord | None:
    row = get_row(session, public_id)
    return None if row is None else record_of(row)


def read_request(
    session: Session,
    *,
    keystore: Keystore,
    public_id: str,
    key_id: uuid.UUID,
    user_id: str | None,
    at: datetime,
) -> RequestRecord | None:
    """The request, for the operator (`user_id` None: an admin key) or for the person whose subject
    token proved `user_id`: then only a request that named that user id, else None as for an
    unknown one (another's request is not confirmed to exist). Each read is audited."""
    row = get_row(session, public_id)
    if row is not None and user_id is not None:
        mine = row.identity_kind == NamedBy.USER_ID.value and hmac.compare_digest(
            row.identity_digest, identity_digest(keystore, NamedBy.USER_ID, user_id)
        )
        row = row if mine else None
    if row is None:
        return None
    audit_service.append(
        session,
        keystore=keystore,
        action=READ,
        actor=f"api:key:{key_id}",
        at=at,
        subject_id=row.subject_id,
        details=audit_details(row, key_id, reader="operator" if user_id is None else "token"),
    )
    return record_of(row)


Position = tuple[int, datetime, str]
"""Where a listing page ended: (0 overdue / 1 not, the due date in force, the public id)."""


def _due() -> ColumnElement[datetime]:
    return func.coalesce(PrivacyRequest.extended_due_at, PrivacyRequest.due_at)


def _overdue(at: datetime) -> ColumnElement[bool]:
    return and_(PrivacyRequest.status.in_([s.value for s in OPEN_STATUSES]), _due() < at)


def list_requests(
    session: Session,
    *,
    at: datetime,
    status: RequestStatus | None = None,
    kind: RequestType | None = None,
    overdue: bool | None = None,
    after: Position | None = None,
    limit: int = 100,
) -> list[tuple[Position, RequestRecord]]:
    """Requests overdue at `at` first, then by the due date in force; each with its position."""
    rank = case((_overdue(at), 0), else_=1)
    due = _due()
    query = select(PrivacyRequest, rank.label("rank"))
    if status is not None:
        query = query.where(PrivacyRequest.status == status.value)
    if kind is not None:
        query = query.where(PrivacyRequest.type == kind.value)
    if overdue is not None:
        query = query.where(_overdue(at) if overdue else ~_overdue(at))
    if after is not None:
        r, d, p = after
        query = query.where(
            or_(rank > r, and_(rank == r, due > d), and_(rank == r, due == d, PrivacyRequest.public_id > p))
        )
    rows = session.execute(query.order_by(rank, due, PrivacyRequest.public_id).limit(limit)).all()
    found = []
    for row, place in rows:
        record = record_of(row)
        found.append(((int(place), record.effective_due_at, record.public_id), record))
    return found


def audit_listing(
    session: Session, *, keystore: Keystore, key_id: uuid.UUID, count: int, at: datetime
) -> None:
    audit_service.append(
        session,
        keystore=keystore,
        action=LISTED,
        actor=f"api:key:{key_id}",
        at=at,
        details={"key_id": str(key_id), "count": count},
    )


# -- the registry's handlers: kept as proof, unlinked on erasure ------------------------------------


def export_subject(session: Session, *, subject_id: uuid.UUID) -> dict[str, object]:
    rows = session.scalars(
        select(PrivacyRequest)
        .where(PrivacyRequest.subject_id == subject_id)
        .order_by(PrivacyRequest.received_at)
    ).all()
    if not rows:
        return {}
    return {
        "requests": [
            {
                "id": r.public_id,
                "type": r.type,
                "status": r.status,
                "received_at": r.received_at.isoformat(),
                "due_at": (r.extended_due_at or r.due_at).isoformat(),
                "closed_at": r.closed_at.isoformat() if r.closed_at else None,
            }
            for r in rows
        ]
    }


def erase_subject(session: Session, *, subject_id: uuid.UUID) -> int:
    """Keep the subject's requests as proof that they were answered, linked to no one: the subject
    id and any unapplied changes go; what named them is a keyed hash under the requests' own key."""
    result = session.execute(
        update(PrivacyRequest)
        .where(PrivacyRequest.subject_id == subject_id)
        .values(subject_id=None, changes_enc=None)
    )
    return cast(CursorResult[Any], result).rowcount or 0
