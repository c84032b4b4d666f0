"""The application's routers: a request is matched against their routes in order, so the paths every
page view calls come first, and no two routers answer the same path and method (which order would
then decide silently)."""

from __future__ import annotations

from fastapi.routing import APIRoute

from tactful.api import collect, decide_admin
from tactful.api.decide import router as decide_router
from tactful.main import ROUTERS


def _routes() -> list[tuple[int, str, str]]:
    return [
        (position, route.path, method)
        for position, router in enumerate(ROUTERS)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    ]


def test_no_two_routers_answer_the_same_path_and_method() -> None:
    keys = [(path, method) for _, path, method in _routes()]
    assert len(keys) == len(set(keys))


def test_collection_and_decisions_are_matched_before_the_management_api() -> None:
    first_admin = min(ROUTERS.index(router) for router in decide_admin.routers)
    assert ROUTERS.index(collect.router) < first_admin
    assert ROUTERS.index(decide_router) < first_admin
    assert ROUTERS[:2] == (collect.router, decide_router)
