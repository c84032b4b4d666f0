"""Linking identities: the one function that turns what a message says about who it is into a
subject, for collection and for the consent API alike (DESIGN §4, trust of public keys).

    Claim (anonymous id, user id, previous id; which user ids are proven; a server key?)
        │ an anonymous id ↔ user id link without proof ──▶ the user id alone; link kept pending
        │ two user ids (alias, merge) without proof of both ──▶ the user id alone; refused
        ▼
    profiles.resolve_many ──▶ merges: collection's rows move, then consent merges ledgers
        ▼
    Linked (subject, created, merges, what was refused)

A write key sits in every web page, so what it says about a user id is a claim. A link between an
anonymous id and a user id is applied only with proof in the same message (the server key, or a
subject token for that user id); without it the two subjects stay apart, the events that name the
user id go to the user, those that name only the anonymous id stay with the anonymous subject, and
the claim is remembered as a pending link (`profiles.links`). Joining two user ids needs the server
key or tokens for both.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tactful.collect import store
from tactful.collect.schemas import Refusal
from tactful.consent import service as consent_service
from tactful.consent.gatekeeper import PolicyContext
from tactful.crypto import Keystore
from tactful.profiles import links as profile_links
from tactful.profiles import service as profiles_service
from tactful.profiles.schemas import IdentityKind, Merge


@dataclass(frozen=True)
class Claim:
    """Who one message names, and what in the same message proves it. `proven` holds the user ids
    a valid subject token in the message vouches for; `trusted` is a server-scope key, whose word is
    proof."""

    anonymous_id: str | None
    user_id: str | None
    previous_id: str | None = None
    proven: frozenset[str] = frozenset()
    trusted: bool = False

    def proves(self, user_id: str) -> bool:
        return self.trusted or user_id in self.proven

    @property
    def proven_user(self) -> bool:
        """The message's user id is proven (a message without one has nothing to prove)."""
        return self.user_id is None or self.proves(self.user_id)


@dataclass(frozen=True)
class Linked:
    """The subject a claim resolved to, and what of the claim was not applied."""

    subject_id: uuid.UUID
    created: bool
    merges: tuple[Merge, ...] = ()
    refused: tuple[Refusal, ...] = ()


def _judged(claim: Claim) -> bool:
    """Whether `_request` asks who holds the claim's identifiers: it links a user id to another
    identifier without the proof that would settle it (a key whose word is proof, or a token)."""
    if claim.user_id is None or claim.trusted:
        return False
    return bool(claim.previous_id) or (
        claim.anonymous_id not in (None, claim.user_id) and not claim.proves(claim.user_id)
    )


Joined = set[tuple[IdentityKind, str, str]]
"""Links that earlier claims of the same batch applied: (kind, identifier, user id)."""


def _request(
    claim: Claim, owners: profiles_service.Known | None, earlier: Joined
) -> tuple[profiles_service.IdentityRequest, tuple[Refusal, ...], str | None]:
    """What may be resolved of `claim`, what was refused, and the anonymous id left pending
    (`owners`: who held the identifiers of every claim `_judged` before the batch; `earlier`: the
    links the batch's claims before this one applied).

    A link that already holds (the anonymous id belongs to the user's subject, as on every call
    analytics.js makes after a verified sign-in, whether that sign-in came in an earlier request or
    earlier in this one) is no new claim."""
    anonymous_id, user_id, previous_id = claim.anonymous_id, claim.user_id, claim.previous_id
    if user_id is None or not _judged(claim):
        return (anonymous_id, user_id, previous_id), (), None
    assert owners is not None  # read for every judged claim
    user_subject = owners.survivor(IdentityKind.USER_ID, user_id)

    def joined(kind: IdentityKind, value: str) -> bool:
        if (kind, value, user_id) in earlier:
            return True
        return user_subject is not None and owners.survivor(kind, value) == user_subject

    refused: list[Refusal] = []
    pending: str | None = None
    if (
        anonymous_id is not None
        and anonymous_id != user_id
        and not claim.proves(user_id)
        and not joined(IdentityKind.ANONYMOUS_ID, anonymous_id)
    ):
        refused.append(Refusal.LINK_UNVERIFIED)
        pending, anonymous_id = anonymous_id, None
    if previous_id is not None and previous_id != user_id:
        if owners.survivor(IdentityKind.USER_ID, previous_id) is not None:
            if not (claim.proves(user_id) and claim.proves(previous_id)) and not joined(
                IdentityKind.USER_ID, previous_id
            ):
                refused.append(Refusal.MERGE_NEEDS_PROOF)
                previous_id = None
        elif not claim.proves(user_id) and not joined(IdentityKind.ANONYMOUS_ID, previous_id):
            refused.append(Refusal.LINK_UNVERIFIED)
            pending = pending or previous_id
            previous_id = None
    return (anonymous_id, user_id, previous_id), tuple(refused), pending


def link_many(
    session: Session,
    *,
    keystore: Keystore,
    policy: PolicyContext | None,
    claims: Sequence[Claim],
    at: datetime,
) -> list[Linked]:
    """Resolve each claim in order, applying only what it proves; one result per claim.

    Merges move collection's rows to the survivor, then consent merges the ledgers (the stricter
    state of each purpose wins). A subject returned for an early claim may be merged by a later one.
    """
    if not claims:
        return []
    # Who holds every identifier the claims name, read once when some claim is judged by it:
    # resolution then reads nothing again (what it resolves is what the claims name, or less).
    owners = None
    if any(_judged(claim) for claim in claims):
        named = [(c.anonymous_id, c.user_id, c.previous_id) for c in claims]
        owners = profiles_service.read_known(session, keystore=keystore, identities=named)
    earlier: Joined = set()
    planned = []
    for claim in claims:
        request = _request(claim, owners, earlier)
        _note_links(earlier, request[0])
        planned.append(request)
    resolutions = profiles_service.resolve_many(
        session, keystore=keystore, identities=[request for request, _, _ in planned], at=at, known=owners
    )
    merged: dict[uuid.UUID, uuid.UUID] = {}
    pending: list[tuple[uuid.UUID, str]] = []
    linked: list[Linked] = []
    for (_, refused, anonymous_id), resolution in zip(planned, resolutions, strict=True):
        for merge in resolution.merges:
            merged[merge.source] = merge.target
            store.move_subject(session, source=merge.source, target=merge.target)
            consent_service.merge_ledgers(
                session, keystore=keystore, source=merge.source, target=merge.target, at=at, policy=policy
            )
        if anonymous_id is not None:
            pending.append((resolution.subject_id, anonymous_id))
        linked.append(Linked(resolution.subject_id, resolution.created, resolution.merges, refused))
    if pending:
        profile_links.record(
            session, keystore=keystore, links=[(_follow(merged, s), a) for s, a in pending], at=at
        )
    return linked


def _note_links(earlier: Joined, request: profiles_service.IdentityRequest) -> None:
    """Remember the links a planned request applies, for the claims after it in the batch."""
    anonymous_id, user_id, previous_id = request
    if user_id is None:
        return
    if anonymous_id is not None and anonymous_id != user_id:
        earlier.add((IdentityKind.ANONYMOUS_ID, anonymous_id, user_id))
    if previous_id is not None and previous_id != user_id:
        earlier.add((IdentityKind.ANONYMOUS_ID, previous_id, user_id))
        earlier.add((IdentityKind.USER_ID, previous_id, user_id))


def _follow(merged: dict[uuid.UUID, uuid.UUID], subject_id: uuid.UUID) -> uuid.UUID:
    seen = {subject_id}
    while subject_id in merged and merged[subject_id] not in seen:
        subject_id = merged[subject_id]
        seen.add(subject_id)
    return subject_id


def link(
    session: Session, *, keystore: Keystore, policy: PolicyContext | None, claim: Claim, at: datetime
) -> Linked:
    """`link_many` for one claim."""
    return link_many(session, keystore=keystore, policy=policy, claims=[claim], at=at)[0]


def speaks_for_identified(
    session: Session,
    *,
    keystore: Keystore,
    subject_ids: Sequence[uuid.UUID],
    anonymous_ids: Sequence[str],
    at: datetime,
) -> tuple[frozenset[uuid.UUID], frozenset[str]]:
    """Of these subjects, those that are identified (hold a user id); of these anonymous ids, those a
    pending link claims for a user. A grant for either needs proof; so does writing an identified
    person's identifiers or lifting their age protections."""
    return profile_links.speaking(
        session, keystore=keystore, subject_ids=subject_ids, anonymous_ids=anonymous_ids, at=at
    )
