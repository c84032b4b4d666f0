"""A page's write key cannot store an e-mail address, phone or card number in clear through a declared
field that is not an identifier (DESIGN §3, invariant 15): whatever leaf it uses, the stored event,
trait and quarantined rows hold it nowhere in clear, while ordinary values are stored as sent and
identifiers stay sealed in the profile.

    write key ─▶ /v1/batch: identify (a trait), track (a property, a context field), one quarantined
             ─▶ every row of both databases looked through for the value (`rows_holding`)
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tactful.catalog.redact import luhn_valid
from tactful.collect.models import Event
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tactful.profiles import service as profiles_service
from tests.api.builders import app_context, basic, bearer, client, issue
from tests.api.test_privacy_api import Api
from tests.api.test_public_attacks import rows_holding
from tests.api.test_public_key_trust import uid
from tests.backends import migrated_database
from tests.catalog.test_declared_strings import WORDS

GRANTS = dict.fromkeys(
    (
        "analytics",
        "personalization.segments",
        "personalization.behavioral",
        "personalization.individual",
        "personalization.predictive",
    ),
    True,
)

# Declared leaves of the demo catalog that hold no identifier: where each goes in a message.
TRAITS = ("birthdate", "country", "city", "loyalty_tier", "created_at")
PROPERTIES = ("category", "sku", "name", "brand", "currency")


@pytest.fixture(scope="module")
def api(backend: str, tmp_path_factory: pytest.TempPathFactory, keystore: Keystore) -> Iterator[Api]:
    with migrated_database(backend, tmp_path_factory.mktemp("leaves")) as db:
        context = app_context(db, keystore)
        keys = {scope: issue(context, scope, name=f"leaves {scope}") for scope in Scope}
        yield Api(context, client(context), keys)


def person(api: Api) -> str:
    """A user who consented to everything the leaves are kept for."""
    user = uid("user")
    grant = {"user_id": user, "source": "api", "purposes": GRANTS}
    answer = api.client.put("/v1/consent", json=grant, headers=bearer(api.keys[Scope.SERVER]))
    assert answer.status_code == 200, answer.text
    return user


def messages(user: str, value: str) -> list[dict[str, Any]]:
    """`value` in every leaf below, sent by a page: one identify, one track, one quarantined."""
    context = {"campaign": {"source": value, "name": value}, "locale": value}
    track = {"type": "track", "event": "Product Viewed", "userId": user, "messageId": uid("msg")}
    return [
        {"type": "identify", "userId": user, "messageId": uid("msg"), "traits": dict.fromkeys(TRAITS, value)},
        {**track, "properties": dict.fromkeys(PROPERTIES, value), "context": context},
        {**track, "messageId": uid("msg"), "timestamp": "1800-01-01T00:00:00Z",
         "properties": dict.fromkeys(PROPERTIES, value)},
    ]  # fmt: skip


def send(api: Api, user: str, value: str) -> None:
    body = {"batch": messages(user, value)}
    answer = api.client.post("/v1/batch", json=body, headers=basic(api.keys[Scope.WRITE]))
    assert answer.status_code == 200, answer.text


def stored(api: Api, user: str) -> tuple[dict[str, object], list[Event]]:
    with api.context.session() as session:
        subject = profiles_service.find_subject(session, keystore=api.context.keystore, user_id=user)
        assert subject is not None
        traits = profiles_service.get_profile(
            session, keystore=api.context.keystore, subject_id=subject
        ).traits
        events = list(
            session.scalars(select(Event).where(Event.subject_id == subject, Event.type == "track"))
        )
        session.expunge_all()
    return traits, events


@st.composite
def personal(draw: st.DrawFn) -> tuple[str, str, str]:
    """(the item, a needle that is in it and nowhere else, its token)."""
    tag = secrets.token_hex(5)
    digits = "".join(str(int(c, 16) % 10) for c in tag) + draw(st.from_regex(r"[0-9]{2}", fullmatch=True))
    card_body = "4" + digits + draw(st.from_regex(r"[0-9]{2}", fullmatch=True)) + "12"
    card = card_body + next(d for d in "0123456789" if luhn_valid(card_body + d))
    return draw(
        st.sampled_from(
            [
                (f"leaf.{tag}@example.com", tag, "[email]"),
                (f"+46 70 {digits[:3]} {digits[3:8]}", f"{digits[:3]} {digits[3:8]}", "[phone]"),
                (f"{card[:4]} {card[4:8]} {card[8:12]} {card[12:]}", card[4:8] + " " + card[8:12], "[card]"),
            ]
        )
    )


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(found=personal(), before=WORDS, after=WORDS)
def test_no_declared_leaf_stores_an_address_phone_or_card_number_in_clear(
    api: Api, found: tuple[str, str, str], before: str, after: str
) -> None:
    item, needle, token = found
    user = person(api)
    send(api, user, f"{before} {item} {after}")

    held = rows_holding(api.context, needle.lower())
    assert held == [], held[:3]
    traits, events = stored(api, user)
    expected = f"{before} {token} {after}"
    assert {name: traits.get(f"traits.{name}") for name in TRAITS} == dict.fromkeys(TRAITS, expected)
    assert len(events) == 1  # the quarantined one is not an event
    assert events[0].properties == dict.fromkeys(PROPERTIES, expected)
    assert events[0].context["campaign"] == {"source": expected, "name": expected}
    assert events[0].context["locale"] == expected


@pytest.mark.parametrize("value", ["running", "SE", "2026-01-01", "SKU-1234", "OUT-74314-064"])
def test_ordinary_values_are_stored_as_sent(api: Api, value: str) -> None:
    user = person(api)
    send(api, user, value)
    traits, events = stored(api, user)
    assert {name: traits.get(f"traits.{name}") for name in TRAITS} == dict.fromkeys(TRAITS, value)
    assert events[0].properties == dict.fromkeys(PROPERTIES, value)
    assert events[0].context["locale"] == value


def test_identifiers_are_still_sealed_and_read_back_as_sent(api: Api) -> None:
    user, tag = person(api), secrets.token_hex(5)
    email, phone = f"id.{tag}@example.com", "+46 70 123 45 67"
    identify = {"type": "identify", "userId": user, "traits": {"email": email, "phone": phone}}
    answer = api.client.post("/v1/batch", json={"batch": [identify]}, headers=basic(api.keys[Scope.SERVER]))
    assert answer.status_code == 200, answer.text
    traits, _ = stored(api, user)
    assert (traits["traits.email"], traits["traits.phone"]) == (email, phone)
    assert rows_holding(api.context, tag) == []
