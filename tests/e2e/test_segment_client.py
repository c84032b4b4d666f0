"""End to end: the official Segment Python client talks to a real Tactful server process.

The server runs under uvicorn in a subprocess on a free port, over a fresh SQLite file; the test
sends identify, track, page, screen, group, alias and batched calls (plain and gzip), then reads what
was stored straight from the database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from segment.analytics.client import Client
from sqlalchemy import select

from tactful.collect import service as collect_service
from tactful.collect.models import Event
from tactful.crypto import Keystore
from tactful.db import Database, migrate
from tactful.keys import service as keys_service
from tactful.keys.schemas import Scope
from tactful.profiles import service as profiles_service
from tests.e2e.server import serving

pytestmark = pytest.mark.slow

SECRET = "e2e-secret-key-of-sufficient-length-0000000"


@dataclass
class Server:
    url: str
    database: Database
    keystore: Keystore
    write_key: str  # a server-scope key: a backend speaks for its users through Segment's library


def _prepare(tmp: Path) -> tuple[Database, Keystore, str]:
    database = Database(f"sqlite:///{tmp / 'main.db'}")
    migrate(database.url)
    keystore = Keystore(f"sqlite:///{tmp / 'keys.db'}", secret_key=SECRET)
    keystore.create_schema()
    with database.session() as session:
        _, token = keys_service.create_key(
            session, keystore=keystore, name="e2e", scope=Scope.SERVER, at=datetime.now(UTC), actor="tests"
        )
    return database, keystore, token


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("e2e")
    database, keystore, token = _prepare(tmp)
    settings = {
        "TACTFUL_DATABASE_URL": database.url,
        "TACTFUL_KEYSTORE_URL": f"sqlite:///{tmp / 'keys.db'}",
        "TACTFUL_SECRET_KEY": SECRET,
        # A US shop whose visitors fall under CCPA: events are stored until an opt-out (under the
        # default GDPR, a visitor's browsing without a recorded choice would be suppressed).
        "TACTFUL_POLICY__ESTABLISHMENT_COUNTRY": "US",
        "TACTFUL_POLICY__REGIMES": '{"ccpa": {"establishments": ["US"]}}',
    }
    try:
        with serving(settings, tmp / "server.log") as url:
            yield Server(url, database, keystore, token)
    finally:
        database.dispose()
        keystore.dispose()


def stored(server: Server, message_ids: list[str]) -> dict[str, Event]:
    with server.database.session() as session:
        rows = session.scalars(select(Event).where(Event.message_id.in_(message_ids)))
        return {row.message_id: row for row in rows}


def test_single_calls_in_sync_mode(server: Server) -> None:
    errors: list[Exception] = []
    client = Client(server.write_key, host=server.url, sync_mode=True, on_error=lambda e, _: errors.append(e))
    sent = [
        client.identify(
            "e2e-user",
            {"first_name": "Ada", "loyalty_tier": "gold", "shoe_size": 38},
            anonymous_id="e2e-anon",
        )[1],
        client.track("e2e-user", "Product Viewed", {"product_id": "p-1", "color": "red"})[1],
        client.page(anonymous_id="e2e-anon", name="Home", properties={"path": "/"})[1],
        client.screen("e2e-user", name="Settings")[1],
        client.group("e2e-user", "acme")[1],
        client.track(anonymous_id="e2e-other", event="Product Viewed", properties={"product_id": "p-2"})[1],
        client.alias("e2e-other", "e2e-user")[1],
    ]
    assert errors == []
    ids = [message["messageId"] for message in sent]
    rows = stored(server, ids)
    assert sorted(rows) == sorted(ids)
    assert [rows[i].type for i in ids] == ["identify", "track", "page", "screen", "group", "track", "alias"]
    viewed = rows[ids[1]]
    assert viewed.event == "Product Viewed"
    assert viewed.properties.get("product_id") == "p-1"
    assert "color" not in viewed.properties
    assert rows[ids[0]].traits == {"loyalty_tier": "gold"}  # the name is an identifier: profile only
    with server.database.session() as session:
        user = profiles_service.find_subject(session, keystore=server.keystore, user_id="e2e-user")
        assert user is not None
        profile = profiles_service.get_profile(session, keystore=server.keystore, subject_id=user)
        stats = collect_service.ingest_stats(session)
    assert profile.traits["traits.first_name"] == "Ada"
    assert {row.subject_id for row in rows.values()} == {user}  # alias and identify merged everything
    assert stats.dropped_fields.get("properties.color") == 1
    assert stats.dropped_fields.get("traits.shoe_size") == 1
    assert stats.balanced


@pytest.mark.parametrize("compressed", [False, True])
def test_batched_calls_through_the_client_queue(server: Server, compressed: bool) -> None:
    errors: list[Exception] = []
    client = Client(
        server.write_key,
        host=server.url,
        gzip=compressed,
        upload_size=25,
        on_error=lambda e, _: errors.append(e),
    )
    sent = [
        client.track(f"e2e-batch-{compressed}", "Product Viewed", {"product_id": f"p-{n}"})[1]
        for n in range(60)
    ]
    client.flush()
    client.join()
    assert errors == []
    rows = stored(server, [message["messageId"] for message in sent])
    assert len(rows) == 60


def test_a_retried_batch_is_deduplicated(server: Server) -> None:
    client = Client(server.write_key, host=server.url, sync_mode=True)
    _, message = client.track("e2e-retry", "Product Viewed", {"product_id": "p-9"})
    response = httpx.post(
        f"{server.url}/v1/batch",
        json={"batch": [message], "sentAt": datetime.now(UTC).isoformat()},
        auth=(server.write_key, ""),
    )
    assert response.status_code == 200
    assert response.json()["results"] == [
        {
            "messageId": message["messageId"],
            "status": "duplicate",
            "reason": None,
            "detail": None,
            "refused": [],
        }
    ]


def test_a_wrong_write_key_is_refused(server: Server) -> None:
    client = Client("tfk_write_wrong", host=server.url, sync_mode=True, max_retries=0)
    with pytest.raises(Exception, match="401"):
        client.track("e2e-user", "Product Viewed")
