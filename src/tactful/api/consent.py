"""Consent over HTTP: record choices (`PUT /v1/consent`), read them back as the policy gate sees them
at any moment (`GET /v1/consent`), and set objection, restriction and the CPRA limit on sensitive
personal information (admin).

    PUT  ── Sec-GPC: 1? ──▶ GPC opt-out first ──▶ TC string, then the body's choices ──▶ commit ──▶ state
    GET  ── ledger fold + profile facts + regimes ──▶ policy gate at `at` ──▶ state, basis, proof, history

Who may do what (DESIGN §4): the write key sits in web pages, so with it a grant is accepted for an
`anonymous_id`, or for a `user_id` only with a subject token for that user; a server key may grant
for anyone. A denial or withdrawal is accepted from any key for any subject: it can only narrow.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from tactful.api.context import AppContext, Context
from tactful.api.deps import (
    AUTH_RESPONSES,
    Problem,
    TimeQuery,
    moment,
    require_admin,
    require_server,
    require_write,
)
from tactful.api.middleware import request_id
from tactful.collect import choices, links, realtime
from tactful.collect import proof as proof_tokens
from tactful.consent import gpc
from tactful.consent import service as consent_service
from tactful.consent.choices import body_changes, check_source, tcf_changes
from tactful.consent.fold import ConsentAction
from tactful.consent.gatekeeper import PolicyContext, subject_allowance
from tactful.consent.schemas import (
    MAX_ID,
    AcceptedChoice,
    ConsentAck,
    ConsentChange,
    ConsentUpdate,
    ConsentView,
    ExplicitView,
    FlagsUpdate,
    FlagsView,
    HistoryItem,
    PurposeView,
    RefusedChoice,
    TargetKind,
)
from tactful.crypto import Keystore
from tactful.errors import InvalidInput, NotFound
from tactful.keys.schemas import Principal, Scope
from tactful.policy.state import EMPTY_STATE, ConsentSource, ConsentState
from tactful.policy.wording import words
from tactful.profiles import service as profiles_service
from tactful.types import Purpose, utcnow

router = APIRouter(prefix="/v1", tags=["consent"], responses=AUTH_RESPONSES)

Responses = dict[int | str, dict[str, Any]]
_INVALID: Responses = {
    422: {"model": Problem, "description": "The body or a TC string (`tcf_invalid`) is invalid"}
}
_UNKNOWN: Responses = {404: {"model": Problem, "description": "No subject is known by this identifier"}}
_SEGMENTS = Purpose.SEGMENTS


def _actor(principal: Principal) -> str:
    return f"api:key:{principal.key_id}"


def _policy(context: AppContext) -> PolicyContext:
    # Recording a refusal purges what it leaves without a purpose (atoms, and events through the
    # process's withdrawal hook), which takes the gate's inputs.
    return context.policy_context()


# -- the view ----------------------------------------------------------------------------------------


def consent_view(
    session: Session,
    *,
    context: AppContext,
    keystore: Keystore,
    subject_id: uuid.UUID,
    at: datetime,
    with_history: bool = True,
) -> ConsentView:
    """The subject's consent at `at`, with what the policy gate makes of it."""
    gate = subject_allowance(
        session, keystore=keystore, context=context.policy_context(), subject_id=subject_id, at=at
    )
    allowance, state, flags = gate.allowance, gate.consent, gate.flags
    purposes: dict[Purpose, PurposeView] = {}
    for purpose in Purpose:
        deciding = state.state(purpose, at=at)
        verdict = allowance.purposes[purpose]
        purposes[purpose] = PurposeView(
            state=deciding.status.value,
            legal_basis=verdict.legal_basis if verdict.allowed else None,
            allowed=verdict.allowed,
            reason=words(verdict.code, verdict.params),
            reason_code=verdict.code.value,
            reason_params=verdict.parameters,
            at=deciding.at,
            source=deciding.source.value if deciding.source else None,
            proof=dict(deciding.record.proof) if deciding.record else {},
        )
    explicit: dict[str, ExplicitView] = {}
    for name in sorted(state.explicit):
        given = state.explicit_state(name, at=at)
        if given.record is not None:
            source = given.source.value if given.source else None
            explicit[name] = ExplicitView(state=given.status.value, at=given.at, source=source)
    history = consent_service.history(session, subject_id=subject_id, until=at) if with_history else []
    return ConsentView(
        at=at,
        regimes=list(allowance.regimes),
        minor=allowance.minor,
        max_level=allowance.ceiling,
        purposes=purposes,
        explicit=explicit,
        objection=state.objected(at=at),
        restriction=flags.restriction,
        limit_sensitive=flags.limit_sensitive,
        gpc=state.gpc_applied(at=at),
        history=[HistoryItem.of(entry) for entry in history],
    )


# -- routes ------------------------------------------------------------------------------------------


@router.put(
    "/consent",
    summary="Record consent choices (banner, API, TC string, parental consent); answers what was recorded",
    description=(
        "Refusals and withdrawals are accepted from any key for any subject. A grant widens what may be "
        "done, so for a `user_id` (or an `anonymous_id` linked to a user) it needs a server key or a "
        "`subject_token` for that user: without one it is refused in the answer (`subject_token_required`) "
        "while the refusals of the same request are recorded. An `anonymous_id` and a `user_id` are joined "
        "only with that proof. A write key's answer never shows the person's consent state; a server or "
        "admin key's carries it in `state`."
    ),
    responses={
        **_INVALID,
        422: {
            "model": Problem,
            "description": "The body is invalid, records no choice (`no_choice`), holds choices its "
            "`source` cannot have made (`source_mismatch`, `tcf_string_required`), says `import` without "
            "a server key (`import_needs_server_key`), or a TC string is invalid (`tcf_invalid`)",
        },
    },
)
def put_consent(
    body: ConsentUpdate, request: Request, context: Context, principal: require_write
) -> ConsentAck:
    now = utcnow()
    proof = {"request_id": request_id(request.headers.get("x-request-id")), "key_id": str(principal.key_id)}
    signal = gpc.gpc_signal(request.headers.get("sec-gpc"))
    if not signal and not (body.purposes or body.explicit or body.parental_consent or body.tcf_string):
        raise InvalidInput(
            "the request records no choice: give purposes, explicit, parental_consent or a tcf_string",
            code="no_choice",
        )
    check_source(body)
    trusted = principal.scope.allows(Scope.SERVER)
    if body.source == "import" and not trusted:
        # An import speaks for people from another system's records: a backend's word, not a page's.
        raise InvalidInput("source import needs a server key", code="import_needs_server_key", field="source")
    token_ok, token_code = _token(body, request, context, now)
    if token_ok:
        proof["subject_token"] = "verified"  # noqa: S105 - a mark, not a secret
    if signal:
        proof[gpc.GPC_PROOF_KEY] = "1"
    assert body.user_id is not None or body.anonymous_id is not None  # the schema requires one
    claim = links.Claim(
        body.anonymous_id,
        body.user_id,
        proven=frozenset({body.user_id}) if token_ok and body.user_id else frozenset(),
        trusted=trusted,
    )
    vendor = context.settings.policy.tcf_vendor_id

    def changes_for(current: ConsentState) -> list[ConsentChange]:
        found: list[ConsentChange] = []
        if body.tcf_string is not None:
            found += tcf_changes(body.tcf_string, vendor_id=vendor, proof=proof, current=current, at=now)
        return found + body_changes(body, proof=proof, current=current, at=now)

    keystore = context.keystore.cached()
    with context.session() as session:
        recorded = choices.record_choices(
            session,
            keystore=keystore,
            policy=_policy(context),
            claim=claim,
            changes_for=changes_for,
            gpc_proof=proof if signal else None,
            at=now,
            actor=_actor(principal),
            token_refused=token_code,
        )
        state = None
        if trusted and recorded.subject_id is not None:
            state = consent_view(
                session, context=context, keystore=keystore, subject_id=recorded.subject_id, at=recorded.at
            )
    if recorded.merges:  # committed: the merged visitor's session goes on under the survivor
        behaviour = realtime.Behaviour(context.catalog)
        behaviour.merged(recorded.merges)
        behaviour.feed(context.counters, at=now)
    if not trusted:
        return _public_ack(changes_for(EMPTY_STATE), claim=claim, token_code=token_code, gpc=signal)
    return ConsentAck(
        recorded=[
            AcceptedChoice(target=c.label, choice="granted" if c.grants else "refused")
            for c in recorded.changes
        ],
        refused=[RefusedChoice(target=target, code=code) for target, code in recorded.refused],
        gpc=signal,
        state=state,
    )


def _public_ack(
    wanted: Sequence[ConsentChange], *, claim: links.Claim, token_code: str, gpc: bool
) -> ConsentAck:
    """A write key's answer, made from the request alone (DESIGN §4): the same whatever is stored,
    so that a page learns nothing of the person's consent, identity or links.

    Refusals are always recorded. A grant naming a user id is recorded exactly when the request
    proves that user (the request shows it); a grant naming only an anonymous id depends on whether
    the id speaks for an identified person, so it is `unconfirmed`. A link's refusal depends on
    whether the link already holds, so it is not told either (a server key's answer, `/metrics` and
    the audit trail carry it)."""
    recorded: list[AcceptedChoice] = []
    refused: list[RefusedChoice] = []
    unconfirmed: list[AcceptedChoice] = []
    for change in wanted:
        choice = AcceptedChoice(target=change.label, choice="granted" if change.grants else "refused")
        if not change.grants:
            recorded.append(choice)
        elif claim.user_id is None:
            unconfirmed.append(choice)
        elif claim.proves(claim.user_id):
            recorded.append(choice)
        else:
            refused.append(RefusedChoice(target=change.label, code=token_code))
    return ConsentAck(recorded=recorded, refused=refused, unconfirmed=unconfirmed, gpc=gpc, state=None)


def _token(body: ConsentUpdate, request: Request, context: AppContext, at: datetime) -> tuple[bool, str]:
    """Whether a subject token (in the body, else the header) proves the body's user id, and the
    code a refused grant then carries. A token that proves nothing loses no refusal: the request
    goes on without proof."""
    token = body.subject_token or request.headers.get(proof_tokens.SUBJECT_TOKEN_HEADER) or None
    if token is None:
        return False, "subject_token_required"
    if body.user_id is None:
        raise InvalidInput("a subject_token proves a user_id: give the user_id", field="subject_token")
    check = proof_tokens.token_check(
        context.settings.subject_token_secret.get_secret_value(),
        max_lifetime=context.settings.subject_token_max_lifetime,
    )
    if check(token, body.user_id, at):
        return True, "subject_token_required"
    return False, proof_tokens.INVALID_TOKEN


def _subject(
    session: Session, keystore: Keystore, user_id: str | None, anonymous_id: str | None
) -> uuid.UUID:
    if not user_id and not anonymous_id:
        raise InvalidInput("give a user_id or an anonymous_id", code="missing_identity")
    found = profiles_service.find_subject(
        session, keystore=keystore, user_id=user_id, anonymous_id=anonymous_id
    )
    if found is None:
        raise NotFound("no subject is known by this identifier")
    return found


@router.get(
    "/consent",
    summary="A subject's consent now or at a past moment: state, basis and proof per purpose, history",
    responses={**_INVALID, **_UNKNOWN},
)
def get_consent(
    context: Context,
    principal: require_server,
    user_id: Annotated[str | None, Query(min_length=1, max_length=MAX_ID)] = None,
    anonymous_id: Annotated[str | None, Query(min_length=1, max_length=MAX_ID)] = None,
    at: TimeQuery = None,
) -> ConsentView:
    when = utcnow() if at is None else moment(at, field="at")
    keystore = context.keystore.cached()
    with context.session() as session:
        subject_id = _subject(session, keystore, user_id, anonymous_id)
        view = consent_view(session, context=context, keystore=keystore, subject_id=subject_id, at=when)
    return view


@router.put(
    "/admin/subjects/flags",
    summary="Set a subject's objection (Art. 21), restriction of processing (Art. 18) or limit on the "
    "use of sensitive personal information (CPRA)",
    responses={**_INVALID, **_UNKNOWN},
)
def put_flags(body: FlagsUpdate, request: Request, context: Context, principal: require_admin) -> FlagsView:
    now = utcnow()
    proof = {"request_id": request_id(request.headers.get("x-request-id")), "key_id": str(principal.key_id)}
    changes = [
        ConsentChange(
            kind,
            ConsentAction.DENIED if value else ConsentAction.GRANTED,
            ConsentSource.API,
            notice_version=body.notice_version,
            proof=proof,
        )
        for kind, value in (
            (TargetKind.LEGITIMATE_INTEREST, body.objection),
            (TargetKind.RESTRICTION, body.restriction),
            (TargetKind.LIMIT_SENSITIVE, body.limit_sensitive),
        )
        if value is not None
    ]
    keystore = context.keystore.cached()
    with context.session() as session:
        subject_id = _subject(session, keystore, body.user_id, body.anonymous_id)
        consent_service.record(
            session,
            keystore=keystore,
            subject_id=subject_id,
            changes=changes,
            at=now,
            actor=_actor(principal),
            policy=_policy(context),
        )
        flags = consent_service.flags(session, subject_id=subject_id, at=now)
    return FlagsView(
        objection=flags.objection, restriction=flags.restriction, limit_sensitive=flags.limit_sensitive
    )
