"""End to end: RudderStack's Python client (`rudder-sdk-python`) against a real Tactful server process.

The client reads `code` and `message` from any answer but a 200; a problem document without `message`
made it raise a KeyError in place of its API error, so it retried final answers (401, 422) and reported
the KeyError. Here a write key limited to one request per window is refused with 429 once its window is
full, and the client retries until its batch is stored; a final refusal is reported once, as the API
said it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from rudderstack.analytics.client import Client
from rudderstack.analytics.request import APIError, post
from sqlalchemy import select

from tactful.collect.models import Event
from tactful.crypto import Keystore
from tactful.db import Database, migrate
from tactful.keys import service as keys_service
from tactful.keys.schemas import Scope
from tests.e2e.server import serving

pytestmark = pytest.mark.slow

SECRET = "e2e-secret-key-of-sufficient-length-0000000"
WINDOW_SECONDS = 2


@dataclass
class Server:
    url: str
    database: Database
    write_key: str  # a write key, as a page would hold: the only scope rate limited by default
    admin_key: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("e2e-rudderstack")
    database = Database(f"sqlite:///{tmp / 'main.db'}")
    migrate(database.url)
    keystore = Keystore(f"sqlite:///{tmp / 'keys.db'}", secret_key=SECRET)
    keystore.create_schema()
    now = datetime.now(UTC)
    with database.session() as session:
        _, write = keys_service.create_key(
            session, keystore=keystore, name="page", scope=Scope.WRITE, at=now, actor="tests"
        )
        _, admin = keys_service.create_key(
            session, keystore=keystore, name="ops", scope=Scope.ADMIN, at=now, actor="tests"
        )
    keystore.dispose()
    settings = {
        "TACTFUL_DATABASE_URL": database.url,
        "TACTFUL_KEYSTORE_URL": f"sqlite:///{tmp / 'keys.db'}",
        "TACTFUL_SECRET_KEY": SECRET,
        # A US shop (CCPA): an anonymous visitor's events are stored until an opt-out.
        "TACTFUL_POLICY__ESTABLISHMENT_COUNTRY": "US",
        "TACTFUL_POLICY__REGIMES": '{"ccpa": {"establishments": ["US"]}}',
        # One request per key and address per window: the second within a window gets 429.
        "TACTFUL_RATE_LIMITS__PER_KEY_AND_ADDRESS": "1",
        "TACTFUL_RATE_LIMITS__WINDOW_SECONDS": str(WINDOW_SECONDS),
    }
    try:
        with serving(settings, tmp / "server.log") as url:
            yield Server(url, database, write, admin)
    finally:
        database.dispose()


def _refused_so_far(server: Server) -> float:
    metrics = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {server.admin_key}"})
    assert metrics.status_code == 200
    pattern = re.compile(r'^tactful_rate_limited_requests_total\{limit="key_and_address"\} (\S+)$', re.M)
    return sum(float(value) for value in pattern.findall(metrics.text))


def test_a_rate_limited_batch_is_retried_and_delivered(server: Server) -> None:
    before = _refused_so_far(server)
    # Fill the key's window for this address, so that the client's first attempt gets 429.
    message = {"type": "track", "event": "Product Viewed", "anonymousId": "rs-prime", "properties": {}}
    prime = httpx.post(f"{server.url}/v1/batch", json={"batch": [message]}, auth=(server.write_key, ""))
    assert prime.status_code == 200, prime.text

    errors: list[Exception] = []
    client = Client(
        server.write_key,
        host=server.url,
        upload_interval=0.01,
        max_retries=8,
        timeout=5,
        on_error=lambda error, _batch: errors.append(error),
    )
    message_id = f"rs-{uuid.uuid4().hex}"
    client.track(
        anonymous_id="rs-visitor",
        event="Product Viewed",
        properties={"product_id": "p-1"},
        message_id=message_id,
    )
    client.flush()
    client.join()

    assert errors == []
    assert _refused_so_far(server) > before, "the client was refused at least once"
    with server.database.session() as session:
        stored = session.scalars(select(Event).where(Event.message_id == message_id)).all()
    assert [row.event for row in stored] == ["Product Viewed"]


def test_a_refusal_reaches_the_client_as_its_api_error(server: Server) -> None:
    # The client's own reading of a problem document: its code and message, no KeyError.
    with pytest.raises(APIError) as refused:
        post("tfk_write_not_a_key", server.url, gzip=False, batch=[])
    assert refused.value.status == 401
    assert refused.value.code == "not_authenticated"
    assert refused.value.message


def test_a_refused_batch_is_reported_once_not_retried(server: Server) -> None:
    # A 401 is final for the client: one attempt, reported to on_error as the API's error.
    errors: list[Exception] = []
    client = Client(
        "tfk_write_not_a_key",
        host=server.url,
        upload_interval=0.01,
        max_retries=3,
        timeout=5,
        on_error=lambda error, _batch: errors.append(error),
    )
    client.track(anonymous_id="rs-visitor", event="Product Viewed")
    client.flush()
    client.join()
    assert [(type(e), getattr(e, "status", None), getattr(e, "code", None)) for e in errors] == [
        (APIError, 401, "not_authenticated")
    ]
