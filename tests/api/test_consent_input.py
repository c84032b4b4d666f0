"""Bad input to the consent API is refused, never a 500, on SQLite and PostgreSQL alike: text a
database cannot store (NUL, lone surrogates) in any string field and times at the edges of the
calendar (422), subject tokens that would stay valid longer than the configured maximum (401)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tactful.keys.tokens import issue_subject_token
from tests.api.builders import AppContext, TestClient, app_context, bearer, client, issue
from tests.backends import migrated_database

NUL = "\\u0000"
LONE_SURROGATE = "\\ud800"
"""As JSON escapes: a lone surrogate cannot be written as UTF-8, only escaped in JSON text."""


@dataclass(frozen=True)
class Api:
    context: AppContext
    client: TestClient
    server: str
    admin: str

    def __repr__(self) -> str:
        return "Api()"


@pytest.fixture(scope="module")
def api(backend: str, tmp_path_factory: pytest.TempPathFactory, keystore: Keystore) -> Iterator[Api]:
    with migrated_database(backend, tmp_path_factory.mktemp("consent-input")) as db:
        context = app_context(db, keystore)
        yield Api(context, client(context), issue(context, Scope.SERVER), issue(context, Scope.ADMIN))


def _consent_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "anonymous_id": f"anon-{uuid.uuid4().hex}",
        "source": "banner",
        "notice_version": "v1",
        "parental_consent": {"method": "signed_form", "reference": "ref-1"},
        "purposes": {"analytics": True},
    }
    body.update(fields)
    return body


def _put(api: Api, path: str, body: dict[str, Any], key: str, *, bad: str, at: tuple[str, ...]) -> Any:
    """PUT `body` with the string at `at` replaced by one holding `bad` (a JSON escape)."""
    target: Any = body
    for step in at[:-1]:
        target = target[step]
    original = json.dumps(target[at[-1]])
    marked = original[:-1] + "-MARK" + '"'
    target[at[-1]] = json.loads(marked)
    text = json.dumps(body).replace("-MARK", bad)
    headers = bearer(key) | {"Content-Type": "application/json"}
    return api.client.put(path, content=text.encode(), headers=headers)


CONSENT_FIELDS = [
    ("anonymous_id",),
    ("notice_version",),
    ("parental_consent", "method"),
    ("parental_consent", "reference"),
    ("user_id",),
    ("tcf_string",),
    ("subject_token",),
]


@pytest.mark.parametrize("bad", [NUL, LONE_SURROGATE], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize("field", CONSENT_FIELDS, ids=".".join)
def test_unstorable_text_in_a_consent_field_is_refused(api: Api, field: tuple[str, ...], bad: str) -> None:
    extra = {"user_id": f"user-{uuid.uuid4().hex}", "tcf_string": "CQ", "subject_token": "token"}
    body = _consent_body(**{field[0]: extra[field[0]]} if field[0] in extra else {})
    refused = _put(api, "/v1/consent", body, api.server, bad=bad, at=field)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert [error["loc"][1:] for error in refused.json()["errors"]] == [list(field)]


def test_the_same_consent_body_without_the_bad_character_is_recorded(api: Api) -> None:
    body = _consent_body()
    accepted = _put(api, "/v1/consent", body, api.server, bad="", at=("notice_version",))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["state"]["purposes"]["analytics"]["state"] == "granted"


@pytest.mark.parametrize("bad", [NUL, LONE_SURROGATE], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize("field", ["anonymous_id", "user_id", "notice_version"])
def test_unstorable_text_in_a_flags_field_is_refused(api: Api, field: str, bad: str) -> None:
    body = {"anonymous_id": "anon-1", "user_id": "user-1", "notice_version": "v1", "objection": True}
    refused = _put(api, "/v1/admin/subjects/flags", body, api.admin, bad=bad, at=(field,))
    assert refused.status_code == 422, refused.text
    assert [error["loc"][1:] for error in refused.json()["errors"]] == [[field]]


# -- times at the edges of the calendar ------------------------------------------------------------


@pytest.fixture(scope="module")
def known(api: Api) -> str:
    """An anonymous id with a recorded choice, so that a time reaches the ledger read."""
    anonymous_id = f"anon-{uuid.uuid4().hex}"
    body = {"anonymous_id": anonymous_id, "source": "api", "purposes": {"analytics": True}}
    assert api.client.put("/v1/consent", json=body, headers=bearer(api.server)).status_code == 200
    return anonymous_id


def _read_at(api: Api, anonymous_id: str, at: str) -> Any:
    return api.client.get(
        "/v1/consent", params={"anonymous_id": anonymous_id, "at": at}, headers=bearer(api.server)
    )


@pytest.mark.parametrize(
    "at",
    [
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
        "0001-01-01T00:00:00Z",
        "0001-01-01T23:59:59.999999+00:30",
        "9999-12-31T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "9999-12-31T12:00:00+11:00",
    ],
)
def test_a_time_outside_the_calendar_is_refused(api: Api, known: str, at: str) -> None:
    refused = _read_at(api, known, at)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert (refused.json()["code"], refused.json()["field"]) == ("time_out_of_range", "at")


@pytest.mark.parametrize(
    ("at", "analytics"),
    [
        ("0001-01-02T00:00:00Z", "not_set"),
        ("0001-01-01T23:00:00-01:00", "not_set"),
        ("1969-07-20T20:17:00Z", "not_set"),
        ("9999-12-30T23:59:59.999999Z", "granted"),
        ("9999-12-31T00:59:59+01:00", "granted"),
    ],
)
def test_a_time_at_the_edges_of_the_range_is_answered(api: Api, known: str, at: str, analytics: str) -> None:
    answered = _read_at(api, known, at)
    assert answered.status_code == 200, answered.text
    assert answered.json()["purposes"]["analytics"]["state"] == analytics


def test_a_time_without_an_offset_is_still_refused(api: Api, known: str) -> None:
    refused = _read_at(api, known, "2026-03-03T14:02:00")
    assert (refused.status_code, refused.json()["code"], refused.json()["field"]) == (
        422,
        "invalid_input",
        "at",
    )


# -- subject tokens ------------------------------------------------------------------------------------


def test_a_subject_token_expiring_beyond_the_configured_maximum_is_refused(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = f"user-{uuid.uuid4().hex}"
    secret = api.context.settings.subject_token_secret.get_secret_value()
    token = issue_subject_token(
        secret=secret, user_id=user_id, at=datetime.now(UTC), lifetime=timedelta(days=2)
    )
    body = {"user_id": user_id, "subject_token": token, "source": "banner", "purposes": {"analytics": True}}
    # A write key needs the token to prove the user; one that lives too long proves nothing.
    write = issue(api.context, Scope.WRITE)
    refused = api.client.put("/v1/consent", json=body, headers=bearer(write))
    assert refused.status_code == 200, refused.text
    assert refused.json()["refused"] == [{"target": "analytics", "code": "subject_token_invalid"}]
    monkeypatch.setattr(api.context.settings, "subject_token_max_lifetime", timedelta(days=3))
    accepted = api.client.put("/v1/consent", json=body, headers=bearer(write))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["recorded"] == [{"target": "analytics", "choice": "granted"}]


# -- choices are JSON booleans ----------------------------------------------------------------------

NOT_BOOLEANS = ["yes", "no", "true", 1, 0, None, "1"]


def _choice_body(field: str, value: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"anonymous_id": f"anon-{uuid.uuid4().hex}", "source": "banner"}
    if field == "purposes":
        body["purposes"] = {"analytics": value}
    elif field == "explicit":
        body["explicit"] = {"user.sensitive.health": value}
    else:
        body["parental_consent"] = {"method": "signed_form", "granted": value}
    return body


@pytest.mark.parametrize("value", NOT_BOOLEANS)
@pytest.mark.parametrize("field", ["purposes", "explicit", "parental_consent"])
def test_a_consent_choice_that_is_not_a_json_boolean_is_refused(api: Api, field: str, value: Any) -> None:
    refused = api.client.put("/v1/consent", json=_choice_body(field, value), headers=bearer(api.server))
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "invalid_input"
    assert [error["loc"][:2] for error in problem["errors"]] == [["body", field]]
    assert all(error["type"] == "bool_type" for error in problem["errors"])


@pytest.mark.parametrize("field", ["purposes", "explicit", "parental_consent"])
@pytest.mark.parametrize("value", [True, False])
def test_a_json_boolean_choice_is_recorded(api: Api, field: str, value: bool) -> None:
    accepted = api.client.put("/v1/consent", json=_choice_body(field, value), headers=bearer(api.server))
    assert accepted.status_code == 200, accepted.text
    assert [choice["choice"] for choice in accepted.json()["recorded"]] == ["granted" if value else "refused"]


@pytest.mark.parametrize("value", NOT_BOOLEANS)
@pytest.mark.parametrize("flag", ["objection", "restriction", "limit_sensitive"])
def test_a_flag_that_is_not_a_json_boolean_is_refused(api: Api, known: str, flag: str, value: Any) -> None:
    body = {"anonymous_id": known, flag: value}
    refused = api.client.put("/v1/admin/subjects/flags", json=body, headers=bearer(api.admin))
    if value is None:
        assert refused.status_code == 200, refused.text  # null leaves the flag as it is
        return
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["loc"] == ["body", flag]
