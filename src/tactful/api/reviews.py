"""Human review of significant decisions over HTTP (GDPR Art. 22(3)): the person asks, an operator
answers, the person reads the answer.

    POST /v1/decisions/{id}/review     server key; or write key + the person's subject token
    GET  /v1/decisions/{id}/review     the same callers: the outcome and what replaced the decision
    GET  /v1/admin/reviews             admin: overdue first, then by due date; filters, pages
    GET  /v1/admin/reviews/{id}        admin: the decision explained (codes, no values), the statement
    POST /v1/admin/reviews/{id}/answer admin: upheld | overturned, with the reason; the key recorded;
                                       an overturn binds the person's later decisions
                                       (`rights/review_records.py`)

Review and contest are one endpoint with a `kind`, rather than two: they are filed, answered and
read in the same way, and one route keeps one place where who may file is decided. A write key sits
in web pages, so it acts only on a decision of the user whose subject token comes with it: any other
decision, like an unknown id, answers 404 `decision_not_found` (existence is never revealed). A
token that proves nothing is refused (401) before any decision is looked up.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status

from tactful.api.context import AppContext, Context
from tactful.api.deps import AUTH_RESPONSES, Problem, require_admin, require_write
from tactful.api.queues import queue_cursor, read_queue_cursor
from tactful.collect.proof import SUBJECT_TOKEN_HEADER
from tactful.keys.schemas import Principal, Scope
from tactful.keys.tokens import token_subject
from tactful.rights import review_queue, reviews
from tactful.rights.due import BusinessCalendar
from tactful.rights.review_schemas import (
    DecisionReviews,
    ReviewAdminView,
    ReviewAnswer,
    ReviewCreate,
    ReviewPage,
    ReviewSummary,
    ReviewView,
)
from tactful.rights.reviews import Caller, ReviewKind, ReviewStatus
from tactful.types import utcnow

decisions = APIRouter(prefix="/v1/decisions", tags=["decisions"], responses=AUTH_RESPONSES)
admin = APIRouter(prefix="/v1/admin/reviews", tags=["reviews"], responses=AUTH_RESPONSES)

MAX_LIST = 200
Responses = dict[int | str, dict[str, Any]]
DecisionId = Annotated[str, Path(min_length=4, max_length=64, pattern=r"^dc_[A-Za-z0-9_-]+$")]
ReviewId = Annotated[
    str, Path(min_length=4, max_length=40, pattern=r"^rv_[A-Za-z0-9_-]+$", description="The review's id")
]
_WHO = (
    "A server key may act on any decision. A write key acts only on a decision of the user whose subject "
    f"token comes with it (`subject_token` in the body, or the header {SUBJECT_TOKEN_HEADER}); without "
    "one, or with another user's, the answer is the 404 of an unknown id."
)
_TOKEN: Responses = {
    401: {
        "model": Problem,
        "description": "Missing or wrong API key, or a subject token that proves nothing "
        "(`subject_token_invalid`, `subject_token_expired`)",
    },
}
_FILING: Responses = {
    **_TOKEN,
    404: {
        "model": Problem,
        "description": "No decision has this id, or none this caller may act on (`decision_not_found`)",
    },
    409: {
        "model": Problem,
        "description": "The decision has no significant effect: there is no review to ask for "
        "(`decision_not_significant`)",
    },
}
_READING: Responses = {
    **_TOKEN,
    404: {
        "model": Problem,
        "description": "No decision has this id, or none this caller may act on (`decision_not_found`); "
        "no review of it was asked for (`review_not_found`)",
    },
}
_NOT_FOUND: Responses = {404: {"model": Problem, "description": "No review has this id (`review_not_found`)"}}


def calendar_of(context: AppContext) -> BusinessCalendar:
    """The privacy calendar: a review's month is counted in the business's time zone."""
    privacy = context.settings.privacy
    return BusinessCalendar(
        timezone=privacy.timezone, country=privacy.holiday_country, subdivision=privacy.holiday_subdivision
    )


def caller_of(context: AppContext, principal: Principal, token: str | None, at: datetime) -> Caller:
    """Who asks: a server key is trusted with any decision; a public key with the decisions of the
    user its subject token proves (none without one). An unsound token raises 401 here, before any
    decision is looked up."""
    if principal.scope.allows(Scope.SERVER):
        return Caller(key_id=principal.key_id, trusted=True)
    if not token:
        return Caller(key_id=principal.key_id, trusted=False)
    user_id = token_subject(
        token,
        secret=context.settings.subject_token_secret.get_secret_value(),
        at=at,
        max_lifetime=context.settings.subject_token_max_lifetime,
    )
    return Caller(key_id=principal.key_id, trusted=False, user_id=user_id)


@decisions.post(
    "/{decision_id}/review",
    status_code=status.HTTP_201_CREATED,
    summary="Ask for human review of a significant decision, or contest it, with your point of view",
    description="For a decision with a significant effect (a price, an eligibility; GDPR Art. 22(3)): "
    "a person at the operator reviews it and answers within a month. `kind` is `review` (human "
    "intervention) or `contest` (the person disputes it); one of each per decision, and filing again "
    "answers the one filed first (200, its statement unchanged). The statement is kept without e-mail "
    "addresses, phone or card numbers, sealed under the person's data key. " + _WHO + " A decision is "
    "found once its log entry is written (at most 100 ms after it was made). Rate-limited for public keys.",
    responses={**_FILING, 200: {"model": ReviewView, "description": "Filed before: the first filing"}},
)
def file_review(
    decision_id: DecisionId,
    body: ReviewCreate,
    request: Request,
    response: Response,
    context: Context,
    principal: require_write,
) -> ReviewView:
    now = utcnow()
    token = body.subject_token or request.headers.get(SUBJECT_TOKEN_HEADER) or None
    caller = caller_of(context, principal, token, now)
    keystore = context.keystore.cached()
    with context.session() as session:
        record, filed = reviews.file_review(
            session, keystore=keystore, logbook=context.logbook, calendar=calendar_of(context),
            decision_id=decision_id, kind=body.kind, statement=body.statement, caller=caller, at=now,
        )  # fmt: skip
    if not filed:
        response.status_code = status.HTTP_200_OK
    return ReviewView.of(record)


@decisions.get(
    "/{decision_id}/review",
    summary="The reviews asked for a decision: status, due date, outcome, the reason, what replaced it",
    description="What the person may read of the reviews they asked for: the outcome and the "
    "reviewer's reason once answered, and for an overturned decision what replaces it (the "
    "placement's default). "
    + _WHO.replace("in the body, or the header", "only in the header")
    + " Each read is audited.",
    responses=_READING,
)
def read_reviews(
    decision_id: DecisionId, request: Request, response: Response, context: Context, principal: require_write
) -> DecisionReviews:
    now = utcnow()
    caller = caller_of(context, principal, request.headers.get(SUBJECT_TOKEN_HEADER) or None, now)
    keystore = context.keystore.cached()
    with context.session() as session:
        found = reviews.read_reviews(
            session, keystore=keystore, logbook=context.logbook, decision_id=decision_id, caller=caller,
            at=now,
        )  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    return DecisionReviews(decision_id=decision_id, reviews=[ReviewView.of(r) for r in found])


@admin.get(
    "",
    summary="The review queue: overdue first, then by due date",
    description="Reviews and contests of significant decisions. Open reviews past their due date come "
    "first, then every review by due date. Filter by status, kind or overdue; page with `next_cursor` "
    "(a later page keeps the first page's moment, so that overdue means the same on every page). "
    "The listing is audited.",
    responses={
        422: {"model": Problem, "description": "A query parameter is invalid (`invalid_cursor`, ...)"}
    },
)
def list_reviews(
    response: Response,
    context: Context,
    principal: require_admin,
    status: Annotated[ReviewStatus | None, Query(description="Only reviews in this status")] = None,
    kind: Annotated[ReviewKind | None, Query(description="Only reviews or only contests")] = None,
    overdue: Annotated[
        bool | None, Query(description="Only open reviews past their due date (or not)")
    ] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=300, description="`next_cursor`")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST, description="At most this many")] = 50,
) -> ReviewPage:
    resumed = read_queue_cursor(cursor)
    at, after = resumed if resumed is not None else (utcnow(), None)
    with context.session() as session:
        found = review_queue.list_reviews(
            session, at=at, status=status, kind=kind, overdue=overdue, after=after, limit=limit + 1
        )
        review_queue.audit_listing(
            session, keystore=context.keystore, key_id=principal.key_id, count=len(found[:limit]), at=utcnow()
        )
    response.headers["Cache-Control"] = "no-store"
    page = found[:limit]
    next_cursor = queue_cursor(page[-1][0], at) if len(found) > limit else None
    return ReviewPage(items=[ReviewSummary.of(r, at=at) for _, r in page], next_cursor=next_cursor)


@admin.get(
    "/{review_id}",
    summary="A review with the decision explained and the person's statement",
    description="The decision as its log explained it: the variation, the level, the legal basis of each "
    "purpose, each atom read with its category and weight, and the reasons it went no higher, in codes "
    "and in plain English; never an atom's value. Also the person's statement (minimised) and the "
    "subject id, which opens their profile at `/v1/admin/subjects/{id}`. Each read is audited.",
    responses=_NOT_FOUND,
)
def get_review(
    review_id: ReviewId, response: Response, context: Context, principal: require_admin
) -> ReviewAdminView:
    now = utcnow()
    keystore = context.keystore.cached()
    with context.session() as session:
        record = review_queue.admin_view(
            session, keystore=keystore, public_id=review_id, key_id=principal.key_id, at=now
        )
    response.headers["Cache-Control"] = "no-store"
    return ReviewAdminView.admin(record, at=now)


@admin.post(
    "/{review_id}/answer",
    summary="Answer a review: the decision is upheld, or overturned and replaced by the default",
    description="A person's answer to the review, with the reason the person will read (kept without "
    "e-mail addresses, phone or card numbers, sealed under their data key). An overturned decision is "
    "replaced by its placement's default as it serves now (it reads nothing about the person and is "
    "never significant); the person and the site's backend read it at `GET /v1/decisions/{id}/review`. "
    "An overturn also binds the person's later decisions, from the very next `POST /v1/decide`: the "
    "experience is never served to them again (skip code `overturned_by_review` in the explanation), "
    "across its later versions and across merges of their profiles, for as long as it has a significant "
    "effect; nothing significant below it on the placement answers in its place. It binds until the "
    "review's record is deleted: `TACTFUL_PRIVACY__REVIEW_RECORD_DAYS` after the answer (default 730), "
    "or when the person is erased. The answering key is recorded and the answer audited.",
    responses={
        **_NOT_FOUND,
        409: {"model": Problem, "description": "The review was answered already (`review_answered`)"},
        422: {
            "model": Problem,
            "description": "The body does not match the schema (`invalid_input`), or the reason is blank",
        },
    },
)
def answer_review(
    review_id: ReviewId, body: ReviewAnswer, context: Context, principal: require_admin
) -> ReviewAdminView:
    now = utcnow()
    keystore = context.keystore.cached()
    lineup = context.lineup()
    with context.session() as session:
        record = review_queue.answer_review(
            session, keystore=keystore, public_id=review_id, outcome=body.outcome, reason=body.reason,
            lineup=lineup, key_id=principal.key_id, at=now,
        )  # fmt: skip
    return ReviewAdminView.admin(record, at=now)


routers = (decisions, admin)
