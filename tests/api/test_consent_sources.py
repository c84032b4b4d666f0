"""`PUT /v1/consent` takes every source of the ledger (DESIGN §1), each with its rule: `tcf` only with
a `tcf_string` and no other choice, `gpc` only as a refusal of `sale_or_share`, `import` only with a
server key. A body that breaks its source's rule is a 422 with a code, and records nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tests.api.builders import TestClient, app_context, bearer, client, issue
from tests.backends import migrated_database
from tests.consent.tcf_encoder import encode_tc_string, publisher, tc_string

TC = encode_tc_string(tc_string(publisher_tc=publisher({1, 8, 9})))
REFUSE_SALE = {"sale_or_share": False}


@pytest.fixture(scope="module")
def api(
    backend: str, tmp_path_factory: pytest.TempPathFactory, keystore: Keystore
) -> Iterator[tuple[TestClient, dict[Scope, str]]]:
    with migrated_database(backend, tmp_path_factory.mktemp("sources")) as db:
        context = app_context(db, keystore)
        yield client(context), {scope: issue(context, scope) for scope in Scope}


def _put(api: tuple[TestClient, dict[Scope, str]], scope: Scope, **body: Any) -> Any:
    http, keys = api
    return http.put("/v1/consent", json=body, headers=bearer(keys[scope]))


def _history(api: tuple[TestClient, dict[Scope, str]], anonymous_id: str) -> list[dict[str, Any]]:
    http, keys = api
    read = http.get("/v1/consent", params={"anonymous_id": anonymous_id}, headers=bearer(keys[Scope.SERVER]))
    assert read.status_code == 200, read.text
    history: list[dict[str, Any]] = read.json()["history"]
    return history


def _anon() -> str:
    return f"anon-{uuid.uuid4().hex}"


def test_source_tcf_with_a_tc_string_is_recorded_as_tcf(api: Any) -> None:
    anon = _anon()
    response = _put(api, Scope.WRITE, anonymous_id=anon, source="tcf", tcf_string=TC)
    assert response.status_code == 200, response.text
    history = _history(api, anon)
    assert history
    assert {entry["source"] for entry in history} == {"tcf"}


def test_source_gpc_refusing_sale_or_share_is_the_opt_out(api: Any) -> None:
    anon = _anon()
    response = _put(api, Scope.WRITE, anonymous_id=anon, source="gpc", purposes=REFUSE_SALE)
    assert response.status_code == 200, response.text
    assert [(e["target"], e["action"], e["source"]) for e in _history(api, anon)] == [
        ("sale_or_share", "denied", "gpc")
    ]


@pytest.mark.parametrize("scope", [Scope.SERVER, Scope.ADMIN])
def test_source_import_with_a_server_key_is_recorded(api: Any, scope: Scope) -> None:
    anon = _anon()
    response = _put(api, scope, anonymous_id=anon, source="import", purposes={"analytics": True})
    assert response.status_code == 200, response.text
    assert [e["source"] for e in _history(api, anon)] == ["import"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"source": "tcf", "purposes": {"analytics": True}}, "tcf_string_required"),
        ({"source": "tcf", "tcf_string": TC, "purposes": {"marketing.email": True}}, "source_mismatch"),
        ({"source": "tcf", "tcf_string": TC, "explicit": {"user.sensitive.health": True}}, "source_mismatch"),
        ({"source": "gpc", "purposes": {"sale_or_share": True}}, "source_mismatch"),
        ({"source": "gpc", "purposes": {"analytics": False}}, "source_mismatch"),
        ({"source": "gpc", "purposes": {**REFUSE_SALE, "analytics": False}}, "source_mismatch"),
        ({"source": "gpc", "purposes": REFUSE_SALE, "tcf_string": TC}, "source_mismatch"),
        (
            {"source": "gpc", "purposes": REFUSE_SALE, "explicit": {"user.sensitive.health": False}},
            "source_mismatch",
        ),
    ],
)
@pytest.mark.parametrize("scope", [Scope.WRITE, Scope.SERVER])
def test_a_body_its_source_cannot_have_made_is_a_422(
    api: Any, scope: Scope, body: dict[str, Any], code: str
) -> None:
    anon = _anon()
    response = _put(api, scope, anonymous_id=anon, **body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (response.json()["code"], response.json()["field"]) == (code, "source")
    http, keys = api
    unknown = http.get("/v1/consent", params={"anonymous_id": anon}, headers=bearer(keys[Scope.SERVER]))
    assert unknown.status_code == 404  # nothing was recorded


@pytest.mark.parametrize("purposes", [{"analytics": True}, REFUSE_SALE])
def test_source_import_with_a_write_key_is_a_422(api: Any, purposes: dict[str, bool]) -> None:
    response = _put(api, Scope.WRITE, anonymous_id=_anon(), source="import", purposes=purposes)
    assert response.status_code == 422, response.text
    assert (response.json()["code"], response.json()["field"]) == ("import_needs_server_key", "source")
