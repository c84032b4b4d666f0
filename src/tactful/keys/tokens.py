"""Subject tokens: how a site's backend proves to Tactful who a user is (DESIGN §4).

    site backend ──issue_subject_token(user_id)──▶ JWT (HS256; sub, aud "tactful", exp)
        │ hands it to its page or app
        ▼
    PUT /v1/consent {"user_id", "subject_token"} ──verify_subject_token──▶ the grant is accepted

The write key sits in web pages, so anyone may use it; the token is what lets such a caller grant
consent for a logged-in user id. Only HS256 is accepted: the algorithm is fixed here, never read
from the token (`alg: none` and algorithm confusion are refused). The audience is exactly "tactful"
(a list naming other audiences too was meant for them as well), and a token that expires further
ahead than `max_lifetime` is refused: a token is a short-lived proof, never a standing credential
that a leak would keep valid for years.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import jwt

from tactful.errors import NotAuthenticated, PermissionDenied

ALGORITHM = "HS256"
AUDIENCE = "tactful"
DEFAULT_LIFETIME = timedelta(minutes=15)
DEFAULT_MAX_LIFETIME = timedelta(days=1)
"""How far ahead a token may expire unless configured otherwise (`TACTFUL_SUBJECT_TOKEN_MAX_LIFETIME`)."""
MAX_TOKEN_CHARS = 4096


def issue_subject_token(
    *, secret: str, user_id: str, at: datetime, lifetime: timedelta = DEFAULT_LIFETIME
) -> str:
    """A subject token for `user_id`, valid from `at` for `lifetime` (for the SDK and for tests)."""
    if lifetime <= timedelta(0):
        raise ValueError("a subject token needs a positive lifetime")
    claims = {
        "sub": user_id,
        "aud": AUDIENCE,
        "iat": int(at.timestamp()),
        "exp": int((at + lifetime).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def _invalid(reason: str) -> NotAuthenticated:
    return NotAuthenticated(f"subject token refused: {reason}", code="subject_token_invalid")


def verify_subject_token(
    token: str,
    *,
    secret: str,
    user_id: str,
    at: datetime,
    max_lifetime: timedelta = DEFAULT_MAX_LIFETIME,
) -> None:
    """Accept a token for `user_id` that is valid at `at`, or raise.

    `NotAuthenticated` (401) for a token that proves nothing: malformed, not HS256 (`none`
    included), a bad signature, an audience other than exactly "tactful", no expiry, an expired
    one, or one further than `max_lifetime` from `at`.
    `PermissionDenied` (403) for a sound token that names another user.
    """
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise _invalid("malformed")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise _invalid("malformed") from None
    if header.get("alg") != ALGORITHM:
        raise _invalid(f"the algorithm must be {ALGORITHM}")
    try:
        # Expiry is checked below against `at`, the service's clock, rather than PyJWT's own.
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            # strict_aud: PyJWT otherwise accepts a list audience that merely contains ours.
            options={
                "require": ["sub", "aud", "exp"],
                "verify_exp": False,
                "verify_iat": False,
                "strict_aud": True,
            },
        )
    except jwt.InvalidSignatureError:
        raise _invalid("bad signature") from None
    except jwt.InvalidAudienceError:
        raise _invalid(f"the audience must be {AUDIENCE!r}") from None
    except jwt.MissingRequiredClaimError as exc:
        raise _invalid(f"the {exc.claim!r} claim is required") from None
    except jwt.InvalidTokenError:
        raise _invalid("malformed") from None
    if claims.get("aud") != AUDIENCE:  # the decoder checked it; a second look costs nothing
        raise _invalid(f"the audience must be {AUDIENCE!r}")
    expires = claims.get("exp")
    if isinstance(expires, bool) or not isinstance(expires, int | float) or not math.isfinite(expires):
        raise _invalid("the 'exp' claim must be a number")
    if at.timestamp() >= expires:
        raise NotAuthenticated("subject token refused: expired", code="subject_token_expired")
    if expires - at.timestamp() > max_lifetime.total_seconds():
        raise _invalid(f"it expires more than {max_lifetime} ahead")
    if claims.get("sub") != user_id:
        raise PermissionDenied("the subject token was issued for another user", code="subject_token_mismatch")


def token_subject(
    token: str, *, secret: str, at: datetime, max_lifetime: timedelta = DEFAULT_MAX_LIFETIME
) -> str:
    """The user id a sound token proves (its `sub`), for a caller that names no user id itself (a
    self-service read of a privacy request). Raises as `verify_subject_token` does."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise _invalid("malformed")
    try:
        # Only to learn whom it claims: the full check below verifies the signature and the rest.
        claimed = jwt.decode(token, options={"verify_signature": False}).get("sub")
    except jwt.InvalidTokenError:
        raise _invalid("malformed") from None
    if not isinstance(claimed, str) or not claimed:
        raise _invalid("the 'sub' claim is required")
    verify_subject_token(token, secret=secret, user_id=claimed, at=at, max_lifetime=max_lifetime)
    return claimed
