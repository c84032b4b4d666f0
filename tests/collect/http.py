"""Builders for collection's HTTP tests: the shared API builders, with collection's small catalog
under a policy that needs no grant (these tests are not about consent)."""

from __future__ import annotations

from tactful.api.context import AppContext
from tactful.config import Limits
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.keys.schemas import Scope
from tests.api import builders
from tests.api.builders import basic, client
from tests.collect.builders import OPEN, small_catalog

__all__ = ["AppContext", "app_context", "basic", "client", "write_key"]


def app_context(
    db: Database, keystore: Keystore, *, cors_origins: tuple[str, ...] = (), limits: Limits | None = None
) -> AppContext:
    return builders.app_context(
        db, keystore, catalog=small_catalog(), cors_origins=cors_origins, limits=limits, policy=OPEN
    )


def write_key(context: AppContext, *, scope: Scope = Scope.WRITE, revoked: bool = False) -> str:
    return builders.issue(context, scope, name="collect tests", revoked=revoked)
