"""Consent over HTTP: record choices (`PUT /v1/consent`), read them back as the policy gate sees them
at any moment (`GET /v1/consent`), and set objection and restriction (admin).

    PUT  ── Sec-GPC: 1? ──▶ GPC opt-out first ──▶ TC string, then the body's choices ──▶ commit ──▶ state
    GET  ── ledger fold + profile facts + regimes ──▶ policy gate at `at` ──▶ state, basis, proof, history

Who may do what (DESIGN §4): the write key sits in web pages, so with it a grant is accepted for an
`anonymous_id`, or for a `user_id` only with a subject token for that user; a server key may grant
for anyone. A denial or withdrawal is accepted from any key for any subject: it can only narrow.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from tactful.api.context import AppContext, Context
from tactful.api.deps import AUTH_RESPONSES, Problem, require_admin, require_server, require_write
from tactful.collect import service as collect_service
from tactful.config import PolicySettings
from tactful.consent import gpc
from tactful.consent import service as consent_service
from tactful.consent.fold import ConsentAction
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
from tactful.consent.tcf import TCF_PURPOSES, decode_tc_string, tcf_purposes
from tactful.crypto import Keystore
from tactful.errors import InvalidInput, NotFound, PermissionDenied
from tactful.keys.schemas import Principal, Scope
from tactful.keys.tokens import verify_subject_token
from tactful.policy import (
    AgePolicy,
    ProfileSnapshot,
    Regime,
    RequestSignals,
    applicable_regimes,
    evaluate,
    facts_from_profile,
    regime_from_config,
)
from tactful.policy.regimes import BUILTIN_REGIMES
from tactful.policy.state import SPECIAL_FEATURE_1, ConsentSource, ConsentState, ConsentStatus
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


# -- choices from the body ---------------------------------------------------------------------------


def _refusal(current: ConsentStatus) -> ConsentAction:
    # A "no" after a "yes" is a withdrawal; otherwise a denial.
    return ConsentAction.WITHDRAWN if current is ConsentStatus.GRANTED else ConsentAction.DENIED


def _tcf_changes(
    text: str, *, vendor_id: int | None, proof: dict[str, str], current: ConsentState, at: datetime
) -> list[ConsentChange]:
    """What a TC string says, as ledger changes with source `tcf`; the string itself is the proof.
    `essential` is never recorded (TCF implies it); TCF says nothing about the other purposes."""
    read = tcf_purposes(decode_tc_string(text), vendor_id=vendor_id)
    proof = proof | {"tcf_string": text.strip(), "tcf_segment": read.source_segment.value}
    changes: list[ConsentChange] = []
    for purpose in TCF_PURPOSES:
        given = read.segments_with_storage if purpose is _SEGMENTS else read.granted[purpose]
        if purpose is _SEGMENTS and not given and read.granted[purpose]:
            # Purpose 11 without 1: fine for request context, not for a stored profile. Recording
            # nothing keeps the request-context reading open; a denial would close it.
            continue
        status = current.state(purpose, at=at).status
        action = ConsentAction.GRANTED if given else _refusal(status)
        changes.append(ConsentChange.for_purpose(purpose, action, ConsentSource.TCF, proof=proof))
    feature = current.explicit_state(SPECIAL_FEATURE_1, at=at).status
    action = ConsentAction.GRANTED if read.precise_location else _refusal(feature)
    changes.append(ConsentChange.for_explicit(SPECIAL_FEATURE_1, action, ConsentSource.TCF, proof=proof))
    return changes


def _body_changes(
    body: ConsentUpdate, *, proof: dict[str, str], current: ConsentState, at: datetime
) -> list[ConsentChange]:
    source = ConsentSource(body.source)
    common: dict[str, Any] = {"notice_version": body.notice_version, "proof": proof}
    changes: list[ConsentChange] = []
    for purpose, given in sorted(body.purposes.items()):
        action = ConsentAction.GRANTED if given else _refusal(current.state(purpose, at=at).status)
        changes.append(ConsentChange.for_purpose(purpose, action, source, **common))
    for name, given in sorted(body.explicit.items()):
        action = ConsentAction.GRANTED if given else _refusal(current.explicit_state(name, at=at).status)
        changes.append(ConsentChange.for_explicit(name, action, source, **common))
    parental = body.parental_consent
    if parental is not None:
        granted = parental.granted
        action = ConsentAction.GRANTED if granted else _refusal(current.parental_state(at=at).status)
        extra = {"reference": parental.reference} if parental.reference else {}
        changes.append(
            ConsentChange(
                TargetKind.PARENTAL,
                action,
                source,
                notice_version=body.notice_version,
                method=parental.method,
                proof=proof | extra,
            )
        )
    return changes


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


def policy_regimes(policy: PolicySettings) -> tuple[Regime, ...]:
    """The built-in regimes with the configuration's overrides, and its custom regimes."""
    regimes = dict(BUILTIN_REGIMES)
    for name, config in policy.regimes.items():
        builtin = BUILTIN_REGIMES.get(name)
        if builtin is not None and "extends" not in config:
            regime = regime_from_config({"extends": name, **config, "name": name})
            if not any(key in config for key in ("countries", "regions", "establishments")):
                regime = replace(
                    regime,
                    countries=builtin.countries,
                    regions=builtin.regions,
                    establishments=builtin.establishments,
                )
        else:
            regime = regime_from_config({**config, "name": name})
        regimes[name] = regime
    return tuple(regimes.values())


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= 16 else None


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
    policy = context.settings.policy
    state = consent_service.state(session, subject_id=subject_id)
    flags = consent_service.flags(session, subject_id=subject_id, at=at)
    stored = profiles_service.get_profile(session, keystore=keystore, subject_id=subject_id, at=at)
    profile = ProfileSnapshot(values={**stored.traits, **stored.computed})
    country, region = _text(stored.traits.get("traits.country")), _text(stored.traits.get("traits.region"))
    facts = facts_from_profile(profile, restriction=flags.restriction, country=country, region=region)
    establishment = policy.establishment_country or context.catalog.controller.establishment
    regimes = applicable_regimes(establishment, country, region, regimes=policy_regimes(policy))
    allowance = evaluate(
        catalog=context.catalog,
        consent=state,
        regimes=regimes,
        facts=facts,
        signals=RequestSignals(),
        at=at,
        age_policy=AgePolicy(policy.minor_age, policy.assume_minor_when_age_unknown),
    )
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
    proof = {"request_id": request.headers.get("x-request-id", ""), "key_id": str(principal.key_id)}
    signal = gpc.gpc_signal(request.headers.get("sec-gpc"))
    if signal:
        proof[gpc.GPC_PROOF_KEY] = "1"
    token_ok = False
    if body.subject_token is not None:
        if body.user_id is None:
            raise InvalidInput("a subject_token proves a user_id: give the user_id", field="subject_token")
        secret = context.settings.subject_token_secret.get_secret_value()
        verify_subject_token(body.subject_token, secret=secret, user_id=body.user_id, at=now)
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
                session, keystore=keystore, source=merge.source, target=merge.target, at=now
            )
        subject_id = resolution.subject_id
        current = consent_service.state(session, subject_id=subject_id)
        changes: list[ConsentChange] = []
        if body.tcf_string is not None:
            vendor = context.settings.policy.tcf_vendor_id
            changes += _tcf_changes(body.tcf_string, vendor_id=vendor, proof=proof, current=current, at=now)
        changes += _body_changes(body, proof=proof, current=current, at=now)
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
            )
            if recorded is not None:
                # The signal applies first: a choice made in this very request comes after it.
                at = now + timedelta(microseconds=1)
        consent_service.record(
            session, keystore=keystore, subject_id=subject_id, changes=changes, at=at, actor=_actor(principal)
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
    at: Annotated[datetime | None, Query(description="An ISO 8601 time with its offset; default now")] = None,
) -> ConsentView:
    if at is not None and at.tzinfo is None:
        raise InvalidInput("`at` needs a UTC offset, e.g. 2026-03-03T14:02:00Z", field="at")
    when = at or utcnow()
    keystore = context.keystore.cached()
    with context.session() as session:
        subject_id = _subject(session, keystore, user_id, anonymous_id)
        view = consent_view(session, context=context, keystore=keystore, subject_id=subject_id, at=when)
    return view


@router.put(
    "/admin/subjects/flags",
    summary="Set a subject's objection (Art. 21) or restriction of processing (Art. 18)",
    responses={**_INVALID, **_UNKNOWN},
)
def put_flags(body: FlagsUpdate, request: Request, context: Context, principal: require_admin) -> FlagsView:
    now = utcnow()
    proof = {"request_id": request.headers.get("x-request-id", ""), "key_id": str(principal.key_id)}
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
        )
        flags = consent_service.flags(session, subject_id=subject_id, at=now)
    return FlagsView(objection=flags.objection, restriction=flags.restriction)
