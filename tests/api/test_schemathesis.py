"""Schemathesis over the whole OpenAPI schema, in process (ASGI), against a fresh SQLite database,
with a key of each scope: no server error, and every answer as the schema says (documented status
code, content type, headers and body), positive and negative data alike.

The run is bounded (a few derandomized examples per operation and mode) so that it stays a unit test.
What the schema cannot say is listed below, each entry naming its operation and check."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tactful.config import RateLimits
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tests.api.builders import app, app_context, bearer, issue
from tests.backends import fresh_database, migrated_database

MAX_EXAMPLES = 12
METHODS = ("get", "put", "post", "delete", "patch")
_PATHS = app().openapi()["paths"]
OPERATIONS = sorted(
    (f"{method.upper()} {path}", bool(operation.get("parameters") or operation.get("requestBody")))
    for path, item in _PATHS.items()
    for method, operation in item.items()
    if method in METHODS
)
CASES = [
    pytest.param(label, mode, id=f"{mode}-{label}")
    for label, has_input in OPERATIONS
    for mode in schemathesis.GenerationMode
    # Negative data needs something to negate: an operation without inputs has none.
    if has_input or mode is schemathesis.GenerationMode.POSITIVE
]

SEMANTIC_REFUSALS: dict[str, frozenset[tuple[int, str, str | None]]] = {
    # OpenAPI parameters cannot say "one of these two query parameters is required".
    "GET /v1/consent": frozenset({(422, "missing_identity", None)}),
    # A TC string's content is judged by its decoder; a token proves a user_id, so it needs one; a
    # body that records no choice is refused unless the request carries Sec-GPC, a header the
    # schema cannot tie to the body's fields. A source's rule ties it to other members (tcf to a
    # tcf_string alone, gpc to one refusal), and `import` to the key's scope, which no schema sees.
    "PUT /v1/consent": frozenset(
        {
            (422, "tcf_invalid", "tcf_string"),
            (422, "invalid_input", "subject_token"),
            (422, "no_choice", None),
            (422, "tcf_string_required", "source"),
            (422, "source_mismatch", "source"),
            (422, "import_needs_server_key", "source"),
        }
    ),
    # keys.service refuses names with control characters, which KeyCreate's schema does not say
    # (tactful/keys/schemas.py): POST /v1/admin/keys {"name": "\u0019", "scope": "admin"} -> 422.
    "POST /v1/admin/keys": frozenset({(422, "invalid_input", "name")}),
    # Nor "exactly one of these three"; and an events cursor is opaque: only one this route gave
    # reads as a position.
    "GET /v1/admin/subjects": frozenset(
        {(422, "one_identifier", None), (422, "invalid_cursor", "events_cursor")}
    ),
    "GET /v1/admin/subjects/{subject_id}": frozenset({(422, "invalid_cursor", "events_cursor")}),
    # A decision model's definition is checked as a whole (tactful/decide/checks.py): content without
    # nulls and not empty, an e-mail's subject line, variations per strategy, keys that repeat, a
    # schedule in order, references to a placement or audience that exist. Each fault is listed.
    **{
        operation: frozenset({(422, "invalid_definition", None)})
        for operation in (
            "POST /v1/admin/placements",
            "PATCH /v1/admin/placements/{key}",
            "POST /v1/admin/audiences",
            "PATCH /v1/admin/audiences/{key}",
            "POST /v1/admin/experiences",
            "PATCH /v1/admin/experiences/{key}",
        )
    },
    # Which types need verification, what a token proves, which traits the catalog declares, and
    # whether a key may speak for the operator are rules between members and the key's scope.
    "POST /v1/privacy/requests": frozenset(
        {
            (422, "verification_required", "verified_by"),
            (422, "subject_token_required", "token"),
            (422, "token_proves_user_id", "user_id"),
            (422, "token_unused", "token"),
            (422, "changes_not_allowed", "changes"),
            (422, "changes_required", "changes"),
            (422, "unknown_trait", "changes"),
            (401, "subject_token_invalid", None),
            (403, "operator_needs_admin_key", None),
        }
    ),
    # Without an admin key a request is read with a subject token, a header tied to the key's scope.
    "GET /v1/privacy/requests/{public_id}": frozenset(
        {(422, "subject_token_required", "X-Tactful-Subject-Token")}
    ),
    "GET /v1/privacy/requests": frozenset({(422, "invalid_cursor", "cursor")}),
    "GET /v1/admin/reviews": frozenset({(422, "invalid_cursor", "cursor")}),
    # A reviewer's reason must say something: blank text passes the schema's length alone.
    "POST /v1/admin/reviews/{review_id}/answer": frozenset({(422, "invalid_input", "reason")}),
    # The same for a package's download.
    "GET /v1/privacy/exports/{token}": frozenset(
        {(422, "subject_token_required", "X-Tactful-Subject-Token")}
    ),
    "POST /v1/admin/experiences/{key}/publish": frozenset({(422, "publish_refused", None)}),
    # "A user_id or an anonymous_id" is not a schema's to say; placement keys name rows in the database.
    # A preview's placement and atoms name what the database and the catalog hold.
    "POST /v1/admin/placements/{key}/preview": frozenset(
        {(422, "unknown_placement", None), (422, "undeclared_atom", "atoms")}
    ),
    "POST /v1/decide": frozenset({(422, "missing_identity", None), (422, "unknown_placement", "placements")}),
    "POST /v1/admin/experiences/{key}/rollback": frozenset({(422, "publish_refused", None)}),
}
"""(status, problem code, field) of refusals of schema-valid requests, per operation: for these
answers alone, `positive_data_acceptance` is not applied."""

_COLLECTION = ("identify", "track", "page", "screen", "group", "alias", "batch")
QUARANTINING = frozenset(f"POST /v1/{path}" for path in (*_COLLECTION, "i", "t", "p", "s", "g", "a", "b"))
"""Collection answers 200 with a per-message result even for messages that break the schema: they
are quarantined with a reason and counted (Segment compatibility; DESIGN invariant 10). So
`negative_data_rejection` does not apply to these operations."""


@dataclass(frozen=True)
class Served:
    app: FastAPI
    schema: schemathesis.BaseSchema
    keys: dict[Scope, str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    with (
        migrated_database("sqlite", tmp) as db,
        fresh_database("sqlite", tmp, migrated=False, name="keys") as keys_url,
    ):
        keystore = Keystore(keys_url, secret_key="schemathesis-secret-key-of-sufficient-length")
        keystore.create_schema()
        context = app_context(db, keystore)
        # Thousands of requests in seconds from one address: the limits would answer most of them.
        context.settings.rate_limits = RateLimits(scopes=[])
        keys = {scope: issue(context, scope, name=f"fuzz {scope}") for scope in Scope}
        application = app(context)
        yield Served(application, schemathesis.openapi.from_asgi("/openapi.json", application), keys)
        keystore.dispose()


def _problem(response: schemathesis.Response) -> tuple[int, str, str | None] | None:
    if not response.headers.get("content-type", [""])[0].startswith("application/problem+json"):
        return None
    body = response.json()
    return response.status_code, str(body.get("code")), body.get("field")


def _excluded(label: str, response: schemathesis.Response) -> list[CheckFunction]:
    excluded: list[CheckFunction] = []
    if _problem(response) in SEMANTIC_REFUSALS.get(label, frozenset()):
        excluded.append(positive_data_acceptance)
    if label in QUARANTINING:
        excluded.append(negative_data_rejection)
    if _problem(response) == (413, "request_too_large", None):
        # A body past the route's documented size limit is refused before its schema is read, whether
        # its members are valid or not (the decision model's bodies can be valid and too large).
        excluded += [positive_data_acceptance, negative_data_rejection]
    return excluded


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_every_operation_answers_as_documented(
    served: Served, label: str, mode: schemathesis.GenerationMode
) -> None:
    operation = served.schema.find_operation_by_label(label)
    assert operation is not None

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: schemathesis.Case) -> None:
        for scope in Scope:
            response = case.call(headers=bearer(served.keys[scope]))
            case.validate_response(response, excluded_checks=_excluded(label, response))

    check()
