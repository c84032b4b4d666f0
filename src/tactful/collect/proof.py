"""Subject tokens carried by collected messages: taken out before anything else reads the message,
and checked against the user ids the message names (DESIGN §4).

    message.context.tactful.subject_token ──────────┐ (proves userId)
    message.context.tactful.previous_subject_token ─┤ (proves previousId: an alias of two user ids)
    X-Tactful-Subject-Token header ─────────────────┘ (proves userId of every message)
        ▼ verify (HS256, aud "tactful", exp) ──▶ the user ids this message proves

The tokens are removed from the message first, so they are never validated as data, stored,
quarantined or logged. A token that proves nothing (bad, expired, for someone else) is reported
back as `subject_token_invalid` and the message is treated as having no proof.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from tactful.errors import NotAuthenticated, PermissionDenied
from tactful.keys.tokens import verify_subject_token

SUBJECT_TOKEN_HEADER = "X-Tactful-Subject-Token"  # noqa: S105 - a header name, not a secret
TOKEN_FIELD = "subject_token"  # noqa: S105 - a field name, not a secret
PREVIOUS_TOKEN_FIELD = "previous_subject_token"  # noqa: S105 - a field name, not a secret
INVALID_TOKEN = "subject_token_invalid"  # noqa: S105 - a reason code

TokenCheck = Callable[[str, str, datetime], bool]
"""(token, user id, at) → whether the token proves that user id at that time."""


@dataclass(frozen=True)
class Carried:
    """The tokens one message carried (in its body)."""

    subject_token: str | None = None
    previous_subject_token: str | None = None


def take_tokens(message: object) -> tuple[object, Carried]:
    """`message` without `context.tactful`'s tokens (a copy when it had any), and the tokens."""
    if not isinstance(message, Mapping):
        return message, Carried()
    context = message.get("context")
    tactful = context.get("tactful") if isinstance(context, Mapping) else None
    if not isinstance(tactful, Mapping) or not (TOKEN_FIELD in tactful or PREVIOUS_TOKEN_FIELD in tactful):
        return message, Carried()
    assert isinstance(context, Mapping)
    token, previous = tactful.get(TOKEN_FIELD), tactful.get(PREVIOUS_TOKEN_FIELD)
    rest = {k: v for k, v in tactful.items() if k not in (TOKEN_FIELD, PREVIOUS_TOKEN_FIELD)}
    new_context = {k: v for k, v in context.items() if k != "tactful"}
    if rest:
        new_context["tactful"] = rest
    cleaned = {**message, "context": new_context}
    return cleaned, Carried(
        token if isinstance(token, str) else None, previous if isinstance(previous, str) else None
    )


def token_check(secret: str, *, max_lifetime: timedelta) -> TokenCheck:
    """The check of subject tokens signed with `secret` (`TACTFUL_SUBJECT_TOKEN_SECRET`) that expire
    no further ahead than `max_lifetime` (`TACTFUL_SUBJECT_TOKEN_MAX_LIFETIME`)."""

    def check(token: str, user_id: str, at: datetime) -> bool:
        try:
            verify_subject_token(token, secret=secret, user_id=user_id, at=at, max_lifetime=max_lifetime)
        except (NotAuthenticated, PermissionDenied):
            return False
        return True

    return check


def proven_ids(
    message: object,
    carried: Carried,
    *,
    header_token: str | None,
    check: TokenCheck | None,
    at: datetime,
) -> tuple[frozenset[str], bool]:
    """The user ids the tokens prove for this message, and whether a token was given that proved
    nothing. Only `userId` (and, for the previous token, `previousId`) can be proven."""
    if not isinstance(message, Mapping):
        return frozenset(), False
    user_id, previous_id = message.get("userId"), message.get("previousId")
    proven: set[str] = set()
    failed = False
    for token, named, from_header in (
        (carried.subject_token, user_id, False),
        (header_token, user_id, True),
        (carried.previous_subject_token, previous_id, False),
    ):
        if token is None:
            continue
        if check is not None and isinstance(named, str) and named and check(token, named, at):
            proven.add(named)
        elif not from_header or isinstance(named, str):
            # A header token proves the messages of its user; one without a user id says nothing.
            failed = True
    return frozenset(proven), failed
