"""One decision request, from the ids a site's backend sends to the answers served and logged.

    ids ──profiles.find_subject──▶ subject (or nobody: nothing is created, no link made or verified)
        ──Sec-GPC──▶ the decision obeys it; `Decided.gpc_due` says whether recording it
                     (consent.record_gpc, after the reads) would change the subject's state
        ──context──▶ request atoms (declared, scalar, for this request only)
        ──the one seam (consent.gatekeeper)──▶ Allowance + SubjectView (sealed atoms opened when read;
                                               session atoms: one counters snapshot on first read)
        ──significant experiences asked for? (`overrides`)──▶ those a review overturned for them
        ──serve: engine.decide over the lineup (walk, conditions, assignment, render, explain)──▶ Served
        ──▶ Logbook entries (written in groups after the answer)
        ──audiences held to k this subject matches (experiences otherwise candidates)──▶ AudienceSizes

The subject is found by the user id first, then the anonymous id, following merges only. An
anonymous id whose link to a user id is pending is its own subject (links never merge until
verified), so a decision naming only that anonymous id reads what was collected under it alone
(DESIGN §4, trust of public keys).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.orm import Session

from tactful.consent import service as consent_service
from tactful.consent.gatekeeper import PolicyContext, SubjectAllowance, stranger_allowance, subject_allowance
from tactful.crypto import Keystore
from tactful.decide import assignment, engine, overrides
from tactful.decide import log as decision_log
from tactful.decide.audience_size import AudienceSizes, held_matches
from tactful.decide.conditions import Match
from tactful.decide.context import request_atoms
from tactful.decide.engine import Served
from tactful.decide.explain import Explanation
from tactful.decide.lineup import Lineup
from tactful.decide.logbook import Entry, Logbook
from tactful.decide.steps import ServingSteps
from tactful.decide.walk import Placement
from tactful.decide.wording import Language, Sentences, accepted_language, language_of, sentences
from tactful.errors import InvalidInput
from tactful.policy import Allowance, RequestSignals
from tactful.profiles import service as profiles_service
from tactful.profiles.counters import RealtimeCounters
from tactful.records import quick


@dataclass(frozen=True)
class Ask:
    """What a decision request asks: for whom, which placements, in which context."""

    placements: tuple[str, ...]
    user_id: str | None = None
    anonymous_id: str | None = None
    context: Mapping[str, object] | None = None
    gpc: bool = False


@quick
@dataclass(frozen=True)
class Decided:
    served: tuple[Served, ...]
    entries: tuple[Entry, ...]
    subject_id: uuid.UUID | None
    gpc_due: bool = False
    """The request's Sec-GPC signal is not yet in force for the stored subject: the caller records
    it (`consent.service.record_gpc`, which checks again in its own unit of work) before it answers."""


def placements_of(lineup: Lineup, keys: Sequence[str]) -> list[Placement]:
    """The placements asked for, in order; an unknown key refuses the whole request."""
    unknown = [key for key in dict.fromkeys(keys) if key not in lineup.placements]
    if unknown:
        raise InvalidInput(
            f"no placement is called {unknown[0]!r}; list them, or create it, at /v1/admin/placements",
            code="unknown_placement",
            field="placements",
        )
    return [lineup.placements[key] for key in keys]


def _seam(
    session: Session,
    *,
    keystore: Keystore,
    policy: PolicyContext,
    subject_id: uuid.UUID | None,
    at: datetime,
    gpc: bool,
    request: Mapping[str, object],
    counters: RealtimeCounters | None,
) -> SubjectAllowance:
    signals = RequestSignals(gpc=gpc)
    if subject_id is None:
        return stranger_allowance(policy, at=at, signals=signals, request=request)
    return subject_allowance(
        session,
        keystore=keystore,
        context=policy,
        subject_id=subject_id,
        at=at,
        signals=signals,
        request=request,
        counters=counters,
    )


def decide(
    session: Session,
    *,
    keystore: Keystore,
    policy: PolicyContext,
    lineup: Lineup,
    ask: Ask,
    at: datetime,
    sizes: AudienceSizes | None = None,
    counters: RealtimeCounters | None = None,
    overturns: overrides.Overturns = overrides.none,
) -> Decided:
    """The answers for `ask` at `at`, each with its decision log entry (not yet written); a stored
    subject's matches of audiences held to k are counted in `sizes`. The session atoms come from
    `counters`, read once, when a condition first reads one the Allowance permits. `overturns`
    reads, in this session, the significant experiences asked for that a person's review overturned
    for the subject (none asked for: no read); they never answer. It only reads: a Sec-GPC signal
    is obeyed through the request's signals, and left for the caller to record (`gpc_due`)."""
    if not (ask.user_id or ask.anonymous_id):
        raise InvalidInput("give a user_id or an anonymous_id", code="missing_identity")
    placements = placements_of(lineup, ask.placements)
    subject_id = profiles_service.find_subject(
        session, keystore=keystore, user_id=ask.user_id, anonymous_id=ask.anonymous_id
    )
    catalog = policy.catalog
    found = _seam(
        session,
        keystore=keystore,
        policy=policy,
        subject_id=subject_id,
        at=at,
        gpc=ask.gpc,
        request=request_atoms(catalog, ask.context or {}),
        counters=counters,
    )
    overturned = overrides.overturned_for(
        session, reader=overturns, subject_id=subject_id, placements=placements
    )
    decided = serve(
        lineup=lineup,
        placements=placements,
        allowance=found.allowance,
        view=found.view(),
        ask=ask,
        at=at,
        subject_id=subject_id,
        sizes=sizes,
        overturned=overturned,
    )
    if ask.gpc and subject_id is not None and consent_service.gpc_due(session, subject_id=subject_id):
        return replace(decided, gpc_due=True)
    return decided


def serve(
    *,
    lineup: Lineup,
    placements: Sequence[Placement],
    allowance: Allowance,
    view: Mapping[str, object],
    ask: Ask,
    at: datetime,
    subject_id: uuid.UUID | None,
    sizes: AudienceSizes | None = None,
    overturned: frozenset[str] = frozenset(),
) -> Decided:
    """The answers and their log entries once the seam has answered: no database, so that a
    benchmark or a test can run the whole decision from inputs already read; a stored subject's
    matches of audiences held to k, in shadow or serving, are counted in `sizes`; no answer comes
    from an experience in `overturned`."""
    unit = assignment.Unit.of(user_id=ask.user_id, anonymous_id=ask.anonymous_id)
    outcomes: dict[str, Match] = {}
    steps = {  # one set of steps per channel asked for: rendering depends on it, nothing else does
        channel: ServingSteps(lineup, lineup.renderer, unit, allowance.device_identifiers, channel, outcomes)
        for channel in {placement.channel for placement in placements}
    }
    served = engine.decide(
        placements,
        allowance=allowance,
        view=view,
        at=at,
        steps=lambda placement: steps[placement.channel],
        uses=lineup.atom_uses,
        overturned=overturned,
    )
    if sizes is not None and subject_id is not None and lineup.sketches:
        _count(sizes, lineup, placements, allowance, view=view, subject_id=subject_id, at=at, known=outcomes)
    # The language of the explanation, when the context names a shipped one: kept in the log so
    # that "why am I seeing this?" answers in it later (the context itself is never stored).
    spoken = language_of((ask.context or {}).get("locale"))
    language = spoken.value if spoken is not None else None
    entries = tuple(s.entry(subject_id=subject_id, at=at, language=language) for s in served)
    return Decided(tuple(served), entries, subject_id)


def _count(
    sizes: AudienceSizes,
    lineup: Lineup,
    placements: Sequence[Placement],
    allowance: Allowance,
    *,
    view: Mapping[str, object],
    subject_id: uuid.UUID,
    at: datetime,
    known: Mapping[str, Match],
) -> None:
    # A stored subject only, by its id: a stranger's ids would count them again once stored
    # (`audience_size`, one person, one count).
    matched = held_matches(
        placements,
        sketches=lineup.sketches,
        compiled=lineup.conditions,
        allowance=allowance,
        view=view,
        at=at,
        known=known,
    )
    if matched:
        sizes.record(matched, subject_id, day=at.date())


def language(entry: Entry, *, asked: str | None, accept: str | None) -> Language:
    """The explanation's language: `?locale=`, then `Accept-Language`, then the decision's context,
    then English."""
    return (
        language_of(asked)
        or accepted_language(accept)
        or language_of(entry.explanation.get("language"))
        or Language.EN
    )


def find(session: Session, *, logbook: Logbook | None, decision_id: str) -> Entry | None:
    """A served decision by its id: from this process's buffer until written, then from the log."""
    buffered = logbook.find(decision_id) if logbook is not None else None
    return buffered or decision_log.find(session, decision_id=decision_id)


def sentences_of(entry: Entry, language: Language) -> Sentences:
    explanation = Explanation.from_json(entry.explanation)
    return sentences(explanation, language)
