"""One request's messages on their way through ingestion, and who they are about.

Plan ── one message: its status, what validation read, its subject, its row
suppress_unheard ── new events of people never seen before that no purpose allows: suppressed
                    before anyone is created (one read of the identifiers, nothing written)
Subjects.resolve ── every other plan's identities in one call; merges move collection's rows,
                    then consent merges ledgers; `current` follows merges, `fresh` names the
                    subjects the request created
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tactful.collect import links
from tactful.collect import purposes as collect_purposes
from tactful.collect.message import MessageType
from tactful.collect.outcomes import Claim
from tactful.collect.schemas import EventResult, Refusal, Source, Status
from tactful.collect.validate import Reason, ValidEvent, read_identity
from tactful.consent import intake
from tactful.consent.gatekeeper import PolicyContext
from tactful.crypto import Keystore
from tactful.profiles import service as profiles_service
from tactful.profiles.schemas import IdentityKind


@dataclass
class Plan:
    """One message on its way through a request (internal, mutable while the request runs)."""

    index: int
    message: object
    status: Status | None = None
    reason: Reason | None = None
    detail: str | None = None
    event: ValidEvent | None = None
    message_id: str | None = None
    digest: str | None = None
    fingerprint: str | None = None
    subject_id: uuid.UUID | None = None
    row: dict[str, Any] = field(default_factory=dict)
    unlinked: bool = False
    """Suppressed before identity resolution: from someone unknown, for no purpose (`_unheard`)."""
    proven: frozenset[str] = frozenset()
    """The user ids a subject token in this message (or the request's header) proves."""
    refused: list[str] = field(default_factory=list)
    """Reason codes of what the message asked and its key may not do without proof."""
    age_method: str | None = None
    """How an age the message declares was vouched for, when it keeps one (`AgeMethod`)."""
    outcome: Claim | None = None
    """A stored track event's claim to follow a decision (`properties.decision_id`)."""
    undeclared: bool = False
    """The catalog declares no atom for the event (`EventResult.undeclared`)."""

    def quarantine(self, reason: Reason, detail: str) -> None:
        self.status, self.reason, self.detail = Status.QUARANTINED, reason, detail

    def result(self) -> EventResult:
        assert self.status is not None
        refused = tuple(dict.fromkeys(self.refused))
        return EventResult(self.message_id, self.status, self.reason, self.detail, refused, self.undeclared)


class Subjects:
    """Identity resolution for one request: every plan's identities in one call, in order; merges
    move our rows to the survivor, and `current` follows them for plans resolved earlier."""

    def __init__(
        self,
        session: Session,
        keystore: Keystore,
        at: datetime,
        policy: PolicyContext,
        *,
        trusted: bool = False,
    ) -> None:
        self.session, self.keystore, self.at, self.policy = session, keystore, at, policy
        self.trusted = trusted
        self._merged: dict[uuid.UUID, uuid.UUID] = {}
        self._created: set[uuid.UUID] = set()

    def resolve(self, plans: Sequence[Plan]) -> None:
        wanted: list[tuple[Plan, links.Claim]] = []
        for plan in plans:
            if plan.status is Status.QUARANTINED:
                identity = read_identity(plan.message)
                if identity is not None:
                    claim = links.Claim(
                        identity.anonymous_id, identity.user_id, None, plan.proven, self.trusted
                    )
                    wanted.append((plan, claim))
                continue
            event = plan.event
            assert event is not None
            previous_id = event.previous_id if event.type is MessageType.ALIAS else None
            claim = links.Claim(event.anonymous_id, event.user_id, previous_id, plan.proven, self.trusted)
            wanted.append((plan, claim))
        resolved = links.link_many(
            self.session,
            keystore=self.keystore,
            policy=self.policy,
            claims=[claim for _, claim in wanted],
            at=self.at,
        )
        for (plan, _), linked in zip(wanted, resolved, strict=True):
            for merge in linked.merges:
                self._merged[merge.source] = merge.target
            if linked.created:
                self._created.add(linked.subject_id)
            plan.subject_id = linked.subject_id
            plan.refused.extend(linked.refused)

    def fresh(self) -> frozenset[uuid.UUID]:
        """Subjects this request created that no merge moved rows into: nothing is stored for them."""
        return frozenset(self._created.difference(self._merged.values()))

    def merges(self) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """The request's merges so far, in order: (the profile merged, the one it merged into)."""
        return list(self._merged.items())

    def current(self, subject_id: uuid.UUID) -> uuid.UUID:
        seen = {subject_id}
        while subject_id in self._merged:
            subject_id = self._merged[subject_id]
            if subject_id in seen:  # a cycle would be a profiles bug; stop rather than spin
                break
            seen.add(subject_id)
        return subject_id


_LINKING = (MessageType.IDENTIFY, MessageType.ALIAS)


def identifiers(event: ValidEvent) -> set[tuple[IdentityKind, str]]:
    found = {(IdentityKind.ANONYMOUS_ID, event.anonymous_id), (IdentityKind.USER_ID, event.user_id)}
    if event.type is MessageType.ALIAS and event.previous_id:
        found |= {(IdentityKind.ANONYMOUS_ID, event.previous_id), (IdentityKind.USER_ID, event.previous_id)}
    return {(kind, value) for kind, value in found if value}


def _records_consent(
    plan: Plan, source: Source, policy: PolicyContext, memo: dict[object, tuple[bool, bool]]
) -> bool:
    """Whether the consent an event carries can be recorded: a refusal always can; a grant only for
    an anonymous visitor or with proof of the user id (DESIGN §4). One that can't says nothing (and
    its grant is reported refused if the event is suppressed for it)."""
    event = plan.event
    assert event is not None
    if not event.consent:
        return False
    if source.trusted or event.user_id is None or event.user_id in plan.proven:
        return True
    _, refuses = intake.carried_kinds(event.consent, mapping=policy.policy.consent_categories, memo=memo)
    return refuses


def suppress_unheard(
    session: Session,
    plans: list[Plan],
    *,
    keystore: Keystore,
    policy: PolicyContext,
    source: Source,
    at: datetime,
    known: frozenset[tuple[IdentityKind, str]] | None = None,
) -> None:
    """Suppress, before anyone is created, the new events of people never seen before that no
    purpose allows: nothing about them is stored, no subject, identity or key (invariant 10: "not
    stored as personal data"). Only when the request says nothing about them that must be recorded:
    no consent, no GPC, no identify or alias naming the same identifiers. `known`: which of the new
    events' identifiers live subjects hold, when the request has read that already."""
    if source.gpc:
        return
    speaking: set[tuple[IdentityKind, str]] = set()
    quiet: list[tuple[Plan, set[tuple[IdentityKind, str]]]] = []
    memo: dict[object, tuple[bool, bool]] = {}
    for plan in plans:
        event = plan.event
        if plan.status is not None or event is None:
            continue
        names = identifiers(event)
        if event.type in _LINKING or event.gpc is True or _records_consent(plan, source, policy, memo):
            speaking |= names
        else:
            quiet.append((plan, names))
    quiet = [(plan, names) for plan, names in quiet if not names & speaking]
    if not quiet:
        return
    if known is None:
        wanted = [name for _, names in quiet for name in names]
        known = profiles_service.known_identifiers(session, keystore=keystore, identifiers=wanted)
    purposes = collect_purposes.newcomer(policy, at)
    for plan, names in quiet:
        assert plan.event is not None
        if not names & known and not purposes(plan.event):
            plan.status, plan.reason, plan.unlinked = Status.SUPPRESSED, Reason.NO_PURPOSE, True
            mapping = policy.policy.consent_categories
            grants, _ = intake.carried_kinds(plan.event.consent, mapping=mapping, memo=memo)
            if grants:  # for a user id, without proof: nothing was recorded
                plan.refused.append(Refusal.CONSENT_GRANT)
