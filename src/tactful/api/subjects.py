"""An operator's look-up of a subject over HTTP (admin scope): what Tactful holds about one person.

    GET /v1/admin/subjects/{subject_id}
    GET /v1/admin/subjects?user_id=… | ?anonymous_id=… | ?email=…   (exactly one)
        ──▶ rights.lookup (identities, traits, consent, a page of events, quarantined messages)
        ──▶ one audit entry per read: the key's id and the subject's keyed reference, no identifier

An unknown subject and an erased one get the same 404; a look-up never creates a subject.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from tactful.api.context import AppContext, Context
from tactful.api.deps import AUTH_RESPONSES, Problem, require_admin
from tactful.consent.schemas import MAX_ID
from tactful.errors import InvalidInput, NotFound
from tactful.keys.schemas import Principal
from tactful.rights import lookup
from tactful.rights.lookup import FoundBy, SubjectRecord
from tactful.rights.schemas import SubjectLookup
from tactful.types import utcnow

router = APIRouter(prefix="/v1/admin/subjects", tags=["subjects"], responses=AUTH_RESPONSES)

MAX_EVENTS = 200
MAX_EMAIL = 320
_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No subject is held under this id or identifier (`not_found`)"},
    422: {
        "model": Problem,
        "description": "The query does not match the schema (`invalid_input`), names no identifier or "
        "more than one (`one_identifier`), or carries a cursor this route did not give (`invalid_cursor`)",
    },
}

EventsLimit = Annotated[int, Query(ge=1, le=MAX_EVENTS, description="Events per page, newest first")]
EventsCursor = Annotated[
    str | None,
    Query(min_length=1, max_length=200, description="`events.next_cursor` of the previous page"),
]


def _cursor(last: Mapping[str, Any]) -> str:
    # Opaque to callers: the position of the page's last event (its time, then its id).
    text = f"{last['timestamp'].isoformat()}|{last['id']}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _position(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, last = text.partition("|")
        moment, event_id = datetime.fromisoformat(at), uuid.UUID(last)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidInput(
            "this is not a cursor given by this route", code="invalid_cursor", field="events_cursor"
        )
    return moment, event_id


def _answer(
    context: AppContext,
    principal: Principal,
    response: Response,
    found_by: FoundBy,
    identifiers: dict[str, str | None],
    subject_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> SubjectLookup:
    before = _position(cursor)
    keystore = context.keystore.cached()
    with context.session() as session:
        if subject_id is None:
            subject_id = lookup.find(session, keystore=keystore, **identifiers)
        record: SubjectRecord | None = lookup.look_up(
            session,
            keystore=keystore,
            policy=context.policy_context(),
            subject_id=subject_id,
            found_by=found_by,
            key_id=principal.key_id,
            at=utcnow(),
            events_limit=limit,
            events_before=before,
        )
    # What is held about a person is never kept by a cache on the way.
    response.headers["Cache-Control"] = "no-store"
    if record is None:
        raise NotFound("no subject is held under this id or identifier")
    next_cursor = _cursor(record.events[-1]) if record.events_more and record.events else None
    return SubjectLookup.of(record, next_cursor=next_cursor)


@router.get(
    "",
    summary="Look a subject up by one identifier (user id, anonymous id, or e-mail through the blind index)",
    description="Give exactly one of `user_id`, `anonymous_id` and `email`. Each read is audited.",
    responses=_RESPONSES,
)
def find_subject(
    response: Response,
    context: Context,
    principal: require_admin,
    user_id: Annotated[str | None, Query(min_length=1, max_length=MAX_ID)] = None,
    anonymous_id: Annotated[str | None, Query(min_length=1, max_length=MAX_ID)] = None,
    email: Annotated[str | None, Query(min_length=1, max_length=MAX_EMAIL)] = None,
    events_limit: EventsLimit = 50,
    events_cursor: EventsCursor = None,
) -> SubjectLookup:
    given = {"user_id": user_id, "anonymous_id": anonymous_id, "email": email}
    named = [name for name, value in given.items() if value is not None]
    if len(named) != 1:
        raise InvalidInput("give exactly one of user_id, anonymous_id and email", code="one_identifier")
    found_by = FoundBy(named[0])
    return _answer(context, principal, response, found_by, given, None, events_limit, events_cursor)


@router.get(
    "/{subject_id}",
    summary="What Tactful holds about a subject: identities, traits, consent, events, quarantined messages",
    description="Identities are decrypted and quarantined messages opened for the operator; each read is "
    "audited with the key's id. A merged profile's id leads to the profile it was merged into.",
    responses=_RESPONSES,
)
def get_subject(
    subject_id: uuid.UUID,
    response: Response,
    context: Context,
    principal: require_admin,
    events_limit: EventsLimit = 50,
    events_cursor: EventsCursor = None,
) -> SubjectLookup:
    return _answer(
        context, principal, response, FoundBy.SUBJECT_ID, {}, subject_id, events_limit, events_cursor
    )
