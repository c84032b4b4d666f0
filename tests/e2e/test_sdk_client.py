"""End to end: Tactful's own Python client (`tactful.sdk.Client`) talks to a real server process,
the way a shop's backend does with a server-scope key: queued calls flushed in batches, consent
recorded and read back, and a retried batch stored once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from tactful.collect.models import Event
from tactful.crypto import Keystore
from tactful.db import Database, migrate
from tactful.keys import service as keys_service
from tactful.keys.schemas import Scope
from tactful.sdk import Client
from tests.e2e.server import serving

pytestmark = pytest.mark.slow

SECRET = "e2e-secret-key-of-sufficient-length-0000000"


@dataclass
class Server:
    url: str
    database: Database
    key: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("sdk")
    database = Database(f"sqlite:///{tmp / 'main.db'}")
    migrate(database.url)
    keystore = Keystore(f"sqlite:///{tmp / 'keys.db'}", secret_key=SECRET)
    keystore.create_schema()
    with database.session() as session:
        _, key = keys_service.create_key(
            session,
            keystore=keystore,
            name="backend",
            scope=Scope.SERVER,
            at=datetime.now(UTC),
            actor="tests",
        )
    keystore.dispose()
    settings = {
        "TACTFUL_DATABASE_URL": database.url,
        "TACTFUL_KEYSTORE_URL": f"sqlite:///{tmp / 'keys.db'}",
        "TACTFUL_SECRET_KEY": SECRET,
    }
    try:
        with serving(settings, tmp / "server.log") as url:
            yield Server(url, database, key)
    finally:
        database.dispose()


def _stored(server: Server, message_ids: list[str]) -> int:
    with server.database.session() as session:
        count = session.scalar(
            select(func.count()).select_from(Event).where(Event.message_id.in_(message_ids))
        )
        return int(count or 0)


def test_a_backend_records_consent_then_sends_events_in_batches(server: Server) -> None:
    user = f"user-{uuid.uuid4().hex}"
    with Client(base_url=server.url, api_key=server.key, batch_size=10) as tactful:
        ack = tactful.consent(user_id=user, purposes={"analytics": True, "personalization.segments": True})
        assert ack.state is not None  # a server key reads the state back
        assert ack.state["purposes"]["analytics"]["state"] == "granted"
        sent = [tactful.identify(user_id=user, traits={"email": f"{user}@example.com"})]
        sent += [
            tactful.track("Product Viewed", user_id=user, properties={"product_id": f"P-{n}"})
            for n in range(24)
        ]
        outcomes = tactful.flush()
    assert [o.message_id for o in outcomes] == sent[20:]  # the first 20 went as two full batches
    assert _stored(server, sent) == 25

    with Client(base_url=server.url, api_key=server.key) as again:
        state = again.consent_state(user_id=user)
    assert state["purposes"]["personalization.segments"]["state"] == "granted"


def test_a_batch_sent_twice_is_stored_once(server: Server) -> None:
    user = f"user-{uuid.uuid4().hex}"
    with Client(base_url=server.url, api_key=server.key) as tactful:
        tactful.consent(user_id=user, purposes={"analytics": True})
        at = datetime.now(UTC)
        ids = [
            tactful.track("Product Viewed", user_id=user, message_id=f"m-{uuid.uuid4()}", timestamp=at)
            for _ in range(3)
        ]
        first = tactful.flush()
        for message_id in ids:  # as a retry after a lost answer would send them
            tactful.track("Product Viewed", user_id=user, message_id=message_id, timestamp=at)
        second = tactful.flush()
    assert [o.status for o in first] == ["stored"] * 3
    assert [o.status for o in second] == ["duplicate"] * 3
    assert _stored(server, ids) == 3
