"""Consent at collection: what a request's events say about consent enters the ledger first, then each
event gets the purposes it may serve at receipt (issue 3, part 7).

    the batch's subjects ── histories (one query) ─────────────────────────────┐
    Sec-GPC: 1 / context.gpc ──▶ GPC opt-out, once until lifted ──┐            │
    context.consent.categoryPreferences (Segment) ─┐              ├─▶ record (per subject, only
    context.consentManagement (RudderStack) ───────┴─ categories ─┘   what differs; purges on refusal)
                                                                               ▼
    age and place traits (one query) ──▶ gatekeeper.allowance_from ──▶ Allowance per subject
                                                                               ▼
    Purposes.of(atom): the atom's declared purposes that hold for storage and whose atoms include it

A request's events are received together: the consent they carry applies, in their order, before the
purposes of any of them are decided. Nothing here names a regime: what a first-time visitor without a
recorded choice gets is the gate's answer (GDPR: consent needed, so only what `essential` covers;
CCPA: allowed until an opt-out).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.orm import Session

from tactful.catalog.model import Atom, Source
from tactful.consent import gatekeeper, gpc, ledger
from tactful.consent import service as consent_service
from tactful.consent.fold import ConsentAction
from tactful.consent.gatekeeper import PolicyContext
from tactful.consent.schemas import ConsentChange, LedgerEntry
from tactful.consent.withdrawal import may_store
from tactful.crypto import Keystore
from tactful.policy import Allowance
from tactful.policy.state import ConsentSource, ConsentStatus
from tactful.types import Purpose


@dataclass(frozen=True)
class Arrival:
    """What one received event says about its subject's consent."""

    subject_id: uuid.UUID
    consent: Mapping[str, Any] | None = None
    gpc: bool = False
    proof: Mapping[str, str] = field(default_factory=dict)
    may_grant: bool = True
    """False when the event speaks, without proof, for an identified person (or an anonymous id a
    pending link claims for one): its refusals are recorded, its grants are not (DESIGN §4)."""


def _preferences(raw: object) -> dict[str, bool]:
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, bool)}


def _ids(raw: object) -> list[str]:
    if not isinstance(raw, list):
        return []
    return [str(i) for i in raw if isinstance(i, str | int) and not isinstance(i, bool)]


Choice = tuple[Purpose, bool, ConsentSource]
"""One purpose granted (True) or refused (False), and where the event said so."""
_ChoiceKey = tuple[tuple[tuple[str, bool], ...], tuple[str, ...], tuple[str, ...]]


def _key(consent: Mapping[str, Any]) -> _ChoiceKey:
    management = consent.get("consentManagement")
    management = management if isinstance(management, Mapping) else {}
    return (
        tuple(sorted(_preferences(consent.get("categoryPreferences")).items())),
        tuple(_ids(management.get("allowedConsentIds"))),
        tuple(_ids(management.get("deniedConsentIds"))),
    )


def content_key(consent: Mapping[str, Any]) -> object:
    """What identifies a consent context's content within a request: its compact JSON text, one C
    call, where parsing it takes several Python steps. A browser repeats one context on every
    message (analytics.js), so a batch holds a few distinct contexts, each parsed once. A context
    that is not plain JSON (an in-process caller's objects) is keyed by its parsed form."""
    try:
        return orjson.dumps(consent)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _key(consent)


def _choices(key: _ChoiceKey, mapping: Mapping[str, Sequence[str]]) -> tuple[Choice, ...]:
    preferences, allowed, denied = key
    found: list[Choice] = []
    for given, source in (
        (dict(preferences), ConsentSource.SEGMENT_CONTEXT),
        # Denied ids come second so that an id listed both ways is a refusal.
        (dict.fromkeys(allowed, True) | dict.fromkeys(denied, False), ConsentSource.RUDDERSTACK_CONTEXT),
    ):
        for purpose, granted in consent_service.purposes_from_categories(given, mapping=mapping):
            found.append((purpose, granted, source))
    return tuple(found)


def carried_kinds(
    consent: Mapping[str, Any] | None,
    *,
    mapping: Mapping[str, Sequence[str]],
    memo: dict[object, tuple[bool, bool]] | None = None,
) -> tuple[bool, bool]:
    """Whether an event's consent context grants some purpose, and whether it refuses some (a
    claim anyone may make). `memo`: answers already worked out in this request, by content (a
    visitor's every event repeats one context)."""
    if not consent:
        return False, False
    key = None if memo is None else content_key(consent)
    if memo is not None and key in memo:
        return memo[key]
    found = _choices(_key(consent), mapping)
    kinds = any(granted for _, granted, _ in found), any(not granted for _, granted, _ in found)
    if memo is not None:
        memo[key] = kinds
    return kinds


def carried_changes(
    consent: Mapping[str, Any] | None, *, mapping: Mapping[str, Sequence[str]], proof: Mapping[str, str]
) -> list[ConsentChange]:
    """Ledger changes from an event's consent context: Segment's `categoryPreferences` (source
    `segment_context`) and RudderStack's `allowedConsentIds`/`deniedConsentIds` (source
    `rudderstack_context`), through the configured category map. Malformed parts say nothing."""
    if not consent:
        return []
    return [
        ConsentChange.for_purpose(p, ConsentAction.GRANTED if g else ConsentAction.DENIED, src, proof=proof)
        for p, g, src in _choices(_key(consent), mapping)
    ]


def _differing(
    choices: Iterable[Choice], status: dict[Purpose, ConsentStatus], proof: Mapping[str, str]
) -> list[ConsentChange]:
    """Only the choices that change something, a "no" after a "yes" recorded as a withdrawal: events
    repeat their context on every call, and the ledger should not grow with every page view."""
    kept: list[ConsentChange] = []
    for purpose, given, source in choices:
        current = status.get(purpose, ConsentStatus.NOT_SET)
        if given:
            if current is ConsentStatus.GRANTED:
                continue
            action = ConsentAction.GRANTED
        elif current.refused:
            continue
        else:
            action = ConsentAction.WITHDRAWN if current is ConsentStatus.GRANTED else ConsentAction.DENIED
        status[purpose] = ConsentStatus(action.value)
        kept.append(ConsentChange.for_purpose(purpose, action, source, proof=proof))
    return kept


def record_arrivals(
    session: Session,
    *,
    keystore: Keystore,
    policy: PolicyContext,
    arrivals: Sequence[Arrival],
    at: datetime,
    actor: str,
    nothing_stored: frozenset[uuid.UUID] = frozenset(),
) -> tuple[dict[uuid.UUID, list[LedgerEntry]], dict[int, int]]:
    """Record what the arrivals say (GPC first, then carried choices, in order) and return every
    arrival subject's whole ledger afterwards (`nothing_stored`: see `service.record_many`), and by
    arrival index the number of grants not recorded because the arrival may not grant."""
    histories = ledger.histories(session, subject_ids=(a.subject_id for a in arrivals))
    pending: dict[uuid.UUID, list[ConsentChange]] = {}
    statuses: dict[uuid.UUID, dict[Purpose, ConsentStatus]] = {}
    mapping = policy.policy.consent_categories
    parsed: dict[object, tuple[tuple[Choice, ...], bool]] = {}  # by content: visitors repeat one
    gpc_settled: set[uuid.UUID] = set()  # signal queued, or an earlier one still in force
    applied: dict[uuid.UUID, tuple[Choice, ...]] = {}  # the choices each subject's statuses now say
    refused: dict[int, int] = {}
    for index, arrival in enumerate(arrivals):
        subject = arrival.subject_id
        changes = pending.setdefault(subject, [])
        proof = {**arrival.proof, gpc.GPC_PROOF_KEY: "1"} if arrival.gpc else dict(arrival.proof)
        if arrival.gpc and subject not in gpc_settled:
            gpc_settled.add(subject)
            if not gpc.gpc_in_force(histories[subject]):
                signal = ConsentChange.for_purpose(
                    Purpose.SALE_OR_SHARE, ConsentAction.DENIED, ConsentSource.GPC, proof=proof
                )
                changes.insert(0, signal)
        if arrival.consent:
            key = content_key(arrival.consent)
            found = parsed.get(key)
            if found is None:
                choices = _choices(_key(arrival.consent), mapping)
                # Choices naming each purpose once leave the statuses saying exactly them: applied
                # again right away, they change nothing.
                found = parsed[key] = (choices, len({c[0] for c in choices}) == len(choices))
            choices, repeatable = found
            if not arrival.may_grant:
                # A claim that only restricts is always accepted; the grants wait for proof. Those
                # that would change nothing (the CMP replays a choice already recorded) are no claim.
                if subject not in statuses:
                    statuses[subject] = ledger.statuses_at(histories[subject], at)
                now = statuses[subject]
                granting = sum(
                    1 for p, given, _ in choices if given and now.get(p) is not ConsentStatus.GRANTED
                )
                if granting:
                    refused[index] = granting
                choices = tuple(c for c in choices if not c[1])
            if repeatable and applied.get(subject) is choices:
                continue
            if subject not in statuses:
                statuses[subject] = ledger.statuses_at(histories[subject], at)
            changes += _differing(choices, statuses[subject], proof)
            applied[subject] = choices
    recorded = consent_service.record_many(
        session,
        keystore=keystore,
        changes=pending,
        at=at,
        actor=actor,
        policy=policy,
        histories=histories,
        nothing_stored=nothing_stored,
    )
    for subject, entries in recorded.items():
        histories[subject] += entries
    return histories, refused


@dataclass(frozen=True)
class Received:
    """What a request's arrivals left: every subject's gate inputs after the ledger took their
    choices, the gate's answer for each, and by arrival index the grants not recorded for want of
    proof."""

    inputs: Mapping[uuid.UUID, gatekeeper.GateInputs]
    allowances: Mapping[uuid.UUID, Allowance]
    refused: Mapping[int, int]


def receive(
    session: Session,
    *,
    keystore: Keystore,
    policy: PolicyContext,
    arrivals: Sequence[Arrival],
    at: datetime,
    actor: str,
    nothing_stored: frozenset[uuid.UUID] = frozenset(),
) -> Received:
    """Record what the arrivals say (`record_arrivals`), then read every arrival subject through
    the gate's one seam (`gatekeeper.read_inputs`, given the ledgers just written) and answer the
    gate for each (a restriction applies: new data is processing, which a restricted subject's data
    must not undergo)."""
    histories, refused = record_arrivals(
        session, keystore=keystore, policy=policy, arrivals=arrivals, at=at, actor=actor,
        nothing_stored=nothing_stored,
    )  # fmt: skip
    subjects = list(dict.fromkeys(a.subject_id for a in arrivals))
    inputs = gatekeeper.read_inputs(
        session, keystore=keystore, subject_ids=subjects, at=at, histories=histories
    )
    gpc_subjects = frozenset(a.subject_id for a in arrivals if a.gpc)
    answers = gatekeeper.allowances(policy, inputs, at=at, gpc_subjects=gpc_subjects)
    return Received(inputs, answers, refused)


class Purposes:
    """The purposes an atom may be stored for under one Allowance (an atom's purposes that hold for
    storage and whose atoms include it). `essential` counts for the event types the catalog marks
    essential, and for any other atom that declares it."""

    def __init__(self, allowance: Allowance) -> None:
        self._allowance = allowance
        self._storable = frozenset(p for p, verdict in allowance.purposes.items() if may_store(verdict))
        self._atoms: dict[Purpose, frozenset[str]] = {}

    def _holds(self, purpose: Purpose, atom: Atom) -> bool:
        if purpose is Purpose.ESSENTIAL:
            return atom.essential or atom.source is not Source.EVENT
        if purpose not in self._storable:
            return False
        atoms = self._atoms.get(purpose)
        if atoms is None:
            atoms = self._atoms[purpose] = self._allowance.atoms_for(purpose)
        return atom.name in atoms

    def of(self, atom: Atom) -> frozenset[Purpose]:
        return frozenset(p for p in atom.purposes if self._holds(p, atom))
