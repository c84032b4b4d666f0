"""Errors are problem documents, and the OpenAPI schema says so: every error answer it documents is
`application/problem+json`, including the framework's own refusals (an unreadable body, a path or a
method that does not exist)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tactful.api.context import AppContext
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tests.api.builders import TestClient, app, app_context, bearer, client, issue
from tests.backends import migrated_database

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return app().openapi()


@pytest.fixture
def context(tmp_path: Path, keystore: Keystore) -> Iterator[AppContext]:
    with migrated_database("sqlite", tmp_path) as db:
        yield app_context(db, keystore)


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in ("get", "put", "post", "delete")
    ]


def test_every_documented_error_is_a_problem_document(schema: dict[str, Any]) -> None:
    documented = 0
    for path, method, operation in _operations(schema):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")) and "content" in response:
                assert set(response["content"]) == {PROBLEM}, (method, path, status)
                assert response["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
                documented += 1
    assert documented > 50
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_every_operation_with_inputs_documents_422_and_every_body_413(schema: dict[str, Any]) -> None:
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in responses, (method, path)
        if method != "get":
            assert "413" in responses, (method, path)


def test_no_operation_documents_400(schema: dict[str, Any]) -> None:
    # A body that is not JSON text is `malformed_json` (422) on every route, the framework's too.
    assert [(path, method) for path, method, op in _operations(schema) if "400" in op["responses"]] == []


def test_operations_with_a_key_document_the_locked_keystore(schema: dict[str, Any]) -> None:
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        if "401" in responses:
            assert "keystore_locked" in responses["503"]["description"], (method, path)


def test_the_subject_rule_is_in_the_schema(schema: dict[str, Any]) -> None:
    for name in ("ConsentUpdate", "FlagsUpdate"):
        rule = schema["components"]["schemas"][name]["anyOf"]
        assert [branch["required"] for branch in rule] == [["user_id"], ["anonymous_id"]]
        assert all(branch["properties"][branch["required"][0]] == {"type": "string"} for branch in rule)


def _is_problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["type"].endswith("/" + code)


def test_a_body_that_is_not_utf8_is_malformed_json(context: AppContext) -> None:
    http: TestClient = client(context)
    key = issue(context, Scope.ADMIN)
    headers = bearer(key) | {"Content-Type": "application/json"}
    _is_problem(
        http.put("/v1/consent", content=b'{"anonymous_id": "\x80"}', headers=headers), 422, "malformed_json"
    )


def test_unknown_paths_and_methods_are_problems(context: AppContext) -> None:
    http = client(context)
    _is_problem(http.get("/v1/nowhere"), 404, "not_found")
    refused = http.delete("/v1/consent")
    _is_problem(refused, 405, "method_not_allowed")
    assert refused.headers["allow"], "the framework's headers are kept"


def test_a_validation_error_is_a_422_problem_listing_where(context: AppContext) -> None:
    http = client(context)
    key = issue(context, Scope.SERVER)
    refused = http.put("/v1/consent", json={"anonymous_id": "a", "source": "nowhere"}, headers=bearer(key))
    _is_problem(refused, 422, "invalid_input")
    assert [error["loc"] for error in refused.json()["errors"]] == [["body", "source"]]
