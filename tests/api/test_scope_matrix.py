"""Every route of the app, called with no key, a wrong key, a revoked key and a key of each scope.

Routes are read from the app that `create_app` builds, so routes added later are covered without
touching this file. A `/v1/` route must declare its scope (`tactful.api.deps`) or be listed in
`PUBLIC` below.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Body, Depends, FastAPI
from fastapi.routing import APIRoute

from tactful.api import deps
from tactful.api.context import Context
from tactful.crypto import Keystore
from tactful.keys.schemas import Principal, Scope
from tests.api.builders import AppContext, TestClient, app, app_context, bearer, issue
from tests.backends import migrated_database

PUBLIC: frozenset[tuple[str, str]] = frozenset()
"""(method, path) of `/v1/` routes that take no key at all. Adding one is a deliberate decision."""

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _api_routes(application: FastAPI) -> list[Any]:
    """Every API route with its effective dependencies, however the routers were included."""
    try:
        from fastapi.routing import iter_route_contexts  # newer FastAPI keeps included routers nested
    except ImportError:
        return [route for route in application.routes if isinstance(route, APIRoute)]
    return [
        context
        for context in iter_route_contexts(application.routes)
        if isinstance(context.original_route, APIRoute)
    ]


def _operations(application: FastAPI) -> list[tuple[str, Any]]:
    return [
        (method, route)
        for route in _api_routes(application)
        for method in sorted(route.methods - IGNORED_METHODS)
    ]


OPERATIONS = _operations(app())
GUARDED = [(method, route.path) for method, route in OPERATIONS if deps.required_scope(route) is not None]


def _url(path: str) -> str:
    # Any well-formed value will do: the key is checked before the handler looks anything up.
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


@dataclass(frozen=True)
class Callers:
    context: AppContext
    client: TestClient
    keys: dict[Scope, str]
    wrong: str
    revoked: str


@pytest.fixture(scope="module")
def callers(backend: str, tmp_path_factory: pytest.TempPathFactory, keystore: Keystore) -> Iterator[Callers]:
    with migrated_database(backend, tmp_path_factory.mktemp("matrix")) as db:
        context = app_context(db, keystore)
        keys = {scope: issue(context, scope, name=f"matrix {scope}") for scope in Scope}
        admin = keys[Scope.ADMIN]
        revoked = issue(context, Scope.ADMIN, name="matrix revoked", revoked=True)
        wrong = admin[:-43] + revoked[-43:]  # a real key id with another key's secret
        yield Callers(context, TestClient(app(context), raise_server_exceptions=False), keys, wrong, revoked)


def _call(callers: Callers, method: str, path: str, headers: dict[str, str]) -> int:
    payload = {} if method in {"POST", "PUT", "PATCH"} else None
    return callers.client.request(method, _url(path), json=payload, headers=headers).status_code


def test_the_matrix_sees_the_routes() -> None:
    assert ("GET", "/v1/admin/keys") in GUARDED
    assert ("DELETE", "/v1/admin/keys/{key_id}") in GUARDED


def test_every_v1_route_declares_a_scope_or_is_public() -> None:
    undeclared = [
        (method, route.path)
        for method, route in OPERATIONS
        if route.path.startswith("/v1/") and deps.required_scope(route) is None
    ]
    assert sorted(set(undeclared) - PUBLIC) == [], (
        "declare a scope with tactful.api.deps, or list it in PUBLIC"
    )
    assert not (PUBLIC - {(method, route.path) for method, route in OPERATIONS}), (
        "PUBLIC lists a route that is gone"
    )


@pytest.mark.parametrize(("method", "path"), GUARDED, ids=[f"{m} {p}" for m, p in GUARDED])
def test_a_route_answers_each_caller_by_scope(callers: Callers, method: str, path: str) -> None:
    route = next(r for m, r in OPERATIONS if (m, r.path) == (method, path))
    required = deps.required_scope(route)
    assert required is not None

    for label, headers in [
        ("no key", {}),
        ("wrong key", bearer(callers.wrong)),
        ("revoked key", bearer(callers.revoked)),
    ]:
        assert _call(callers, method, path, headers) == 401, label
    for scope, token in callers.keys.items():
        status = _call(callers, method, path, bearer(token))
        if scope.allows(required):
            assert status not in (401, 403), f"a {scope} key should get through to a route needing {required}"
        else:
            assert status == 403, f"a {scope} key should be refused a route needing {required}"


# -- the declarations themselves ----------------------------------------------------------------


def _extra_routes() -> APIRouter:
    """Routes shaped like collection's and the management API's, to exercise every way to declare."""
    router = APIRouter()

    @router.post("/v1/probe/body-key", dependencies=[deps.declare_scope(Scope.WRITE)])
    def body_key(
        context: Context, write_key: Annotated[str | None, Body(alias="writeKey", embed=True)] = None
    ) -> str:
        principal = deps.authenticate_token(context, write_key, required=Scope.WRITE)
        return str(principal.scope)

    @router.get("/v1/probe/server")
    def server(principal: deps.require_server) -> str:
        return str(principal.scope)

    @router.get("/v1/probe/any-key")
    def any_key(principal: Annotated[Principal, Depends(deps.principal)]) -> str:
        return str(principal.scope)

    return router


def test_required_scope_reads_each_kind_of_declaration() -> None:
    application = FastAPI()
    application.include_router(_extra_routes())
    scopes = {route.path: deps.required_scope(route) for route in _api_routes(application)}
    assert scopes == {
        "/v1/probe/body-key": Scope.WRITE,
        "/v1/probe/server": Scope.SERVER,
        "/v1/probe/any-key": None,
    }


def test_a_key_in_the_body_is_checked_like_a_key_in_the_header(callers: Callers) -> None:
    application = app(callers.context)
    application.include_router(_extra_routes())
    client = TestClient(application, raise_server_exceptions=False)

    for scope, token in callers.keys.items():
        assert client.post("/v1/probe/body-key", json={"writeKey": token}).json() == str(scope)
    for bad in (None, "", callers.wrong, callers.revoked):
        assert client.post("/v1/probe/body-key", json={"writeKey": bad}).status_code == 401
    assert client.get("/v1/probe/server", headers=bearer(callers.keys[Scope.WRITE])).status_code == 403
    assert client.get("/v1/probe/server", headers=bearer(callers.keys[Scope.SERVER])).json() == "server"
    assert client.get("/v1/probe/any-key", headers=bearer(callers.keys[Scope.WRITE])).json() == "write"
    assert client.get("/v1/probe/any-key").status_code == 401
