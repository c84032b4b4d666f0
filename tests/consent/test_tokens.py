"""Subject tokens: only an HS256 JWT for the right user, audience and time gets through."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.errors import NotAuthenticated, PermissionDenied
from tactful.keys.tokens import issue_subject_token, verify_subject_token

SECRET = "subject-token-secret-for-tests-0123456789"
T0 = datetime(2026, 3, 3, 14, 2, tzinfo=UTC)


def _claims(**changes: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "sub": "user-1",
        "aud": "tactful",
        "exp": int((T0 + timedelta(minutes=5)).timestamp()),
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _refused(token: str, *, user_id: str = "user-1", at: datetime = T0) -> str:
    with pytest.raises(NotAuthenticated) as caught:
        verify_subject_token(token, secret=SECRET, user_id=user_id, at=at)
    return caught.value.message


def test_a_token_issued_for_the_user_is_accepted_until_it_expires() -> None:
    token = issue_subject_token(secret=SECRET, user_id="user-1", at=T0, lifetime=timedelta(minutes=10))
    verify_subject_token(token, secret=SECRET, user_id="user-1", at=T0)
    verify_subject_token(token, secret=SECRET, user_id="user-1", at=T0 + timedelta(minutes=9, seconds=59))
    assert "expired" in _refused(token, at=T0 + timedelta(minutes=10))


def test_an_expired_token_has_its_own_code() -> None:
    token = issue_subject_token(secret=SECRET, user_id="user-1", at=T0 - timedelta(hours=1))
    with pytest.raises(NotAuthenticated) as caught:
        verify_subject_token(token, secret=SECRET, user_id="user-1", at=T0)
    assert caught.value.code == "subject_token_expired"


def test_a_token_for_another_user_is_permission_denied() -> None:
    token = issue_subject_token(secret=SECRET, user_id="user-2", at=T0)
    with pytest.raises(PermissionDenied) as caught:
        verify_subject_token(token, secret=SECRET, user_id="user-1", at=T0)
    assert caught.value.code == "subject_token_mismatch"


def test_the_wrong_audience_is_refused() -> None:
    token = jwt.encode(_claims(aud="someone-else"), SECRET, algorithm="HS256")
    assert "audience" in _refused(token)


@pytest.mark.parametrize("claim", ["sub", "aud", "exp"])
def test_each_required_claim_must_be_present(claim: str) -> None:
    token = jwt.encode(_claims(**{claim: None}), SECRET, algorithm="HS256")
    assert claim in _refused(token)


def test_another_secret_is_a_bad_signature() -> None:
    token = jwt.encode(_claims(), "another-secret-of-sufficient-length-0000", algorithm="HS256")
    assert "signature" in _refused(token)


def test_a_tampered_payload_is_a_bad_signature() -> None:
    header, _payload, signature = issue_subject_token(secret=SECRET, user_id="user-2", at=T0).split(".")
    forged = base64.urlsafe_b64encode(json.dumps(_claims()).encode()).rstrip(b"=").decode()
    assert "signature" in _refused(f"{header}.{forged}.{signature}")


def test_alg_none_is_refused() -> None:
    unsigned = jwt.encode(_claims(), None, algorithm="none")
    assert "HS256" in _refused(unsigned)


def test_other_hmac_algorithms_are_refused() -> None:
    token = jwt.encode(_claims(), SECRET * 2, algorithm="HS512")
    assert "HS256" in _refused(token)


@given(st.text(max_size=300))
def test_any_text_is_refused_cleanly(text: str) -> None:
    with pytest.raises(NotAuthenticated):
        verify_subject_token(text, secret=SECRET, user_id="user-1", at=T0)


@pytest.mark.parametrize(
    "audience", [["tactful", "another-service"], ["tactful"], ["another-service", "tactful"], "Tactful"]
)
def test_the_audience_must_be_exactly_tactful(audience: object) -> None:
    token = jwt.encode(_claims(aud=audience), SECRET, algorithm="HS256")
    assert "audience" in _refused(token)


def test_a_token_expiring_further_ahead_than_the_maximum_is_refused() -> None:
    day = timedelta(days=1)
    within = jwt.encode(_claims(exp=int((T0 + day).timestamp())), SECRET, algorithm="HS256")
    verify_subject_token(within, secret=SECRET, user_id="user-1", at=T0)
    beyond = jwt.encode(_claims(exp=int((T0 + day).timestamp()) + 1), SECRET, algorithm="HS256")
    assert "expires more than" in _refused(beyond)
    # The maximum is the caller's (a setting): the same token passes under a longer one, and a
    # token issued long ago for a long life passes once it comes within the maximum.
    verify_subject_token(beyond, secret=SECRET, user_id="user-1", at=T0, max_lifetime=2 * day)
    verify_subject_token(beyond, secret=SECRET, user_id="user-1", at=T0 + timedelta(seconds=1))


@given(ahead=st.integers(min_value=1, max_value=10**10), maximum=st.integers(min_value=1, max_value=10**8))
def test_only_tokens_within_the_maximum_are_accepted(ahead: int, maximum: int) -> None:
    token = jwt.encode(_claims(exp=int(T0.timestamp()) + ahead), SECRET, algorithm="HS256")
    limit = timedelta(seconds=maximum)
    if ahead <= maximum:
        verify_subject_token(token, secret=SECRET, user_id="user-1", at=T0, max_lifetime=limit)
    else:
        with pytest.raises(NotAuthenticated) as refused:
            verify_subject_token(token, secret=SECRET, user_id="user-1", at=T0, max_lifetime=limit)
        assert refused.value.code == "subject_token_invalid"


@pytest.mark.parametrize("expires", ["NaN", "Infinity", "1e400"])
def test_an_expiry_that_is_no_finite_number_is_refused(expires: str) -> None:
    payload = json.dumps(_claims(exp=0)).replace('"exp": 0', f'"exp": {expires}')
    token = jwt.api_jws.encode(payload.encode(), SECRET, algorithm="HS256")
    with pytest.raises(NotAuthenticated) as refused:
        verify_subject_token(token, secret=SECRET, user_id="user-1", at=T0)
    assert refused.value.code == "subject_token_invalid"
