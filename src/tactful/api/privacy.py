"""Privacy requests over HTTP: a person's rights, filed by the operator or by the person themselves.

    POST /v1/privacy/requests            any key ── who may file what ──▶ rights.requests.file_request
                                         opt-out, limit, objection, restriction: run before the answer
    GET  /v1/privacy/requests/{id}       admin key, or the person's subject token (their own only);
                                         an access or portability request's `download_url` (api.exports)
    GET  /v1/privacy/requests            admin: overdue first, filters, pages
    POST /v1/privacy/requests/{id}/extend | /reject                               admin

Who may file (DESIGN §4, trust of public keys): `verified_by: operator` needs an admin key (its id
is recorded); `verified_by: token` needs a subject token for the `user_id` named, with any key. A
request that only narrows (an opt-out, a limit, an objection, a restriction) needs neither, as a
withdrawal needs none; its answer then tells nothing the request does not: no receipt, the earliest
due date of its type (not the person's regimes), and not sooner than `unproven_answer_ms` after it
arrived (the work takes longer for a person held). Only the operator names a person by e-mail.
Filing has a rate limit of its own for public keys. Jobs run in the server (`start_jobs`), whose
worker also deletes export packages past their expiry (`export_sweep`).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status

from tactful.api import ratelimit
from tactful.api.context import AppContext, Context
from tactful.api.deps import AUTH_RESPONSES, Problem, require_admin, require_write
from tactful.api.privacy_jobs import job_context
from tactful.api.queues import queue_cursor, read_queue_cursor
from tactful.collect.proof import SUBJECT_TOKEN_HEADER
from tactful.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from tactful.keys.schemas import Scope
from tactful.keys.tokens import token_subject, verify_subject_token
from tactful.rights import answering, exports
from tactful.rights import recipients as recipients_service
from tactful.rights import requests as requests_service
from tactful.rights.due import ExtensionCode, RequestType, due_dates
from tactful.rights.jobs import JobRunner
from tactful.rights.schemas import (
    ExtensionCreate,
    NamedBy,
    PrivacyRequestAdminView,
    PrivacyRequestCreate,
    PrivacyRequestPage,
    PrivacyRequestView,
    RecipientMark,
    RecipientTaskView,
    RejectionCreate,
    RequestStatus,
    VerifiedBy,
)
from tactful.types import utcnow

router = APIRouter(prefix="/v1/privacy/requests", tags=["privacy"], responses=AUTH_RESPONSES)

MAX_LIST = 200
PublicId = Annotated[
    str, Path(min_length=5, max_length=40, pattern=r"^prq_[A-Za-z0-9_-]+$", description="The request's id")
]
Responses = dict[int | str, dict[str, Any]]
_NOT_FOUND: Responses = {
    404: {"model": Problem, "description": "No request has this id, or none of yours (`request_not_found`)"}
}
_FILING: Responses = {
    403: {
        "model": Problem,
        "description": "The key's scope does not allow this, `verified_by: operator` without an admin key "
        "(`operator_needs_admin_key`), an `email` without an admin key (`email_needs_admin_key`), or a "
        "subject token for another user (`subject_token_mismatch`)",
    },
    401: {
        "model": Problem,
        "description": "Missing or wrong API key, or a subject token that proves nothing "
        "(`subject_token_invalid`, `subject_token_expired`)",
    },
    422: {
        "model": Problem,
        "description": "The body does not match the schema (`invalid_input`); the type needs verification "
        "(`verification_required`); `verified_by: token` without a token (`subject_token_required`) or "
        "without a `user_id` (`token_proves_user_id`); a token without `verified_by: token` "
        "(`token_unused`); changes where none belong (`changes_not_allowed`), none for a rectification "
        "(`changes_required`), or a trait the catalog does not declare (`unknown_trait`)",
    },
}
_CLOSED: Responses = {
    409: {"model": Problem, "description": "The request is closed already (`request_closed`)"}
}


def _secret(context: AppContext) -> str:
    return context.settings.subject_token_secret.get_secret_value()


def _verify(body: PrivacyRequestCreate, token: str | None, context: AppContext, at: datetime) -> None:
    """Who may file what; raises for a filing the caller cannot make."""
    named_by, value = body.named
    if body.verified_by is VerifiedBy.TOKEN:
        if token is None:
            raise InvalidInput(
                "verified_by token needs a subject token", code="subject_token_required", field="token"
            )
        if named_by is not NamedBy.USER_ID:
            raise InvalidInput(
                "a subject token proves a user id: name the user_id",
                code="token_proves_user_id",
                field="user_id",
            )
        verify_subject_token(
            token,
            secret=_secret(context),
            user_id=value,
            at=at,
            max_lifetime=context.settings.subject_token_max_lifetime,
        )
    elif token is not None:
        raise InvalidInput(
            "a subject token is read only with verified_by: token", code="token_unused", field="token"
        )
    requests_service.check_verification(body.type, body.verified_by)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="File a privacy request: access, portability, erasure, rectification, restriction, objection, "
    "opt-out of sale/share, limit on sensitive data",
    description="Answers the request with its legal due date. An opt-out, a limit, an objection or a "
    "restriction is carried out before the answer; the others run in the background (read them back with "
    "`GET /v1/privacy/requests/{id}`). A request for someone Tactful does not hold completes as nothing "
    "held, and creates no one. A request filed without proof is answered the same whoever it names: no "
    "receipt, as due date the earliest any configured regime gives its type, and with a public key no "
    "sooner than `TACTFUL_PRIVACY__UNPROVEN_ANSWER_MS` after it arrived. Only an admin key names a "
    "person by `email`. Filing is rate-limited for public keys.",
    responses=_FILING,
)
def file_privacy_request(
    body: PrivacyRequestCreate, request: Request, context: Context, principal: require_write
) -> PrivacyRequestView:
    arrived = time.monotonic()
    ratelimit.admit_filing(request, ratelimit.Caller(key_id=principal.key_id.hex, scope=principal.scope))
    now = utcnow()
    if body.verified_by is VerifiedBy.OPERATOR and not principal.scope.allows(Scope.ADMIN):
        raise PermissionDenied(
            "only an admin key files a request the operator verified", code="operator_needs_admin_key"
        )
    _verify(body, body.token or request.headers.get(SUBJECT_TOKEN_HEADER) or None, context, now)
    if body.email is not None and not principal.scope.allows(Scope.ADMIN):
        raise PermissionDenied(
            "only an admin key names a person by e-mail address", code="email_needs_admin_key"
        )
    named_by, value = body.named
    keystore = context.keystore.cached()
    calendar = requests_service.calendar_of(context.settings.privacy)
    with context.session() as session:
        record = requests_service.file_request(
            session,
            keystore=keystore,
            policy=context.policy_context(),
            calendar=calendar,
            kind=body.type,
            named_by=named_by,
            value=value,
            verified_by=body.verified_by,
            key_id=principal.key_id,
            at=now,
            actor=f"api:key:{principal.key_id}",
            changes=body.changes,
        )
    if body.type in requests_service.AT_ONCE:
        JobRunner(job_context(context)).run(record.id)
        with context.session() as session:
            record = requests_service.get_request(session, public_id=record.public_id) or record
    if body.verified_by is None:
        if not principal.scope.allows(Scope.SERVER):
            _not_sooner(arrived, context.settings.privacy.unproven_answer_ms)
        # The earliest date any configured regime gives, the same whoever the request names.
        regimes = requests_service.legal_regimes(context.regimes)
        due = due_dates(
            record.type, regimes=regimes, received_at=record.received_at, calendar=calendar
        ).due_at
        return PrivacyRequestView.of(record, with_receipt=False).model_copy(update={"due_at": due})
    return PrivacyRequestView.of(record)


def _not_sooner(arrived: float, floor_ms: int) -> None:
    """Hold the answer until `floor_ms` after the request arrived: whether the person named is held
    changes how long the work takes (their ledger, their audit salt), never when the answer leaves."""
    remaining = arrived + floor_ms / 1000 - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


@router.get(
    "/{public_id}",
    summary="A privacy request's status, due date and receipt",
    description="With an admin key, any request. With another key, only a request that named the user "
    "id whose subject token comes in the X-Tactful-Subject-Token header; any other id answers 404. "
    "Each read is audited.",
    responses={
        **_NOT_FOUND,
        422: {
            "model": Problem,
            "description": "Without an admin key, the header X-Tactful-Subject-Token is missing "
            "(`subject_token_required`)",
        },
    },
)
def get_privacy_request(
    public_id: PublicId, request: Request, response: Response, context: Context, principal: require_write
) -> PrivacyRequestView:
    now = utcnow()
    user_id = None
    if not principal.scope.allows(Scope.ADMIN):
        token = request.headers.get(SUBJECT_TOKEN_HEADER)
        if not token:
            raise InvalidInput(
                "without an admin key, a request is read with the person's subject token "
                f"({SUBJECT_TOKEN_HEADER})",
                code="subject_token_required",
                field=SUBJECT_TOKEN_HEADER,
            )
        user_id = token_subject(
            token, secret=_secret(context), at=now, max_lifetime=context.settings.subject_token_max_lifetime
        )
    keystore = context.keystore.cached()
    with context.session() as session:
        record = requests_service.read_request(
            session, keystore=keystore, public_id=public_id, key_id=principal.key_id, user_id=user_id, at=now
        )
        catalog = context.policy_context().catalog
        tasks = (
            [] if record is None else recipients_service.tasks(session, catalog=catalog, request_id=record.id)
        )
        found = {} if record is None else exports.for_requests(
            session, keystore=keystore, request_ids=[record.id], at=now
        )  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    if record is None:
        raise NotFound("no privacy request has this id", code="request_not_found")
    return PrivacyRequestView.of(record, recipients=_task_views(tasks), download_url=found.get(record.id))


def _task_views(tasks: list[recipients_service.Notice]) -> list[RecipientTaskView]:
    return [
        RecipientTaskView(
            recipient=t.recipient, name=t.name, role=t.role, country=t.country, status=t.status.value,
            updated_at=t.updated_at,
        )
        for t in tasks
    ]  # fmt: skip


@router.get(
    "",
    summary="List privacy requests: overdue first, then by due date",
    responses={
        422: {"model": Problem, "description": "A query parameter is invalid (`invalid_cursor`, ...)"}
    },
)
def list_privacy_requests(
    response: Response,
    context: Context,
    principal: require_admin,
    status: Annotated[RequestStatus | None, Query(description="Only requests in this status")] = None,
    type: Annotated[RequestType | None, Query(description="Only requests of this type")] = None,
    overdue: Annotated[
        bool | None, Query(description="Only open requests past their due date (or not)")
    ] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=300, description="`next_cursor`")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST, description="At most this many")] = 50,
) -> PrivacyRequestPage:
    resumed = read_queue_cursor(cursor)
    # A later page keeps the first page's moment, so that "overdue" means the same on every page.
    at, after = resumed if resumed is not None else (utcnow(), None)
    with context.session() as session:
        found = requests_service.list_requests(
            session, at=at, status=status, kind=type, overdue=overdue, after=after, limit=limit + 1
        )
        requests_service.audit_listing(
            session, keystore=context.keystore, key_id=principal.key_id, count=len(found[:limit]), at=utcnow()
        )
        page = found[:limit]
        urls = exports.for_requests(
            session, keystore=context.keystore, request_ids=[record.id for _, record in page], at=utcnow()
        )
    response.headers["Cache-Control"] = "no-store"
    next_cursor = queue_cursor(page[-1][0], at) if len(found) > limit else None
    return PrivacyRequestPage(
        items=[
            PrivacyRequestAdminView.admin(record, at=at, download_url=urls.get(record.id))
            for _, record in page
        ],
        next_cursor=next_cursor,
    )


@router.post(
    "/{public_id}/extend",
    summary="Extend a request's due date, giving the person the reasons (within the first period)",
    responses={
        **_NOT_FOUND,
        409: {
            "model": Problem,
            "description": "Closed already (`request_closed`), or the law allows no extension now "
            "(`extension_not_extendable`, `extension_notice_late`, `extension_reasons_missing`)",
        },
    },
)
def extend_privacy_request(
    public_id: PublicId, body: ExtensionCreate, context: Context, principal: require_admin
) -> PrivacyRequestAdminView:
    now = utcnow()
    with context.session() as session:
        code, record = answering.extend(
            session,
            keystore=context.keystore,
            calendar=requests_service.calendar_of(context.settings.privacy),
            public_id=public_id,
            reasons=body.reasons,
            at=now,
            actor=f"api:key:{principal.key_id}",
        )
    if code is not ExtensionCode.ACCEPTED:
        raise Conflict("the due date cannot be extended now", code=code.value)
    return PrivacyRequestAdminView.admin(record, at=now)


@router.post(
    "/{public_id}/reject",
    summary="Reject an open request; the receipt gives the reason and, under GDPR, the right to complain",
    responses={**_NOT_FOUND, **_CLOSED},
)
def reject_privacy_request(
    public_id: PublicId, body: RejectionCreate, context: Context, principal: require_admin
) -> PrivacyRequestAdminView:
    now = utcnow()
    with context.session() as session:
        record = answering.reject(
            session,
            keystore=context.keystore,
            public_id=public_id,
            reason=body.reason,
            at=now,
            actor=f"api:key:{principal.key_id}",
        )
    return PrivacyRequestAdminView.admin(record, at=now)


@router.post(
    "/{public_id}/recipients/{recipient}",
    summary="Mark what became of telling one recipient of an erasure, rectification or restriction",
    description="GDPR Art. 19: each recipient the catalog names for the person's data is told, unless that "
    "proves impossible or involves disproportionate effort. A `Notifier` hook may do it; otherwise the "
    "operator does and says so here (`sent`, `failed`, `not_required`). Audited with the key's id. "
    "Answers the request's tasks.",
    responses={
        **_NOT_FOUND,
        422: {"model": Problem, "description": "The body is invalid"},
    },
)
def mark_recipient(
    public_id: PublicId,
    recipient: Annotated[
        str, Path(min_length=1, max_length=64, description="The recipient's key in the catalog")
    ],
    body: RecipientMark,
    context: Context,
    principal: require_admin,
) -> list[RecipientTaskView]:
    now = utcnow()
    with context.session() as session:
        row = answering.mark_recipient(
            session,
            keystore=context.keystore,
            public_id=public_id,
            recipient=recipient,
            status=recipients_service.NoticeStatus(body.status),
            detail=body.detail,
            key_id=principal.key_id,
            at=now,
        )
        tasks = recipients_service.tasks(session, catalog=context.policy_context().catalog, request_id=row.id)
    return _task_views(tasks)
