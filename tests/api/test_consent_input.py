"""Bad input to the consent API is refused with 422, never a 500, on SQLite and PostgreSQL alike:
text a database cannot store (NUL, lone surrogates) in any string field, and times at the edges of
the calendar."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
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
    assert accepted.json()["purposes"]["analytics"]["state"] == "granted"


@pytest.mark.parametrize("bad", [NUL, LONE_SURROGATE], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize("field", ["anonymous_id", "user_id", "notice_version"])
def test_unstorable_text_in_a_flags_field_is_refused(api: Api, field: str, bad: str) -> None:
    body = {"anonymous_id": "anon-1", "user_id": "user-1", "notice_version": "v1", "objection": True}
    refused = _put(api, "/v1/admin/subjects/flags", body, api.admin, bad=bad, at=(field,))
    assert refused.status_code == 422, refused.text
    assert [error["loc"][1:] for error in refused.json()["errors"]] == [[field]]
