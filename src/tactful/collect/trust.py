"""What each message of a request may do with what it says about a person (DESIGN §4, trust of
public keys): the subject tokens it carries, taken out before anything reads it; whether it may
grant consent and widen what is known of its person; how an age it declares was vouched for; and
the audit entries of what its claims could not do.

    message ── tokens out (collect.proof) ──▶ the user ids it proves
    server key, or its user id proven ──────▶ may grant, may widen
    anonymous id only ── its subject identified? ──▶ may not widen
                     └── a pending link claims it? ─▶ may not grant
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.collect import links, proof
from tactful.collect.plans import Plan
from tactful.collect.schemas import Refusal, Source, Status
from tactful.crypto import Keystore


def take_proof(plans: list[Plan], *, source: Source, tokens: proof.TokenCheck | None, at: datetime) -> None:
    """Take the subject tokens out of every message before anything reads it, and note what they prove."""
    for plan in plans:
        plan.message, carried = proof.take_tokens(plan.message)
        plan.proven, failed = proof.proven_ids(
            plan.message, carried, header_token=source.subject_token, check=tokens, at=at
        )
        if failed:
            plan.refused.append(proof.INVALID_TOKEN)


def age_method(plan: Plan, source: Source) -> str:
    """How an accepted age was vouched for: by the site's server key, by the user's subject token,
    or by the visitor alone (an anonymous age gate; it never carries over a pending link)."""
    assert plan.event is not None
    if source.trusted:
        return "server_key"
    return "subject_token" if plan.event.user_id is not None else "self_declared"


def grants_and_widenings(
    session: Session, plans: list[Plan], *, keystore: Keystore, source: Source, at: datetime
) -> tuple[set[int], set[int]]:
    """Which plans may grant consent, and which may widen what is known of their person (write
    identifiers, lift an age protection), by plan index (DESIGN §4). A message that names a user id
    may, when the key is a server key or a token in it proves that user id. One that names only an
    anonymous id may, unless its subject is identified; and it may not grant while a pending link
    claims the anonymous id for a user."""
    if source.trusted:
        every = {p.index for p in plans}
        return every, set(every)
    anonymous = [p for p in plans if p.event is not None and p.event.user_id is None]
    identified, pending = links.speaks_for_identified(
        session,
        keystore=keystore,
        subject_ids=[p.subject_id for p in anonymous if p.subject_id is not None],
        anonymous_ids=[p.event.anonymous_id for p in anonymous if p.event and p.event.anonymous_id],
        at=at,
    )
    may_grant: set[int] = set()
    may_widen: set[int] = set()
    for plan in plans:
        event = plan.event
        assert event is not None
        if event.user_id is not None:
            if event.user_id in plan.proven:
                may_grant.add(plan.index)
                may_widen.add(plan.index)
        elif plan.subject_id not in identified:
            may_widen.add(plan.index)
            if event.anonymous_id not in pending:
                may_grant.add(plan.index)
    return may_grant, may_widen


_AUDITED_PER_SUBJECT = frozenset(
    {
        Refusal.CONSENT_GRANT,
        Refusal.MERGE_NEEDS_PROOF,
        Refusal.IDENTIFIER_TRAIT,
        Refusal.AGE_CLAIM,
        Refusal.PLACE_CLAIM,
    }
)
"""Refused claims that tried to widen an identified person's rights: audited under the person."""


def audited_subjects(plans: Sequence[Plan]) -> set[uuid.UUID]:
    """Everyone `audit_records` may name for these plans once their statuses are final."""
    return {
        plan.subject_id
        for plan in plans
        if plan.subject_id is not None
        and (plan.age_method is not None or not _AUDITED_PER_SUBJECT.isdisjoint(plan.refused))
    }


def audit_records(plans: Sequence[Plan], *, source: Source, at: datetime) -> list[audit_service.AuditRecord]:
    """The audit entries of what a request's claims could not do, and of the ages it accepted."""
    refused: dict[uuid.UUID, Counter[str]] = {}
    declared: dict[uuid.UUID, str] = {}
    unverified = 0
    for plan in plans:
        codes = dict.fromkeys(plan.refused)
        unverified += Refusal.LINK_UNVERIFIED in codes
        if plan.subject_id is None:
            continue
        if plan.age_method is not None and plan.status is Status.STORED:
            declared[plan.subject_id] = plan.age_method
        for code in codes:
            if code in _AUDITED_PER_SUBJECT:
                refused.setdefault(plan.subject_id, Counter())[code] += 1
    actor = f"collect:key:{source.write_key_id}" if source.write_key_id else "collect"
    records = (
        [
            # Pending links, as browsers without tokens make them at every sign-in: one entry for the
            # request (the links themselves are kept, each under its user's subject).
            audit_service.AuditRecord(
                action="collect.links_pending",
                actor=actor,
                at=at,
                details={"count": unverified, "request_id": source.request_id or ""},
            )
        ]
        if unverified
        else []
    )
    records += [
        audit_service.AuditRecord(
            action="collect.claims_refused", actor=actor, at=at, subject_id=subject, details=dict(codes)
        )
        for subject, codes in refused.items()
    ]
    records += [
        audit_service.AuditRecord(
            action="profiles.age_declared", actor=actor, at=at, subject_id=subject, details={"method": method}
        )
        for subject, method in declared.items()
    ]
    return records
