"""The asyncio client against the whole application in process (httpx's ASGI transport): what it
sends is what the server takes, and the server's answers come back as the client's types."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from tactful.collect.models import Event
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tactful.keys.tokens import issue_subject_token
from tactful.sdk import APIError, AsyncClient, Backoff
from tests.api.builders import AppContext, app, app_context, issue
from tests.backends import migrated_database


@dataclass(frozen=True)
class Served:
    context: AppContext
    transport: httpx.ASGITransport
    keys: dict[Scope, str]

    def client(self, scope: Scope, **options: object) -> AsyncClient:
        return AsyncClient(
            base_url="http://tactful.test", api_key=self.keys[scope], transport=self.transport,
            backoff=Backoff(retries=0), **options,  # type: ignore[arg-type]
        )  # fmt: skip

    def token(self, user_id: str) -> str:
        secret = self.context.settings.subject_token_secret.get_secret_value()
        return issue_subject_token(secret=secret, user_id=user_id, at=datetime.now(UTC))


@pytest.fixture(scope="module")
def served(backend: str, tmp_path_factory: pytest.TempPathFactory, keystore: Keystore) -> Iterator[Served]:
    with migrated_database(backend, tmp_path_factory.mktemp("sdk")) as db:
        context = app_context(db, keystore)
        keys = {scope: issue(context, scope, name=f"sdk {scope}") for scope in Scope}
        yield Served(context, httpx.ASGITransport(app=app(context)), keys)


def test_events_and_consent_of_a_visitor_through_the_write_key(served: Served) -> None:
    anon = f"anon-{uuid.uuid4().hex}"

    async def visit() -> tuple[object, list[object]]:
        async with served.client(Scope.WRITE) as tactful:
            ack = await tactful.consent(
                anonymous_id=anon,
                purposes={"analytics": True, "personalization.segments": True},
                source="banner",
            )
            tactful.page("Home", anonymous_id=anon)
            tactful.track("Product Viewed", anonymous_id=anon, properties={"product_id": "TENT-2"})
            tactful.track("Not In The Catalog", anonymous_id=anon)
            return ack, list(await tactful.flush())

    ack, outcomes = asyncio.run(visit())
    # A page is not told whether an anonymous id speaks for someone: its grants are unconfirmed.
    assert [c["target"] for c in ack.unconfirmed] == ["analytics", "personalization.segments"]  # type: ignore[attr-defined]
    assert ack.state is None  # type: ignore[attr-defined]  # a write key never reads consent back
    # A page reads what each message alone decides; the rows show what the engine did.
    assert [(o.status, o.reason) for o in outcomes] == [  # type: ignore[attr-defined]
        ("accepted", None),
        ("accepted", None),
        ("dropped", "undeclared_event"),
    ]
    ids = [o.message_id for o in outcomes]  # type: ignore[attr-defined]
    with served.context.session() as session:
        stored = set(session.scalars(select(Event.message_id).where(Event.message_id.in_(ids))))
    assert stored == set(ids[:2])


def test_a_grant_for_a_user_needs_their_token_and_the_client_carries_it(served: Served) -> None:
    user = f"user-{uuid.uuid4().hex}"

    async def choose() -> tuple[object, object, dict[str, object]]:
        async with served.client(Scope.WRITE) as tactful:
            bare = await tactful.consent(user_id=user, purposes={"analytics": True})
            proven = await tactful.consent(
                user_id=user, purposes={"analytics": True}, subject_token=served.token(user)
            )
        async with served.client(Scope.SERVER) as backend:
            state = await backend.consent_state(user_id=user)
        return bare, proven, state

    bare, proven, state = asyncio.run(choose())
    assert [r["code"] for r in bare.refused] == ["subject_token_required"]  # type: ignore[attr-defined]
    assert [c["target"] for c in proven.recorded] == ["analytics"]  # type: ignore[attr-defined]
    assert state["purposes"]["analytics"]["state"] == "granted"  # type: ignore[index]


def test_a_refusal_arrives_as_the_servers_problem_code(served: Served) -> None:
    async def read_with_a_write_key() -> None:
        async with served.client(Scope.WRITE) as tactful:
            await tactful.consent_state(anonymous_id="anyone")

    with pytest.raises(APIError) as raised:
        asyncio.run(read_with_a_write_key())
    assert (raised.value.status, raised.value.code) == (403, "permission_denied")
