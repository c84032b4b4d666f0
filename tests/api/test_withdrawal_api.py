"""A withdrawal over HTTP purges the stored events built on the withdrawn purpose (issue 3, part 8):
each event keeps only the purposes still allowed, one left with none is deleted. The process is
built by `main.build_context`, so these tests also show that it wires consent's withdrawal hook."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tactful import main
from tactful.audit.models import AuditEntry
from tactful.collect.models import Event
from tactful.config import Settings
from tactful.keys.schemas import Scope
from tactful.profiles import service as profiles_service
from tests.api.builders import basic, client, issue
from tests.api.test_consent_api import Api, anonymous
from tests.backends import fresh_database
from tests.collect.builders import track


@pytest.fixture(scope="module")
def wired(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    folder = tmp_path_factory.mktemp("withdrawal")
    with (
        fresh_database(backend, folder) as url,
        fresh_database(backend, folder, migrated=False, name="keys") as keys_url,
    ):
        context = main.build_context(Settings(database_url=url, keystore_url=keys_url))
        try:
            keys = {scope: issue(context, scope, name=f"withdrawal {scope}") for scope in Scope}
            yield Api(context, client(context), keys)
        finally:
            context.db.dispose()
            context.keystore.dispose()


def send(api: Api, *messages: dict[str, Any]) -> None:
    response = api.client.post(
        "/v1/batch", json={"batch": list(messages)}, headers=basic(api.keys[Scope.WRITE])
    )
    assert response.status_code == 200, response.text


def purposes(api: Api, *messages: dict[str, Any]) -> dict[str, list[str] | None]:
    """The stored purposes of each message that is still stored, by message id."""
    wanted = [m["messageId"] for m in messages]
    with api.context.session() as session:
        rows = session.execute(select(Event.message_id, Event.purposes).where(Event.message_id.in_(wanted)))
        return {row.message_id: row.purposes for row in rows}


def purges(api: Api, anonymous_id: str) -> list[dict[str, Any]]:
    """The details of the subject's `consent.purged` audit entries, in order."""
    keystore = api.context.keystore
    with api.context.session() as session:
        subject = profiles_service.find_subject(
            session, keystore=keystore, user_id=None, anonymous_id=anonymous_id
        )
        assert subject is not None
        entries = session.scalars(
            select(AuditEntry)
            .where(
                AuditEntry.action == "consent.purged", AuditEntry.subject_ref == keystore.subject_ref(subject)
            )
            .order_by(AuditEntry.seq)
        )
        return [dict(entry.details) for entry in entries]


def grant_and_collect(api: Api) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]:
    anon = anonymous()
    granted = {"analytics": True, "personalization.behavioral": True}
    assert api.put(Scope.WRITE, {"anonymous_id": anon, "purposes": granted, "source": "banner"}).is_success
    viewed = track("Product Viewed", anonymousId=anon)
    signed_up = track("Signed Up", anonymousId=anon, properties={"method": "email"})
    ordered = track("Order Completed", anonymousId=anon, properties={"order_id": "o-1", "total": 9.5})
    send(api, viewed, signed_up, ordered)
    assert purposes(api, viewed, signed_up, ordered) == {
        viewed["messageId"]: ["analytics", "personalization.behavioral"],
        signed_up["messageId"]: ["analytics"],
        ordered["messageId"]: ["analytics", "essential"],  # the order record is kept by law
    }
    return anon, viewed, signed_up, ordered


def test_withdrawing_a_purpose_narrows_events_and_deletes_those_left_without_one(wired: Api) -> None:
    anon, viewed, signed_up, ordered = grant_and_collect(wired)

    response = wired.put(
        Scope.WRITE, {"anonymous_id": anon, "purposes": {"analytics": False}, "source": "banner"}
    )
    assert response.status_code == 200, response.text

    assert purposes(wired, viewed, signed_up, ordered) == {
        viewed["messageId"]: ["personalization.behavioral"],
        ordered["messageId"]: ["essential"],
    }
    [purged] = purges(wired, anon)
    assert (purged["events"], purged["events_narrowed"]) == (1, 2)

    wired.put(
        Scope.WRITE,
        {"anonymous_id": anon, "purposes": {"personalization.behavioral": False}, "source": "api"},
    )
    assert purposes(wired, viewed, ordered) == {ordered["messageId"]: ["essential"]}


def test_a_withdrawal_carried_by_an_event_purges_the_earlier_events(wired: Api) -> None:
    anon, viewed, signed_up, ordered = grant_and_collect(wired)
    # The banner's new choice travels with the next event, as Segment's consent integration sends it.
    refusal = {"consent": {"categoryPreferences": {"analytics": True, "personalization": False}}}
    later = track("Product Viewed", anonymousId=anon, context=refusal)
    send(wired, later)

    assert purposes(wired, viewed, signed_up, ordered, later) == {
        viewed["messageId"]: ["analytics"],
        signed_up["messageId"]: ["analytics"],
        ordered["messageId"]: ["analytics", "essential"],
        later["messageId"]: ["analytics"],
    }


def test_a_restriction_keeps_events_as_they_are(wired: Api) -> None:
    anon, viewed, signed_up, ordered = grant_and_collect(wired)
    before = purposes(wired, viewed, signed_up, ordered)
    flags = wired.client.put(
        "/v1/admin/subjects/flags",
        json={"anonymous_id": anon, "restriction": True, "limit_sensitive": True},
        headers={"Authorization": f"Bearer {wired.keys[Scope.ADMIN]}"},
    )
    assert flags.status_code == 200, flags.text
    assert purposes(wired, viewed, signed_up, ordered) == before
