"""Quarantined payloads: minimised, sealed (under the subject's key when the event names one, under
the day's quarantine key otherwise), naming people only by keyed digests, and every row expires."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.catalog.loader import load_catalog
from tactful.collect import quarantine
from tactful.collect import service as collect_service
from tactful.collect.models import Quarantine
from tactful.collect.schemas import Source, Status
from tactful.config import Limits, Settings
from tactful.crypto import Keystore
from tactful.db import Database, migrate
from tactful.errors import KeyDestroyed
from tactful.main import default_catalog_path
from tactful.profiles import service as profiles_service
from tactful.profiles.counters import InProcessCounters
from tactful.rights.registry import RightsContext, erase_all
from tests.collect.builders import LIMITS, T0, identify, open_policy, track, uid

SOURCE = Source(write_key_id=uuid.UUID(int=1), request_id="req-q", trusted=True)  # a server key
IP, USER_AGENT = "203.0.113.77", "Mozilla/5.0 (X11; Linux x86_64) QuarantineProbe/9.1"


def ingest(
    session: Session, keystore: Keystore, messages: list[Any], *, at: Any = T0, limits: Limits = LIMITS
) -> list[Status]:
    results = collect_service.ingest(
        session,
        keystore=keystore,
        messages=messages,
        source=SOURCE,
        at=at,
        limits=limits,
        policy=open_policy(),
    )
    return [r.status for r in results]


def held(session: Session, message_id: str) -> Quarantine:
    return session.scalars(select(Quarantine).where(Quarantine.message_id == message_id)).one()


def column_text(row: Quarantine) -> str:
    """Every column of the row as the database holds it, in one string (bytes decoded leniently)."""
    values = [getattr(row, c.key) for c in Quarantine.__table__.columns]
    return " ".join(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in values)


def revealing(*, email: str, name: str, **extra: Any) -> dict[str, Any]:
    """A rejected identify that carries an e-mail address, a name, a client address and a browser."""
    return identify(
        traits={"email": email, "first_name": name},
        context={"ip": IP, "userAgent": USER_AGENT, "locale": "de-DE", "traits": {"email": email}},
        timestamp="not a time",
        **extra,
    )


def test_a_rejected_identify_keeps_its_email_only_under_the_subjects_key(
    session: Session, keystore: Keystore
) -> None:
    email = f"{uid('ada')}@example.com"
    bad = identify(traits={"email": email, "first_name": "Ada"}, context="not an object")
    assert ingest(session, keystore, [bad]) == [Status.QUARANTINED]
    row = held(session, bad["messageId"])
    assert row.subject_id is not None
    assert row.raw is None
    assert row.raw_enc is not None
    assert email.encode() not in row.raw_enc
    assert email in (quarantine.read_raw(keystore, row) or "")
    assert row.user_ref == keystore.digest("user_id", bad["userId"])
    assert row.email_ref == keystore.digest("email", email)
    exported = collect_service.export_subject(session, subject_id=row.subject_id, keystore=keystore)
    [item] = exported["quarantine"]
    assert email in item["raw"]
    assert not {"raw_enc", "user_ref", "anonymous_ref", "email_ref"} & item.keys()
    keystore.destroy(row.subject_id)  # erasure: the payload is shredded with the key
    with pytest.raises(KeyDestroyed):
        quarantine.read_raw(keystore, row)


def test_a_payload_that_names_nobody_is_sealed_under_the_days_key_until_it_expires(
    session: Session, keystore: Keystore
) -> None:
    nobody = track(properties={"product_id": uid("p")})
    del nobody["anonymousId"]
    named = track(timestamp="not a time")
    assert ingest(session, keystore, [nobody, named]) == [Status.QUARANTINED, Status.QUARANTINED]
    anonymous, sealed = held(session, nobody["messageId"]), held(session, named["messageId"])
    assert anonymous.subject_id is None
    assert anonymous.raw is None
    assert anonymous.raw_enc is not None
    assert nobody["properties"]["product_id"].encode() not in anonymous.raw_enc
    assert nobody["properties"]["product_id"] in (quarantine.read_raw(keystore, anonymous) or "")
    # Bound to its day's key: under another day's it does not open.
    with pytest.raises(KeyDestroyed):
        keystore.system.decrypt(
            quarantine.key_name(T0 + timedelta(days=1)), anonymous.raw_enc, context=quarantine.RAW_CONTEXT
        )
    for row in (anonymous, sealed):
        assert row.expires_at == T0 + quarantine.RETENTION
    assert collect_service.purge_quarantine(session, at=T0 + quarantine.RETENTION - timedelta(seconds=1)) == 0
    assert collect_service.purge_quarantine(session, at=T0 + quarantine.RETENTION) >= 2
    session.expire_all()
    assert session.scalars(select(Quarantine).where(Quarantine.request_id == "req-q")).all() == []


def test_a_days_key_is_dropped_once_everything_it_sealed_is_past_retention(
    session: Session, tmp_path: Path
) -> None:
    keystore = Keystore(
        f"sqlite:///{tmp_path / 'keys.db'}", secret_key="a-test-secret-that-is-long-enough-0001"
    )
    keystore.create_schema()
    try:
        early = track(anonymousId=None, properties={"product_id": uid("p")})
        ingest(session, keystore, [early])
        first = held(session, early["messageId"])
        within = T0 + quarantine.RETENTION  # the first row is still readable while it may be kept
        ingest(session, keystore, [track(anonymousId=None)], at=within)
        assert early["properties"]["product_id"] in (quarantine.read_raw(keystore, first) or "")
        later = T0 + quarantine.RETENTION + timedelta(days=2)
        ingest(session, keystore, [track(anonymousId=None)], at=later)
        with pytest.raises(KeyDestroyed):
            quarantine.read_raw(keystore, first)
    finally:
        keystore.dispose()


def test_the_quarantine_keeps_its_own_configured_retention(session: Session, tmp_path: Path) -> None:
    keystore = Keystore(
        f"sqlite:///{tmp_path / 'keys.db'}", secret_key="a-test-secret-that-is-long-enough-0001"
    )
    keystore.create_schema()
    short = LIMITS.model_copy(update={"quarantine_retention_days": 3})
    try:
        early = track(anonymousId=None, timestamp="last tuesday")
        ingest(session, keystore, [early], limits=short)
        first = held(session, early["messageId"])
        assert first.expires_at == T0 + timedelta(days=3)
        just_before = T0 + timedelta(days=3) - timedelta(seconds=1)
        assert collect_service.purge_quarantine(session, at=just_before) == 0
        # The day key that sealed it goes once every row it sealed is past the shorter period.
        later = T0 + timedelta(days=5)
        ingest(session, keystore, [track(anonymousId=None, timestamp="x")], at=later, limits=short)
        with pytest.raises(KeyDestroyed):
            quarantine.read_raw(keystore, first)
        assert collect_service.purge_quarantine(session, at=later) >= 1
    finally:
        keystore.dispose()


def test_ip_and_user_agent_are_removed_and_the_rest_is_sealed(session: Session, keystore: Keystore) -> None:
    email, name = f"{uid('grace')}@example.org", "Grace Hopper-Quarantine"
    named = revealing(email=email, name=name)
    malformed = revealing(email=email, name=name, userId={"not": "an id"}, anonymousId=uid("anon"))
    assert ingest(session, keystore, [named, malformed]) == [Status.QUARANTINED] * 2
    for message in (named, malformed):
        row = held(session, message["messageId"])
        stored = column_text(row)
        for secret in (email, name, IP, USER_AGENT, "QuarantineProbe"):
            assert secret not in stored
        raw = quarantine.read_raw(keystore, row) or ""
        assert email in raw  # kept, sealed, for finding the sender's fault
        assert name in raw
        assert IP not in raw  # never stored, so never quarantined
        assert USER_AGENT not in raw
        assert "de-DE" in raw  # minimised, not emptied
    assert held(session, malformed["messageId"]).subject_id is None


def test_the_catalogs_request_only_fields_are_removed() -> None:
    demo = load_catalog(default_catalog_path())
    removed = quarantine.never_stored(demo)
    assert {"context.ip", "context.userAgent", "context.location.latitude"} <= removed
    assert "context.location.country" not in removed  # stored with events: kept
    message: dict[str, Any] = {
        "type": "track",
        "context": {
            "ip": IP,
            "location": {"latitude": 52.52, "longitude": 13.4, "country": "DE"},
            "tactful": {"subject_token": "eyJ.secret.token"},
        },
    }
    kept = quarantine.minimise(message, removed)
    assert kept == {"type": "track", "context": {"location": {"country": "DE"}, "tactful": {}}}
    assert message["context"]["ip"] == IP  # the message itself is left alone
    assert quarantine.minimise("not an object", removed) == "not an object"


def test_the_database_files_hold_none_of_it_after_a_checkpoint(tmp_path: Path) -> None:
    email, name = f"{uid('hedy')}@example.net", "Hedy Lamarr-Quarantine"
    main_file, keys_file = tmp_path / "main.db", tmp_path / "keys.db"
    migrate(f"sqlite:///{main_file}")
    db = Database(f"sqlite:///{main_file}")
    keystore = Keystore(f"sqlite:///{keys_file}", secret_key="a-test-secret-that-is-long-enough-0001")
    keystore.create_schema()
    try:
        with db.session() as session:
            statuses = ingest(
                session,
                keystore,
                [
                    revealing(email=email, name=name),
                    revealing(email=email, name=name, userId=["malformed"], anonymousId=None),
                ],
            )
        assert statuses == [Status.QUARANTINED] * 2
        with db.session() as session:
            assert len(session.scalars(select(Quarantine)).all()) == 2
    finally:
        db.dispose()
        keystore.dispose()
    for path in (main_file, keys_file):
        with sqlite3.connect(path) as conn:  # fold the write-ahead log into the file
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    files = [p for p in tmp_path.iterdir() if p.is_file()]
    assert main_file in files
    for path in files:
        content = path.read_bytes()
        for secret in (email, name, IP, USER_AGENT):
            assert secret.encode() not in content, (path.name, secret)


def test_erasure_reaches_rows_that_name_the_subject_only_by_anonymous_id_or_email(
    session: Session, keystore: Keystore
) -> None:
    user, anonymous, email = uid("user"), uid("anon"), f"{uid('ada')}@example.com"
    login = identify(userId=user, anonymousId=anonymous, traits={"email": email, "first_name": "Ada"})
    assert ingest(session, keystore, [login]) == [Status.STORED]
    subject = profiles_service.find_subject(session, keystore=keystore, user_id=user)
    assert subject is not None
    by_anonymous_id = track(anonymousId=anonymous, userId={"malformed": True})
    by_email = track(anonymousId=None, properties={"product_id": "p-1", "note": f"write to {email.upper()}"})
    someone_else = track(anonymousId=None, traits={"email": f"{uid('bob')}@example.com"})
    ingest(session, keystore, [by_anonymous_id, by_email, someone_else])
    naming = [held(session, m["messageId"]) for m in (by_anonymous_id, by_email)]
    assert all(row.subject_id is None for row in naming)

    exported = collect_service.export_subject(session, subject_id=subject, keystore=keystore)["quarantine"]
    assert {q["message_id"] for q in exported} == {by_anonymous_id["messageId"], by_email["messageId"]}
    assert all(q["raw"] for q in exported)

    context = RightsContext(
        session=session, keystore=keystore, settings=Settings(), counters=InProcessCounters()
    )
    erase_all(context, subject)
    session.expire_all()
    left = set(session.scalars(select(Quarantine.message_id).where(Quarantine.request_id == "req-q")))
    assert left == {someone_else["messageId"]}


def test_erasure_of_one_id_finds_rows_through_its_identities(session: Session, keystore: Keystore) -> None:
    anonymous = uid("anon")
    assert ingest(session, keystore, [track(anonymousId=anonymous)]) == [Status.STORED]
    subject = profiles_service.find_subject(session, keystore=keystore, anonymous_id=anonymous)
    assert subject is not None
    stray = track(anonymousId=anonymous, userId="u" * 300)  # too long to be an id
    ingest(session, keystore, [stray])
    assert held(session, stray["messageId"]).subject_id is None
    assert collect_service.erase_subject(session, subject_id=subject, keystore=keystore) >= 2
    assert session.scalars(select(Quarantine).where(Quarantine.message_id == stray["messageId"])).all() == []


def test_a_sealed_payload_stays_with_the_key_that_sealed_it_across_a_merge(
    session: Session, keystore: Keystore
) -> None:
    anonymous, user = uid("anon"), uid("user")
    visitor_bad = track(anonymousId=anonymous, timestamp="not a time")
    assert ingest(session, keystore, [track(userId=user, anonymousId=None), visitor_bad]) == [
        Status.STORED,
        Status.QUARANTINED,
    ]
    visitor = held(session, visitor_bad["messageId"]).subject_id
    assert visitor is not None
    assert ingest(session, keystore, [identify(userId=user, anonymousId=anonymous)]) == [Status.STORED]
    survivor = profiles_service.find_subject(session, keystore=keystore, user_id=user)
    assert survivor is not None
    assert survivor != visitor
    row = held(session, visitor_bad["messageId"])
    assert row.subject_id == visitor  # the merged profile's id, exported and erased with the survivor
    [item] = collect_service.export_subject(session, subject_id=visitor, keystore=keystore)["quarantine"]
    assert anonymous in item["raw"]


def _legacy(raw: str, *, subject_id: uuid.UUID | None = None) -> Quarantine:
    """A row as versions before sealing wrote it for a message that named nobody: `raw` in clear."""
    return Quarantine(
        id=uuid.uuid4(),
        subject_id=subject_id,
        reason="missing_identity",
        detail="",
        message_id=uid("msg"),
        raw=raw,
        received_at=T0,
        expires_at=T0 + quarantine.RETENTION,
        request_id="req-legacy",
    )


def test_rows_written_in_clear_before_are_minimised_and_sealed(session: Session, keystore: Keystore) -> None:
    email = f"{uid('old')}@example.com"
    message = {"type": "track", "userId": ["bad"], "traits": {"email": email}, "context": {"ip": IP}}
    whole, cut = _legacy(quarantine.raw_text(message)), _legacy('{"type":"track","traits":{"email":"' + email)
    erased = _legacy('{"type":"track"}', subject_id=uuid.uuid4())  # its subject's key is gone
    session.add_all([whole, cut, erased])
    session.flush()
    assert quarantine.read_raw(keystore, whole) == whole.raw  # readable until sealed

    assert quarantine.seal_legacy(session, keystore=keystore, batch_size=2) >= 3
    assert quarantine.seal_legacy(session, keystore=keystore) == 0
    for row in (whole, cut, erased):
        assert row.raw is None
        assert email not in column_text(row)
    assert whole.email_ref == keystore.digest("email", email)
    opened = quarantine.read_raw(keystore, whole) or ""
    assert email in opened
    assert IP not in opened
    assert quarantine.read_raw(keystore, cut) == '{"type":"track","traits":{"email":"' + email
    assert (erased.raw_enc, quarantine.read_raw(keystore, erased)) == (None, None)
    assert not keystore.has_subject(erased.subject_id)  # type: ignore[arg-type]
    assert collect_service.purge_quarantine(session, at=T0 + quarantine.RETENTION) >= 3


_leaf = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=8, max_size=24)
_payloads = st.recursive(
    st.dictionaries(st.sampled_from(["email", "name", "ip", "userAgent", "note"]), _leaf, min_size=1),
    lambda children: st.dictionaries(st.sampled_from(["traits", "context", "properties", "page"]), children),
    max_leaves=12,
)


def _leaves(value: object) -> list[str]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    return [value] if isinstance(value, str) else []


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(payload=_payloads, names_someone=st.booleans(), user_id=_leaf)
def test_no_quarantine_row_holds_any_value_of_its_message_in_clear(
    keystore: Keystore, payload: dict[str, Any], names_someone: bool, user_id: str
) -> None:
    message = {"type": "track", "userId": user_id, **payload}
    row = quarantine.row(
        message,
        keystore=keystore,
        subject_id=uuid.uuid4() if names_someone else None,
        reason="invalid_field",
        detail=None,
        message_id=None,
        received_at=T0,
        write_key_id=None,
        request_id=None,
        limit=32768,
    )
    assert row["raw"] is None
    # The columns that carry anything of the message (the others are times, ids and flags).
    carried = ("raw", "raw_enc", "detail", "message_id", "type", "user_ref", "anonymous_ref", "email_ref")
    assert set(carried) <= row.keys()
    stored = [v.decode("latin-1") if isinstance(v, bytes) else str(v) for k, v in row.items() if k in carried]
    for leaf in [user_id, *_leaves(payload)]:
        assert not any(leaf in value for value in stored), leaf
