"""Invariant 3 for decisions across processes: a consent change made through one server process holds
for the very next decision made by another (decisions read consent through the seam per request;
nothing about a subject is cached between requests). The same decision then through the Python SDK
and through the real `openfeature-sdk` with Tactful's provider, against a server process."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from openfeature import api as openfeature_api
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import Reason

from tactful.api.context import AppContext
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tactful.sdk import Client
from tactful.sdk.openfeature import TactfulProvider
from tests.api.builders import app_context, bearer, issue
from tests.api.test_consent_api import user
from tests.api.test_decide_api import everything, shop
from tests.backends import migrated_database
from tests.e2e.server import serving

pytestmark = pytest.mark.slow

SECRET = "decide-processes-secret-key-of-sufficient-length"


def _greeting(server: httpx.Client, key: dict[str, str], person: str) -> dict[str, Any]:
    body = {"user_id": person, "placements": ["greeting"], "context": {"locale": "en"}}
    response = server.post("/v1/decide", json=body, headers=key)
    assert response.status_code == 200, response.text
    [answer] = response.json()["decisions"]
    return dict(answer)


def _consent(server: httpx.Client, key: dict[str, str], person: str, purposes: dict[str, bool]) -> None:
    body = {"user_id": person, "purposes": purposes, "source": "api"}
    response = server.put("/v1/consent", json=body, headers=key)
    assert response.status_code == 200, response.text


def test_a_withdrawal_on_one_process_holds_for_the_next_decision_on_the_other(
    backend: str, tmp_path: Path
) -> None:
    keys_url = f"sqlite:///{tmp_path / 'keys.db'}"
    keystore = Keystore(keys_url, secret_key=SECRET)
    keystore.create_schema()
    person = user()
    with migrated_database(backend, tmp_path) as db, ExitStack() as stack:
        context: AppContext = app_context(db, keystore)
        admin, server = bearer(issue(context, Scope.ADMIN)), bearer(issue(context, Scope.SERVER))
        settings = {
            "TACTFUL_DATABASE_URL": db.url,
            "TACTFUL_KEYSTORE_URL": keys_url,
            "TACTFUL_SECRET_KEY": SECRET,
        }
        a, b = (
            stack.enter_context(httpx.Client(base_url=url, timeout=10))
            for url in (stack.enter_context(serving(settings, tmp_path / f"server-{n}.log")) for n in "ab")
        )
        shop(a, admin)  # type: ignore[arg-type]  # an httpx client speaks as the test client does
        identify = {"type": "identify", "userId": person, "traits": {"first_name": "Astrid"}}
        assert a.post("/v1/batch", json={"batch": [identify]}, headers=server).status_code == 200

        _consent(a, server, person, everything(True))
        assert _greeting(b, server, person)["content"] == {"text": "Hello Astrid!"}

        _consent(b, server, person, {"personalization.individual": False})
        after = _greeting(a, server, person)  # the very next decision, on the other process
        assert (after["level"], after["content"]) == ("1:all", {"text": "Hello!"})
        assert after["explanation"]["consent_downgrade"] is True

        _consent(a, server, person, {"personalization.individual": True})
        assert _greeting(b, server, person)["level"] == "1:1"

        # The same decision through the Python SDK and through OpenFeature, against process B.
        token = server["Authorization"].removeprefix("Bearer ")
        with Client(base_url=str(b.base_url), api_key=token) as sdk:
            [answer] = sdk.decide(["greeting"], user_id=person)
            assert (answer.level, answer.content) == ("1:1", {"text": "Hello Astrid!"})
            why = sdk.explanation(answer.decision_id, locale="sv")
            assert why["language"] == "sv"
            assert "Astrid" not in str(why)
        openfeature_api.set_provider(TactfulProvider(base_url=str(b.base_url), api_key=token))
        try:
            details = openfeature_api.get_client().get_object_details(
                "greeting", {"text": "fallback"}, EvaluationContext(targeting_key=person)
            )
        finally:
            openfeature_api.shutdown()
        assert (details.value, details.variant) == ({"text": "Hello Astrid!"}, "named")
        assert details.reason == Reason.TARGETING_MATCH
        assert details.flag_metadata["level"] == "1:1"
    keystore.dispose()
