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
from datetime import datetime, timedelta
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
from tactful.collect import service as collect_service
from tactful.consent import gpc
from tactful.consent import service as consent_service
from tactful.consent.choices import body_changes, tcf_changes
from tactful.consent.fold import ConsentAction
from tactful.consent.gatekeeper import PolicyContext, subject_allowance
from tactful.consent.schemas import (
    MAX_ID,
    ConsentChange,
    ConsentUpdate,
    ConsentView,
    ExplicitView,
    FlagsUpdate,
    FlagsView,
    HistoryItem,
    PurposeView,
    TargetKind,
)
from tactful.crypto import Keystore
from tactful.errors import InvalidInput, NotFound, PermissionDenied
from tactful.keys.schemas import Principal, Scope
from tactful.keys.tokens import verify_subject_token
from tactful.policy.state import ConsentSource
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


def _check_grants(
    body: ConsentUpdate, principal: Principal, changes: Sequence[ConsentChange], token_ok: bool
) -> None:
    if principal.scope.allows(Scope.SERVER) or not any(c.grants for c in changes):
        return
    if body.user_id is not None and not token_ok:
        raise PermissionDenied(
            "a write key grants consent for a user_id only with a subject_token for that user "
            "(withdrawing or denying needs none)",
            code="subject_token_required",
        )


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
        session,
        keystore=keystore,
        catalog=context.catalog,
        policy=context.settings.policy,
        regimes=context.regimes,
        subject_id=subject_id,
        at=at,
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
            reason=verdict.reason,
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
    summary="Record consent choices (banner, API, TC string, parental consent) and return the new state",
    responses={
        **_INVALID,
        403: {
            "model": Problem,
            "description": "A grant for a user_id with a write key and no valid subject token",
        },
    },
)
def put_consent(
    body: ConsentUpdate, request: Request, context: Context, principal: require_write
) -> ConsentView:
    now = utcnow()
    proof = {"request_id": request_id(request.headers.get("x-request-id")), "key_id": str(principal.key_id)}
    signal = gpc.gpc_signal(request.headers.get("sec-gpc"))
    if signal:
        proof[gpc.GPC_PROOF_KEY] = "1"
    token_ok = False
    if body.subject_token is not None:
        if body.user_id is None:
            raise InvalidInput("a subject_token proves a user_id: give the user_id", field="subject_token")
        secret = context.settings.subject_token_secret.get_secret_value()
        verify_subject_token(
            body.subject_token,
            secret=secret,
            user_id=body.user_id,
            at=now,
            max_lifetime=context.settings.subject_token_max_lifetime,
        )
        token_ok = True
        proof["subject_token"] = "verified"  # noqa: S105 - a mark, not a secret
    trusted = principal.scope.allows(Scope.SERVER) or token_ok
    # Without proof of the user id, a public key must not tie an anonymous id to it (that would merge
    # a stranger's browsing into the user's profile): it then speaks for the user id alone.
    anonymous_id = body.anonymous_id if trusted or body.user_id is None else None
    keystore = context.keystore.cached()
    with context.session() as session:
        resolution = profiles_service.resolve(
            session, keystore=keystore, anonymous_id=anonymous_id, user_id=body.user_id, at=now
        )
        for merge in resolution.merges:
            collect_service.move_subject(session, source=merge.source, target=merge.target)
            consent_service.merge_ledgers(
                session,
                keystore=keystore,
                source=merge.source,
                target=merge.target,
                at=now,
                policy=_policy(context),
            )
        subject_id = resolution.subject_id
        current = consent_service.state(session, subject_id=subject_id)
        changes: list[ConsentChange] = []
        if body.tcf_string is not None:
            vendor = context.settings.policy.tcf_vendor_id
            changes += tcf_changes(body.tcf_string, vendor_id=vendor, proof=proof, current=current, at=now)
        changes += body_changes(body, proof=proof, current=current, at=now)
        _check_grants(body, principal, changes, token_ok)
        at = now
        if signal:
            recorded = consent_service.record_gpc(
                session,
                keystore=keystore,
                subject_id=subject_id,
                at=now,
                proof=proof,
                actor=_actor(principal),
                policy=_policy(context),
            )
            if recorded is not None:
                # The signal applies first: a choice made in this very request comes after it.
                at = now + timedelta(microseconds=1)
        consent_service.record(
            session,
            keystore=keystore,
            subject_id=subject_id,
            changes=changes,
            at=at,
            actor=_actor(principal),
            policy=_policy(context),
        )
        view = consent_view(
            session,
            context=context,
            keystore=keystore,
            subject_id=subject_id,
            at=at,
            with_history=trusted or body.user_id is None,
        )
    return view


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
