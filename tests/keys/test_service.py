"""Keys are shown once, stored hashed, refused alike whatever is wrong with them, and audited."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.audit import verification as audit_verification
from tactful.audit.models import AuditEntry
from tactful.crypto import Keystore
from tactful.errors import InvalidInput, NotAuthenticated, NotFound
from tactful.keys import service as keys_service
from tactful.keys.models import ApiKey
from tactful.keys.schemas import Scope
from tests.audit.builders import at
from tests.backends import migrated_database

KEY_FORMAT = re.compile(r"tfk_(write|server|admin)_[0-9a-f]{32}_[A-Za-z0-9_-]{43}")


def _create(
    session: Session, keystore: Keystore, scope: Scope = Scope.WRITE, name: str = "shop", when: float = 0
) -> str:
    _row, token = keys_service.create_key(
        session, keystore=keystore, name=name, scope=scope, at=at(when), actor="cli"
    )
    return token


def _refused(session: Session, token: str | None) -> None:
    with pytest.raises(NotAuthenticated) as caught:
        keys_service.authenticate(session, token=token)
    assert caught.value.message == keys_service.INVALID_KEY


@pytest.mark.parametrize("scope", list(Scope))
def test_a_created_key_authenticates_with_its_scope(
    session: Session, keystore: Keystore, scope: Scope
) -> None:
    row, token = keys_service.create_key(
        session, keystore=keystore, name=" backend ", scope=scope, at=at(0), actor="cli"
    )

    assert KEY_FORMAT.fullmatch(token)
    assert token.startswith(f"tfk_{scope}_{row.id.hex}_")
    assert row.prefix == f"tfk_{scope}_{row.id.hex}"
    principal = keys_service.authenticate(session, token=token)
    assert (principal.key_id, principal.scope, principal.name) == (row.id, scope, "backend")


def test_only_a_hash_of_the_key_is_stored(session: Session, keystore: Keystore) -> None:
    token = _create(session, keystore)
    secret = token[-43:]

    row = session.scalars(select(ApiKey)).one()
    stored = [str(getattr(row, column.key)) for column in ApiKey.__table__.columns]
    assert all(token not in value and secret not in value for value in stored)
    assert re.fullmatch(r"[0-9a-f]{64}", row.secret_hash)


def test_keys_are_unique(session: Session, keystore: Keystore) -> None:
    tokens = {_create(session, keystore) for _ in range(20)}
    assert len(tokens) == 20


def test_every_failure_gets_the_same_answer(session: Session, keystore: Keystore) -> None:
    write = _create(session, keystore, Scope.WRITE)
    admin = _create(session, keystore, Scope.ADMIN)
    revoked = _create(session, keystore, Scope.ADMIN)
    keys_service.revoke_key(
        session, keystore=keystore, key_id=keys_service.key_id_of(revoked), at=at(1), actor="cli"
    )
    prefix, secret = write[: -43 - 1], write[-43:]
    other_secret = admin[-43:]

    for token in [
        None,
        "",
        "not-a-key",
        prefix,
        f"tfk_write_{uuid.uuid4().hex}_{secret}",  # unknown id
        f"{prefix}_{other_secret}",  # wrong secret
        f"{prefix}_{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}",  # one character off
        write.replace("tfk_write_", "tfk_admin_"),  # a claimed scope it does not have
        write + " ",
        write.upper(),
        revoked,
    ]:
        _refused(session, token)
    assert keys_service.authenticate(session, token=write).scope is Scope.WRITE


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50)
@given(token=st.text(max_size=300))
def test_no_arbitrary_text_authenticates(session: Session, token: str) -> None:
    _refused(session, token)


def test_keys_are_listed_without_secrets(session: Session, keystore: Keystore) -> None:
    first = _create(session, keystore, Scope.WRITE, "frontend", when=0)
    second = _create(session, keystore, Scope.SERVER, "backend", when=1)
    keys_service.revoke_key(
        session, keystore=keystore, key_id=keys_service.key_id_of(first), at=at(5), actor="cli"
    )

    listed = keys_service.list_keys(session)
    assert [(k.name, k.scope, k.active) for k in listed] == [
        ("frontend", Scope.WRITE, False),
        ("backend", Scope.SERVER, True),
    ]
    assert listed[0].revoked_at == at(5)
    assert all(not hasattr(k, "secret_hash") for k in listed)
    assert [k.name for k in keys_service.list_keys(session, include_revoked=False)] == ["backend"]
    assert first not in repr(listed)
    assert second not in repr(listed)


def test_creation_and_revocation_are_audited_without_the_secret(session: Session, keystore: Keystore) -> None:
    row, token = keys_service.create_key(
        session, keystore=keystore, name="shop", scope=Scope.SERVER, at=at(0), actor="api:key:x"
    )
    keys_service.revoke_key(session, keystore=keystore, key_id=row.id, at=at(1), actor="cli")
    keys_service.revoke_key(session, keystore=keystore, key_id=row.id, at=at(2), actor="cli")

    entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    assert [(e.action, e.actor, e.details) for e in entries] == [
        ("keys.created", "api:key:x", {"key_id": str(row.id), "scope": "server"}),
        ("keys.revoked", "cli", {"key_id": str(row.id), "scope": "server"}),
    ]
    assert all(e.subject_ref is None for e in entries)
    assert all(token[-43:] not in str(e.details) for e in entries)
    assert audit_verification.verify(session, keystore=keystore).ok


def test_revoking_twice_keeps_the_first_time(session: Session, keystore: Keystore) -> None:
    row, _ = keys_service.create_key(
        session, keystore=keystore, name="k", scope="write", at=at(0), actor="cli"
    )
    first = keys_service.revoke_key(session, keystore=keystore, key_id=row.id, at=at(1), actor="cli")
    again = keys_service.revoke_key(session, keystore=keystore, key_id=row.id, at=at(9), actor="cli")
    assert first.revoked_at == again.revoked_at == at(1)


def test_revoking_an_unknown_key_is_not_found(session: Session, keystore: Keystore) -> None:
    with pytest.raises(NotFound):
        keys_service.revoke_key(session, keystore=keystore, key_id=uuid.uuid4(), at=at(0), actor="cli")


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "tab\there", "nul\x00"])
def test_refuses_bad_names(session: Session, keystore: Keystore, name: str) -> None:
    with pytest.raises(InvalidInput):
        keys_service.create_key(
            session, keystore=keystore, name=name, scope=Scope.WRITE, at=at(0), actor="cli"
        )


def test_refuses_unknown_scopes(session: Session, keystore: Keystore) -> None:
    with pytest.raises(InvalidInput):
        keys_service.create_key(session, keystore=keystore, name="k", scope="root", at=at(0), actor="cli")
    assert audit_service.head(session) is None


def test_last_use_is_recorded_at_most_hourly(session: Session, keystore: Keystore) -> None:
    token = _create(session, keystore)
    key_id = keys_service.key_id_of(token)

    keys_service.authenticate(session, token=token)
    assert keys_service.get_key(session, key_id=key_id).last_used_at is None  # type: ignore[union-attr]
    keys_service.authenticate(session, token=token, at=at(10))
    keys_service.authenticate(session, token=token, at=at(10) + timedelta(minutes=59))
    assert keys_service.get_key(session, key_id=key_id).last_used_at == at(10)  # type: ignore[union-attr]
    keys_service.authenticate(session, token=token, at=at(10) + timedelta(hours=1))
    assert keys_service.get_key(session, key_id=key_id).last_used_at == at(10) + timedelta(hours=1)  # type: ignore[union-attr]


def test_key_id_of_reads_ids_prefixes_and_keys(session: Session, keystore: Keystore) -> None:
    row, token = keys_service.create_key(
        session, keystore=keystore, name="k", scope="admin", at=at(0), actor="cli"
    )
    for text in (str(row.id), row.id.hex, row.prefix, token, f"  {token}\n"):
        assert keys_service.key_id_of(text) == row.id
    for text in ("", "tfk_admin_", "nonsense", "tfk_root_" + row.id.hex):
        with pytest.raises(InvalidInput):
            keys_service.key_id_of(text)


def test_revocation_holds_for_other_sessions_at_once(
    backend: str, tmp_path: Path, keystore: Keystore
) -> None:
    # Separate committed transactions, as separate processes would see them.
    with migrated_database(backend, tmp_path) as db:
        with db.session() as session:
            row, token = keys_service.create_key(
                session, keystore=keystore, name="k", scope="server", at=at(0), actor="cli"
            )
        reader = db.sessionmaker()
        try:
            with reader.begin():
                assert keys_service.authenticate(reader, token=token).key_id == row.id
            with db.session() as session:
                keys_service.revoke_key(session, keystore=keystore, key_id=row.id, at=at(1), actor="cli")
            with reader.begin():
                _refused(reader, token)
        finally:
            reader.close()
