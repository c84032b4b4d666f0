"""No plaintext personal data outside the per-subject encryption (invariant 15, issue 8 part 7): after
collection over HTTP, a withdrawal and the truncation of the write-ahead log that follows it, the
raw bytes of the SQLite database and of its `-wal` hold none of the e-mail address, name, IP address
or user agent that were sent, nor their SHA-256 or MD5. On PostgreSQL the guarantee rests on sealing
and redaction alone (README), so these tests are SQLite's."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from tactful import main
from tactful.collect import service as collect_service
from tactful.collect.models import Event, Quarantine
from tactful.config import Settings
from tactful.db import Database, truncate_log, truncate_log_after_commit
from tactful.keys.schemas import Scope
from tactful.types import new_id
from tests.api.builders import basic, client, issue
from tests.api.test_consent_api import Api, anonymous
from tests.backends import fresh_database
from tests.collect.builders import track, uid

EMAIL = "adalinde.quernheim@example.org"
FIRST, LAST = "Adalinde", "Quernheim"
IP = "203.0.113.77"
AGENT = "Mozilla/5.0 (X11; Linux x86_64; Scanner) TactfulProbe/9.1"
NOW = datetime(2026, 12, 6, tzinfo=UTC)
SENT = {"email": EMAIL, "first name": FIRST, "last name": LAST, "ip": IP, "user agent": AGENT}


def forms(value: str) -> dict[str, bytes]:
    """The byte strings a value could be found as: itself (UTF-8 and UTF-16, as SQLite may store
    text), its SHA-256 and MD5 in hex and raw."""
    found = {"utf-8": value.encode(), "utf-16le": value.encode("utf-16-le")}
    for name in ("sha256", "md5"):
        digest = hashlib.new(name, value.encode())
        found[f"{name} hex"] = digest.hexdigest().encode()
        found[f"{name} raw"] = digest.digest()
    return found


def scan(database: Path) -> list[str]:
    """What of SENT the database file and its write-ahead log hold, as `what (form) in file`."""
    hits = []
    for path in (database, database.with_name(database.name + "-wal")):
        if not path.exists():
            continue
        content = path.read_bytes()
        for what, value in SENT.items():
            hits.extend(
                f"{what} ({form}) in {path.name}" for form, raw in forms(value).items() if raw in content
            )
    return hits


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Api, Path]]:
    with (
        fresh_database("sqlite", tmp_path) as url,
        fresh_database("sqlite", tmp_path, migrated=False, name="keys") as keys_url,
    ):
        context = main.build_context(Settings(database_url=url, keystore_url=keys_url))
        try:
            keys = {scope: issue(context, scope, name=f"scan {scope}") for scope in Scope}
            yield Api(context, client(context), keys), Path(url.removeprefix("sqlite:///"))
        finally:
            context.db.dispose()
            context.keystore.dispose()


def send(api: Api, scope: Scope, *messages: dict[str, Any]) -> None:
    headers = basic(api.keys[scope]) | {"User-Agent": AGENT, "X-Forwarded-For": IP}
    response = api.client.post("/v1/batch", json={"batch": list(messages)}, headers=headers)
    assert response.status_code == 200, response.text


def test_after_collection_and_withdrawal_the_files_hold_no_personal_data_sent(api: tuple[Api, Path]) -> None:
    client, database = api
    anon = anonymous()
    grant = {"analytics": True, "personalization.behavioral": True, "personalization.segments": True}
    assert client.put(Scope.WRITE, {"anonymous_id": anon, "purposes": grant, "source": "banner"}).is_success
    context = {"ip": IP, "userAgent": AGENT, "locale": "de-DE", "location": {"country": "DE"}}
    page_context = {
        **context,
        "page": {
            "url": f"https://shop.example/account?email={EMAIL}&utm_source=mail#{FIRST}",
            "title": f"Welcome back, {FIRST} {LAST}",
            "referrer": f"https://mail.example/inbox?to={EMAIL}",
        },
    }
    user = uid("user")
    traits = {"first_name": FIRST, "last_name": LAST, "email": EMAIL, "country": "DE"}
    send(client, Scope.SERVER, {"type": "identify", "userId": user, "anonymousId": anon, "traits": traits,
                                "context": {**context, "traits": traits}})  # fmt: skip
    send(
        client,
        Scope.WRITE,
        {
            "type": "page",
            "anonymousId": anon,
            "properties": {"title": f"{FIRST} {LAST}"},
            "context": page_context,
        },
        track(
            "Products Searched", anonymousId=anon, properties={"query": f"orders of {EMAIL}"}, context=context
        ),
        track(
            "Product Viewed",
            anonymousId=anon,
            properties={"product_id": "p-1", "buyer": EMAIL},
            context=context,
        ),
        track(
            "Order Completed",
            anonymousId=anon,
            properties={"order_id": "o-1", "total": 9.5},
            context=page_context,
        ),
        # Quarantined (a timestamp that is no time): sealed under the subject's key.
        track("Product Viewed", anonymousId=anon, timestamp=f"{FIRST} {EMAIL}", context=page_context),
    )
    # Before the withdrawal the page's title, free text no redaction can recognise, holds the name:
    # the scan sees it, so that its silence afterwards means something.
    truncate_log(client.context.db.engine)
    assert any(hit.startswith("first name (utf-8)") for hit in scan(database))

    metrics = client.client.get("/metrics", headers=basic(client.keys[Scope.ADMIN])).text
    assert 'tactful_text_redactions_total{removed="email"} 1.0' in metrics  # the search query's
    assert 'tactful_text_redactions_total{removed="url_query"}' in metrics

    refused = {"analytics": False, "personalization.behavioral": False, "personalization.segments": False}
    assert client.put(Scope.WRITE, {"anonymous_id": anon, "purposes": refused, "source": "banner"}).is_success

    with client.context.session() as session:
        kept = session.execute(select(Event.type, Event.event)).all()
        quarantined = session.scalars(select(Quarantine.reason)).all()
    assert len(quarantined) == 1
    assert ("track", "Order Completed") in kept  # essential: the order record
    assert ("identify", None) in kept
    assert not any(kind == "page" for kind, _ in kept)
    assert scan(database) == []


def test_an_erasure_leaves_no_copy_in_the_log(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        database = Database(url)
        try:
            with database.session() as session:
                message = track(anonymousId=anonymous(), properties={"product_id": f"{FIRST} {LAST}"})
                session.add(
                    Event(id=new_id(), subject_id=(subject := new_id()), message_id=message["messageId"],
                          type="track", event="Product Viewed", timestamp=NOW, received_at=NOW,
                          properties=message["properties"], traits={}, context={})
                )  # fmt: skip
            assert scan_for(Path(url.removeprefix("sqlite:///")), FIRST)

            with database.session() as session:
                # Deleted content is overwritten (SQLite builds differ in their default).
                assert session.execute(text("PRAGMA secure_delete")).scalar() == 1
                collect_service.erase_subject(session, subject_id=subject)
            assert not scan_for(Path(url.removeprefix("sqlite:///")), FIRST)
        finally:
            database.dispose()


def test_the_log_is_emptied_only_after_a_commit(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        database = Database(url)
        wal = Path(url.removeprefix("sqlite:///") + "-wal")
        try:
            with pytest.raises(RuntimeError, match="rolled back"):
                asked_then_rolled_back(database)
            with database.session() as session:
                session.execute(text("CREATE TABLE scratch (value TEXT)"))
            assert wal.stat().st_size > 0  # the listener went with the rolled-back transaction's session
            with database.session() as session:
                session.execute(text("INSERT INTO scratch VALUES ('x')"))
                truncate_log_after_commit(session)
            assert wal.stat().st_size == 0
        finally:
            database.dispose()


def asked_then_rolled_back(database: Database) -> None:
    with database.session() as session:
        session.execute(text("CREATE TABLE scratch (value TEXT)"))
        truncate_log_after_commit(session)
        raise RuntimeError("rolled back")


def scan_for(database: Path, value: str) -> bool:
    paths = (database, database.with_name(database.name + "-wal"))
    return any(value.encode() in path.read_bytes() for path in paths if path.exists())
