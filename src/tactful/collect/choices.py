"""Consent choices made directly (`PUT /v1/consent`: a banner, an API call, a TC string), recorded
under the trust rule for public keys (DESIGN §4).

    Claim + the choices (as a function of the current state) + GPC?
        │ a user id's grants, each refused, and nothing else ──▶ nothing written, no subject created
        │ (an anonymous id's refused grants go on: the same work as a grant recorded, so that the
        │  answer's time does not tell whether the id speaks for a user)
        ▼
    collect.links.link ──▶ the subject (a link without proof stays pending)
        ▼
    GPC opt-out first ──▶ the choices: refusals always, grants only when `may_grant` ──▶ audit

Refusals restrict and are always accepted; a grant widens, and for an identified person (or an
anonymous id a pending link claims for one) it needs a server key or a subject token for the user.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.collect import links, store
from tactful.collect.schemas import Refusal
from tactful.consent import service as consent_service
from tactful.consent.gatekeeper import PolicyContext
from tactful.consent.schemas import ConsentChange
from tactful.crypto import Keystore
from tactful.policy.state import EMPTY_STATE, ConsentState
from tactful.profiles import service as profiles_service

ChangesFor = Callable[[ConsentState], list[ConsentChange]]
"""The request's choices as ledger changes, given the subject's current state (a "no" after a
"yes" is a withdrawal)."""


@dataclass(frozen=True)
class Recorded:
    """What a request recorded, what it refused (target, reason code), and for whom (None: nobody
    was created, because nothing was recorded)."""

    subject_id: uuid.UUID | None
    changes: tuple[ConsentChange, ...]
    refused: tuple[tuple[str, str], ...]
    at: datetime
    merges: tuple[tuple[uuid.UUID, uuid.UUID], ...] = ()
    """Profiles the request's link merged: (the one merged, the one it merged into)."""


def _may_grant(session: Session, *, keystore: Keystore, claim: links.Claim, at: datetime) -> bool:
    if claim.trusted:
        return True
    if claim.user_id is not None:
        return claim.proves(claim.user_id)
    assert claim.anonymous_id is not None
    existing = profiles_service.find_subject(session, keystore=keystore, anonymous_id=claim.anonymous_id)
    identified, pending = links.speaks_for_identified(
        session,
        keystore=keystore,
        subject_ids=[existing] if existing is not None else [],
        anonymous_ids=[claim.anonymous_id],
        at=at,
    )
    return not identified and not pending


def record_choices(
    session: Session,
    *,
    keystore: Keystore,
    policy: PolicyContext,
    claim: links.Claim,
    changes_for: ChangesFor,
    gpc_proof: Mapping[str, str] | None,
    at: datetime,
    actor: str,
    token_refused: str = Refusal.CONSENT_GRANT.value,
) -> Recorded:
    """Record the choices of one request for the subject `claim` names (see the module docstring).
    `gpc_proof`: the request carried GPC, recorded first with this proof. `token_refused`: the
    reason code of a refused grant (a token was given that proved nothing, or none was)."""
    may_grant = _may_grant(session, keystore=keystore, claim=claim, at=at)
    wanted = changes_for(EMPTY_STATE)
    refused = [(c.label, token_refused) for c in wanted if c.grants and not may_grant]
    # An anonymous id goes the whole way even when its grants are all refused (it speaks for a
    # user): the answer's time must not tell a linked browser from one whose grant is recorded.
    if gpc_proof is None and claim.user_id is not None and not any(not c.grants or may_grant for c in wanted):
        _audit_refused(session, keystore=keystore, subject_id=None, refused=refused, at=at, actor=actor)
        return Recorded(None, (), tuple(refused), at)
    linked = links.link(session, keystore=keystore, policy=policy, claim=claim, at=at)
    refused += [("link", str(code)) for code in linked.refused]
    subject_id = linked.subject_id
    if gpc_proof is not None:
        # The signal applies first: the request's own choices are recorded after it (the ledger's
        # order), and when they are the person's own (banner, API) they lift the cap it sets.
        consent_service.record_gpc(
            session,
            keystore=keystore,
            subject_id=subject_id,
            at=at,
            proof=gpc_proof,
            actor=actor,
            policy=policy,
        )
    current = consent_service.state(session, subject_id=subject_id)
    changes = [c for c in changes_for(current) if not c.grants or may_grant]
    consent_service.record(
        session,
        keystore=keystore,
        subject_id=subject_id,
        changes=changes,
        at=at,
        actor=actor,
        policy=policy,
    )
    _audit_refused(session, keystore=keystore, subject_id=subject_id, refused=refused, at=at, actor=actor)
    merges = tuple((m.source, m.target) for m in linked.merges)
    return Recorded(subject_id, tuple(changes), tuple(refused), at, merges)


def _audit_refused(
    session: Session,
    *,
    keystore: Keystore,
    subject_id: uuid.UUID | None,
    refused: Sequence[tuple[str, str]],
    at: datetime,
    actor: str,
) -> None:
    """Count and audit what was refused: codes and numbers only, never the choices' proof."""
    if not refused:
        return
    codes: dict[str, int] = {}
    for _, code in refused:
        codes[code] = codes.get(code, 0) + 1
    store.add_counts(session, {f"refused:{code}": n for code, n in codes.items()}, {})
    audit_service.append(
        session,
        keystore=keystore,
        action="consent.claims_refused",
        actor=actor,
        at=at,
        subject_id=subject_id,
        details=dict(codes),
    )
