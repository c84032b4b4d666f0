"""An operator's look-up of one subject: what Tactful holds about them, each look audited.

    subject id | user id | anonymous id | e-mail (blind index)
        │ profiles.find_subject / canonical: a tombstone leads to its survivor; nothing is created
        ▼
    profiles ──▶ identities (decrypted), pending links both ways, traits and computed atoms
    consent  ──▶ the gate's answer now (the one seam: consent.gatekeeper), flags, GPC
    collect  ──▶ a page of events, newest first; quarantined messages that name the subject, opened
        ▼
    audit: `rights.subject_viewed` under the subject's keyed reference, with the key's id and how
           it was found (never the identifier); a miss is audited too, naming no one

An unknown subject and an erased one look the same: `None`, and the caller answers 404.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.catalog.model import Source
from tactful.collect import quarantine
from tactful.collect import service as collect_service
from tactful.consent.gatekeeper import PolicyContext, subject_allowance
from tactful.crypto import Keystore
from tactful.errors import NotFound
from tactful.policy.wording import words
from tactful.profiles import links
from tactful.profiles import service as profiles_service
from tactful.profiles.schemas import IdentityKind, ProfileSnapshot
from tactful.profiles.traits import is_email
from tactful.types import Purpose

VIEWED = "rights.subject_viewed"
MISSED = "rights.subject_not_found"
INFERRED_CATEGORY = "user.derived"
"""Stored traits in this category (or below it) are inferences, like every computed atom."""


class FoundBy(StrEnum):
    """How the operator named the subject: said in the audit entry, never the identifier itself."""

    SUBJECT_ID = "subject_id"
    USER_ID = "user_id"
    ANONYMOUS_ID = "anonymous_id"
    EMAIL = "email"


class LinkStatus(StrEnum):
    LINKED = "linked"
    """Held by this subject: proven, or merged with proof."""
    PENDING = "pending"
    """Claimed without proof (DESIGN §4): never merged, remembered until `expires_at`."""


@dataclass(frozen=True)
class HeldIdentity:
    kind: str
    value: str | None
    status: LinkStatus
    since: datetime | None
    expires_at: datetime | None = None
    other_subject: uuid.UUID | None = None
    """For a pending link, the subject on its other side."""


@dataclass(frozen=True)
class HeldAtom:
    atom: str
    value: object
    category: str | None
    inferred: bool


@dataclass(frozen=True)
class PurposeSummary:
    state: str
    allowed: bool
    legal_basis: str | None
    reason_code: str
    reason: str


@dataclass(frozen=True)
class ConsentSummary:
    regimes: tuple[str, ...]
    max_level: str
    minor: bool
    purposes: Mapping[str, PurposeSummary]
    objection: bool
    restriction: bool
    limit_sensitive: bool
    gpc: bool


@dataclass(frozen=True)
class SubjectRecord:
    subject_id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    merged: tuple[uuid.UUID, ...]
    identities: tuple[HeldIdentity, ...]
    traits: tuple[HeldAtom, ...]
    consent: ConsentSummary
    events: tuple[Mapping[str, Any], ...]
    events_more: bool
    quarantine: tuple[Mapping[str, object], ...]
    quarantine_more: bool


def find(
    session: Session,
    *,
    keystore: Keystore,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    email: str | None = None,
) -> uuid.UUID | None:
    """The surviving subject known by one identifier (e-mail through the blind index), or None."""
    return profiles_service.find_subject(
        session, keystore=keystore, user_id=user_id, anonymous_id=anonymous_id, email=email
    )


def _identities(
    session: Session,
    keystore: Keystore,
    survivor: uuid.UUID,
    emails: Mapping[str, object],
    at: datetime,
) -> tuple[HeldIdentity, ...]:
    """Linked identities (with the e-mail traits the blind index finds), then pending links."""
    held = profiles_service.identities(session, keystore=keystore, subject_id=survivor)
    found = [HeldIdentity(str(i.kind), i.value, LinkStatus.LINKED, i.created_at) for i in held]
    found += [
        HeldIdentity("email", value, LinkStatus.LINKED, None)
        for value in emails.values()
        if isinstance(value, str)
    ]
    anonymous = {
        keystore.digest(IdentityKind.ANONYMOUS_ID, i.value)
        for i in held
        if i.kind is IdentityKind.ANONYMOUS_ID
    }
    claims = links.claims(session, subject_id=survivor, anonymous_digests=sorted(anonymous), at=at)
    # The other side of each claim: the anonymous id's own subject, or the user's.
    others = profiles_service.identities_by_digest(
        session, keystore=keystore, digests=[c.anonymous_digest for c in claims if c.user_subject == survivor]
    )
    for claim in claims:
        if claim.user_subject == survivor and claim.anonymous_digest in anonymous:
            continue  # claimed first, then proven: linked, and shown as such above
        if claim.user_subject == survivor:
            holder, value = others.get(claim.anonymous_digest, (None, None))
            found.append(
                HeldIdentity(
                    str(IdentityKind.ANONYMOUS_ID),
                    None if value is None else value.value,
                    LinkStatus.PENDING,
                    claim.created_at,
                    claim.expires_at,
                    holder,
                )
            )
            continue
        users = profiles_service.identities(session, keystore=keystore, subject_id=claim.user_subject)
        found += [
            HeldIdentity(
                str(IdentityKind.USER_ID),
                user.value,
                LinkStatus.PENDING,
                claim.created_at,
                claim.expires_at,
                claim.user_subject,
            )
            for user in users
            if user.kind is IdentityKind.USER_ID
        ]
    return tuple(found)


def _atoms(
    policy: PolicyContext, traits: Mapping[str, object], computed: Mapping[str, object]
) -> tuple[HeldAtom, ...]:
    atoms = policy.catalog.atoms
    held: list[HeldAtom] = []
    for name, value in {**traits, **computed}.items():
        atom = atoms.get(name)
        category = None if atom is None else atom.category
        derived = category is not None and (
            category == INFERRED_CATEGORY or category.startswith(INFERRED_CATEGORY + ".")
        )
        inferred = name in computed or derived or (atom is not None and atom.source is Source.COMPUTED)
        held.append(HeldAtom(name, value, category, inferred))
    return tuple(held)


def _consent(
    session: Session, keystore: Keystore, policy: PolicyContext, subject_id: uuid.UUID, at: datetime
) -> ConsentSummary:
    gate = subject_allowance(session, keystore=keystore, context=policy, subject_id=subject_id, at=at)
    allowance, state, flags = gate.allowance, gate.consent, gate.flags
    purposes: dict[str, PurposeSummary] = {}
    for purpose in Purpose:
        verdict = allowance.purposes[purpose]
        purposes[purpose.value] = PurposeSummary(
            state=state.state(purpose, at=at).status.value,
            allowed=verdict.allowed,
            legal_basis=verdict.legal_basis if verdict.allowed else None,
            reason_code=verdict.code.value,
            reason=words(verdict.code, verdict.parameters),
        )
    return ConsentSummary(
        regimes=tuple(allowance.regimes),
        max_level=allowance.ceiling.value,
        minor=allowance.minor,
        purposes=purposes,
        objection=state.objected(at=at),
        restriction=flags.restriction,
        limit_sensitive=flags.limit_sensitive,
        gpc=state.gpc_applied(at=at),
    )


def _quarantine(
    session: Session, keystore: Keystore, ids: tuple[uuid.UUID, ...], limit: int
) -> tuple[list[Mapping[str, object]], bool]:
    # Rows sealed under a merged profile's key stay under its id (see `collect.quarantine`).
    rows: list[Mapping[str, object]] = []
    seen: set[object] = set()
    for sid in ids:
        for row in quarantine.export_rows(session, keystore=keystore, subject_id=sid, newest=limit + 1):
            if row["id"] not in seen:
                seen.add(row["id"])
                rows.append(row)
    rows.sort(key=lambda r: (str(r["received_at"]), str(r["id"])), reverse=True)
    return rows[:limit], len(rows) > limit


def _profile(session: Session, keystore: Keystore, subject_id: uuid.UUID) -> ProfileSnapshot | None:
    try:
        return profiles_service.get_profile(session, keystore=keystore, subject_id=subject_id)
    except NotFound:
        return None


def look_up(
    session: Session,
    *,
    keystore: Keystore,
    policy: PolicyContext,
    subject_id: uuid.UUID | None,
    found_by: FoundBy,
    key_id: uuid.UUID,
    at: datetime,
    events_limit: int,
    events_before: tuple[datetime, uuid.UUID] | None = None,
    quarantine_limit: int = 50,
) -> SubjectRecord | None:
    """What Tactful holds about `subject_id` (a merged profile's id leads to its survivor), or None
    when it holds no such subject; audited either way, inside the caller's transaction."""
    actor = f"api:key:{key_id}"
    details = {"key_id": str(key_id), "found_by": found_by.value}
    profile = None if subject_id is None else _profile(session, keystore, subject_id)
    if profile is None:
        audit_service.append(session, keystore=keystore, action=MISSED, actor=actor, at=at, details=details)
        return None
    ids = profiles_service.family(session, profile.subject_id)
    emails = {
        name: value
        for name, value in profile.traits.items()
        if (atom := policy.catalog.atoms.get(name)) is not None and is_email(atom)
    }
    events = collect_service.recent_events(
        session, subject_id=profile.subject_id, limit=events_limit + 1, before=events_before
    )
    held_quarantine, quarantine_more = _quarantine(session, keystore, ids, quarantine_limit)
    record = SubjectRecord(
        subject_id=profile.subject_id,
        created_at=profile.created_at,
        last_seen_at=profile.last_seen_at,
        merged=ids[1:],
        identities=_identities(session, keystore, profile.subject_id, emails, at),
        traits=_atoms(policy, profile.traits, profile.computed),
        consent=_consent(session, keystore, policy, profile.subject_id, at),
        events=tuple(events[:events_limit]),
        events_more=len(events) > events_limit,
        quarantine=tuple(held_quarantine),
        quarantine_more=quarantine_more,
    )
    audit_service.append(
        session,
        keystore=keystore,
        action=VIEWED,
        actor=actor,
        at=at,
        subject_id=profile.subject_id,
        details=details,
    )
    return record
