"""The application context holds the compiled gate: two processes over one database and one Redis,
and a catalog changed by one of them reaches the other within a second (DESIGN §5)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis

from tactful import main
from tactful.api.context import AppContext, RedisBoard
from tactful.config import Settings
from tactful.consent import ledger
from tactful.consent.gatekeeper import allowance_from
from tactful.consent.schemas import SubjectFlags
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.policy import Allowance
from tests.api.builders import app_context
from tests.backends import REDIS_URL, fresh_database, redis_prefix

AT = datetime(2026, 3, 3, 14, 2, tzinfo=UTC)
LOCALE = "    purposes: [essential, analytics, personalization.segments]\n"


def answer(context: AppContext) -> Allowance:
    """The gate's answer for someone who never chose anything (GDPR: request context only)."""
    policy = context.policy_context()
    return allowance_from(policy, consent=ledger.fold_entries(()), flags=SubjectFlags(), traits={}, at=AT)


@pytest.fixture
def processes(backend: str, tmp_path: Path) -> Iterator[tuple[AppContext, AppContext, Path]]:
    if not REDIS_URL:
        pytest.skip("needs TACTFUL_TEST_REDIS_URL")
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(Path(main.default_catalog_path()).read_text(encoding="utf-8"), encoding="utf-8")
    with (
        fresh_database(backend, tmp_path) as url,
        fresh_database(backend, tmp_path, migrated=False, name="keys") as keys_url,
    ):
        settings = Settings(
            database_url=url, keystore_url=keys_url, catalog_path=str(catalog), redis_url=REDIS_URL,
            redis_prefix=redis_prefix(),
        )  # fmt: skip
        first, second = main.build_context(settings), main.build_context(settings)
        try:
            yield first, second, catalog
        finally:
            for context in (first, second):
                context.db.dispose()
                context.keystore.dispose()
                if context.redis is not None:
                    context.redis.close()


def test_a_changed_catalog_reaches_every_process_within_a_second(
    processes: tuple[AppContext, AppContext, Path],
) -> None:
    first, second, path = processes
    assert first.gate().version == second.gate().version
    assert "context.locale" in answer(second).decide_atoms

    # The locale no longer serves segments: one process reads its catalog again and publishes it.
    text = path.read_text(encoding="utf-8")
    start = text.index("  context.locale:\n")
    end = text.index(LOCALE, start)
    path.write_text(text[:end] + "    purposes: [essential, analytics]\n" + text[end + len(LOCALE) :])
    assert first.gates is not None
    assert first.gates.reload()
    assert "context.locale" not in answer(first).decide_atoms
    assert first.catalog is first.gate().catalog

    time.sleep(1.1)  # the other process compares versions at most once a second
    assert second.gate().version == first.gate().version
    assert "context.locale" not in answer(second).decide_atoms
    assert second.catalog is second.gate().catalog  # the context's catalog follows its gate


def test_reading_an_unchanged_catalog_again_publishes_nothing(
    processes: tuple[AppContext, AppContext, Path],
) -> None:
    first, second, _ = processes
    gate = second.gate()
    assert first.gates is not None
    assert not first.gates.reload()
    time.sleep(1.1)
    assert second.gate() is gate


def test_every_request_gets_the_gate_the_context_holds(database: Database, keystore: Keystore) -> None:
    context = app_context(database, keystore)
    gate = context.gate()
    assert context.policy_context().gate is gate
    assert context.policy_context().gate is gate  # compiled once, not per request
    assert gate.catalog is context.catalog
    assert gate.regimes == context.regimes


def test_a_process_goes_on_with_its_gate_while_redis_does_not_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    board = RedisBoard(unreachable, "tactful-test:catalog:version")
    with caplog.at_level(logging.WARNING, logger="tactful.catalog"):
        board.publish("sha256:new")
        assert board.read() is None
    assert [r.getMessage() for r in caplog.records] == [
        "catalog version not published to Redis (ConnectionError)",
        "catalog version not read from Redis (ConnectionError); the compiled gate stays",
    ]
    unreachable.close()
