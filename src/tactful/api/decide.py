"""Decisions over HTTP: `POST /v1/decide` answers placements for a subject; `GET
/v1/decisions/{id}/explanation` tells the person why they see what they see.

    POST /v1/decide (server key) ── lineup (what serves) ── one reading unit of work: find the
        subject, the seam, the walk ──▶ answers ──▶ Logbook (after)
        ── Sec-GPC that changes their state? ──▶ recorded in its own unit, before the answer
    GET /v1/decisions/{id}/explanation (write key) ── buffer, then the log ──▶ sentences (en, sv)

A decision id is random and unguessable (128 bits), so the write key that sits in web pages may ask
for an explanation with it: unknown, expired and erased ids get the same 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import JsonValue

from tactful.api.context import Context
from tactful.api.deps import AUTH_RESPONSES, Problem, require_server, require_write
from tactful.api.middleware import request_id
from tactful.consent import gpc
from tactful.consent import service as consent_service
from tactful.decide import decisions
from tactful.decide.schemas import DecideRequest, DecideResponse, DecisionView, ExplanationView
from tactful.errors import NotFound
from tactful.rights import review_records
from tactful.types import utcnow

router = APIRouter(prefix="/v1", tags=["decisions"], responses=AUTH_RESPONSES)

_DECIDE_RESPONSES: dict[int | str, dict[str, object]] = {
    422: {
        "model": Problem,
        "description": "The body does not match the schema (`invalid_input`), names no id "
        "(`missing_identity`) or names a placement that does not exist (`unknown_placement`)",
    }
}
_EXPLANATION_RESPONSES: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "No decision has this id (unknown, expired or erased alike)"}
}
DecisionId = Annotated[str, Path(min_length=4, max_length=64, pattern=r"^dc_[A-Za-z0-9_-]+$")]


@router.post(
    "/decide",
    summary="Decide what each placement shows a subject, with the level reached and why",
    responses=_DECIDE_RESPONSES,
)
def decide(
    body: DecideRequest, request: Request, context: Context, principal: require_server
) -> DecideResponse:
    now = utcnow()
    # What serves is read before the unit of work: building it may need the database itself.
    lineup = context.lineup()
    policy = context.policy_context()
    ask = decisions.Ask(
        placements=tuple(body.placements),
        user_id=body.user_id,
        anonymous_id=body.anonymous_id,
        context=body.context,
        gpc=gpc.gpc_signal(request.headers.get("sec-gpc")),
    )
    keystore = context.keystore.cached()
    # Deciding only reads, and on SQLite waits for no writer (the decision log's, collection's); a
    # Sec-GPC signal is obeyed by the decision itself, and a write unit is opened only when recording
    # it changes the subject's state (once, until lifted), before the answer is sent.
    with context.reading() as session:
        decided = decisions.decide(
            session,
            keystore=keystore,
            policy=policy,
            lineup=lineup,
            ask=ask,
            at=now,
            sizes=context.lineups.sizes if context.lineups is not None else None,
            counters=context.counters,
            overturns=review_records.overturned,
        )
    if decided.gpc_due and decided.subject_id is not None:
        proof = {
            "request_id": request_id(request.headers.get("x-request-id")),
            "key_id": str(principal.key_id),
        }
        with context.session() as session:
            consent_service.record_gpc(
                session, keystore=keystore, subject_id=decided.subject_id, at=now, proof=proof, policy=policy
            )
    if context.logbook is not None:
        for entry in decided.entries:
            context.logbook.add(entry)
    return DecideResponse(
        decisions=[
            DecisionView(
                placement=s.answer.placement,
                decision_id=s.decision_id,
                experience=s.answer.experience,
                experience_version=s.answer.experience_version,
                variation=s.answer.variation,
                content=_json(s.answer.content),
                level=str(s.answer.level),
                strategy=str(s.answer.strategy),
                propensity=s.answer.propensity,
                explanation=_json_object(s.explained),
            )
            for s in decided.served
        ]
    )


def _json(value: object) -> JsonValue:
    return value  # type: ignore[return-value]  # content is JSON as stored and rendered


def _json_object(value: dict[str, object]) -> dict[str, JsonValue]:
    return value  # type: ignore[return-value]  # the explanation's JSON form


@router.get(
    "/decisions/{decision_id}/explanation",
    summary='"Why am I seeing this?": the person-facing explanation of one decision',
    responses=_EXPLANATION_RESPONSES,
)
def explanation(
    decision_id: DecisionId,
    response: Response,
    context: Context,
    principal: require_write,
    locale: Annotated[str | None, Query(max_length=35, description="A language tag: en or sv")] = None,
    accept_language: Annotated[str | None, Header(max_length=512)] = None,
) -> ExplanationView:
    with context.reading() as session:
        entry = decisions.find(session, logbook=context.logbook, decision_id=decision_id)
    if entry is None:
        raise NotFound("no decision has this id", code="decision_not_found")
    response.headers["Cache-Control"] = "no-store"
    language = decisions.language(entry, asked=locale, accept=accept_language)
    words = decisions.sentences_of(entry, language)
    return ExplanationView(
        decision_id=entry.decision_id,
        placement=entry.placement,
        language=language.value,
        level=entry.level,
        decided_at=entry.decided_at,
        experience_version=entry.experience_version,
        summary=list(words.summary),
        data_used=list(words.data_used),
        why_not_higher=list(words.why_not_higher),
        what_would_change=list(words.what_would_change),
        exploration=bool(entry.explanation.get("exploration")),
        holdout=bool(entry.explanation.get("holdout")),
        significant=bool(entry.explanation.get("significant")),
        your_rights=list(words.your_rights),
    )
