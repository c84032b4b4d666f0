"""Builders for tests of the seeded demo: a process context over fresh databases, the shop seeded
with the README's customers (the first customers of the default seed, over the default three weeks),
and a test client of the whole app over it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from tactful.api.context import AppContext
from tactful.catalog.loader import load_catalog
from tactful.config import Settings
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.demo.generate import DemoConfig
from tactful.demo.placements import VISITOR
from tactful.demo.seed import SeedReport, seed
from tactful.keys.schemas import Scope
from tactful.main import create_app, default_catalog_path
from tests.backends import fresh_database

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
REFUSER = "u007000016"
"""A customer of the default seed who refused every category on the shop's banner."""


def customers_up_to(user_id: str) -> DemoConfig:
    """The default demo, cut after the customer `user_id` names (`u` + seed + index): each customer's
    traffic depends only on the seed and their index, so theirs is the full demo's."""
    default = DemoConfig()
    assert user_id.startswith(f"u{default.seed % 1000:03d}")
    return DemoConfig(seed=default.seed, customers=int(user_id[4:]) + 1, days=default.days)


SMALL = customers_up_to(max(VISITOR, REFUSER))


@contextmanager
def fresh_context(backend: str, tmp_path: Path) -> Iterator[AppContext]:
    """A process context over an empty, migrated database and an empty keystore."""
    with (
        fresh_database(backend, tmp_path) as url,
        fresh_database(backend, tmp_path, migrated=False, name="keys") as keys_url,
    ):
        db = Database(url)
        keystore = Keystore(keys_url, secret_key="test-secret-key-of-sufficient-length-000")
        keystore.create_schema()
        settings = Settings(database_url=url, keystore_url=keys_url)
        try:
            yield AppContext(
                settings=settings, db=db, keystore=keystore, catalog=load_catalog(default_catalog_path())
            )
        finally:
            db.dispose()
            keystore.dispose()


@dataclass(frozen=True)
class Shop:
    context: AppContext
    report: SeedReport
    api: TestClient

    def key(self, scope: Scope) -> str:
        return self.report.keys[scope]

    def auth(self, scope: Scope) -> tuple[str, str]:
        """The key as `curl -u "KEY:"` sends it."""
        return (self.key(scope), "")


@contextmanager
def seeded_shop(backend: str, tmp_path: Path) -> Iterator[Shop]:
    """The demo shop seeded with `SMALL`, and a client of the app over it."""
    with fresh_context(backend, tmp_path) as context:
        report = seed(context, now=NOW, config=SMALL)
        yield Shop(context, report, TestClient(create_app(context.settings, context=context)))
