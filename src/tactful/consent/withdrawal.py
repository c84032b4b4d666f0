"""What a refusal does to what was built on the refused purpose (issue 3, part 8).

    refusal recorded ─▶ gate (storage_allowance) ─▶ purposes still storable ─┐
    (same transaction)                                                        │
        stored atoms (traits, computed) that none of them keeps ─▶ purge_atoms ┤
        records above consent (collection's events) ─▶ context.on_withdrawal ──┴▶ `consent.purged`
                                                                   (count, events, events_narrowed)

The rule comes from the catalog: an atom may stay stored iff at least one of its declared purposes
is still allowed for this subject for storage (`essential` always is). A purpose that holds only for
the request's context (GDPR's legitimate interest for `personalization.segments` without a grant)
keeps nothing stored: storing in a profile needs consent. A restriction (Art. 18) removes nothing.
Atoms the catalog no longer declares have no purpose left and go too. Events keep the purposes they
were stored for at receipt (`events.purposes`); the hook drops the ones no longer storable and
deletes the events left with none (events stored before consent was applied have no list and stay).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.catalog.model import Catalog
from tactful.consent.fold import ConsentAction
from tactful.consent.gatekeeper import PolicyContext, storage_allowance
from tactful.consent.schemas import ConsentChange, TargetKind
from tactful.crypto import Keystore
from tactful.policy import Allowance, Verdict
from tactful.profiles import service as profiles_service
from tactful.types import Purpose

PURGE_ACTION = "consent.purged"

_NARROWING = frozenset(
    {TargetKind.PURPOSE, TargetKind.EXPLICIT, TargetKind.PARENTAL, TargetKind.LEGITIMATE_INTEREST}
)
"""Refusals of these may end a purpose; a restriction keeps data stored and so never purges."""


def narrows(changes: Iterable[ConsentChange]) -> bool:
    """Whether any change is a refusal that may leave a stored atom without a purpose."""
    return any(c.action is not ConsentAction.GRANTED and c.kind in _NARROWING for c in changes)


def may_store(verdict: Verdict) -> bool:
    """Whether a purpose's verdict lets data be stored for it (not only read from the request): a
    purpose that holds for the request's context alone reads the request and keeps nothing."""
    return verdict.may_store


def storable_purposes(allowance: Allowance) -> frozenset[Purpose]:
    """The purposes under which this subject's atoms may stay stored (always `essential`)."""
    found = {p for p, verdict in allowance.purposes.items() if may_store(verdict)}
    return frozenset(found | {Purpose.ESSENTIAL})


def unsupported(catalog: Catalog, stored: Iterable[str], purposes: frozenset[Purpose]) -> frozenset[str]:
    """The stored atoms none of whose declared purposes is in `purposes`."""
    gone: set[str] = set()
    for name in stored:
        atom = catalog.atoms.get(name)
        if atom is None or not (atom.purposes & purposes):
            gone.add(name)
    return frozenset(gone)


def purge_unsupported(
    session: Session,
    *,
    keystore: Keystore,
    context: PolicyContext,
    subject_id: uuid.UUID,
    at: datetime,
    actor: str,
) -> int:
    """Delete the subject's stored atoms that no purpose allowed at `at` keeps, and have the context's
    withdrawal hook do the same to its records (events); audit how many of each. Returns the number
    of atoms removed."""
    allowance = storage_allowance(session, keystore=keystore, context=context, subject_id=subject_id, at=at)
    storable = storable_purposes(allowance)
    stored = profiles_service.stored_atoms(session, subject_id=subject_id)
    gone = unsupported(context.catalog, stored, storable)
    if gone:
        profiles_service.purge_atoms(session, subject_id=subject_id, atoms=gone)
    records = context.on_withdrawal(session, subject_id=subject_id, purposes=storable, at=at)
    if gone or records.removed or records.narrowed:
        details: dict[str, audit_service.Scalar] = {
            "count": len(gone), "events": records.removed, "events_narrowed": records.narrowed,
        }  # fmt: skip
        audit_service.append(
            session, keystore=keystore, action=PURGE_ACTION, actor=actor, at=at, subject_id=subject_id,
            details=details,
        )  # fmt: skip
    return len(gone)
