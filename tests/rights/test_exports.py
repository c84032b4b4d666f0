"""Packages at rest: an access or portability request's job seals its package into the export folder
(no identifier in the file's bytes, none of the token in the database), it opens back to the zip, a
changed or cut file does not open, and it is gone at expiry, with the person's erasure, and once its
key is destroyed."""

from __future__ import annotations

import hashlib
import io
import os
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tactful.audit.models import AuditEntry
from tactful.config import PrivacySettings, Settings
from tactful.crypto import Keystore
from tactful.errors import KeyDestroyed
from tactful.profiles.counters import InProcessCounters
from tactful.rights import exports
from tactful.rights import requests as requests_service
from tactful.rights.due import RequestType
from tactful.rights.jobs import JobContext, JobRunner, RunOutcome
from tactful.rights.models import PrivacyExport
from tactful.rights.package import PackageKind
from tactful.rights.schemas import RequestRecord
from tactful.types import utcnow
from tests.backends import migrated_database
from tests.rights.builders import Person, person
from tests.rights.requesting import Jobs, file, policy

NOW = utcnow().replace(microsecond=0)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("exports")


@pytest.fixture(scope="module")
def env(
    backend: str, tmp_path_factory: pytest.TempPathFactory, keystore: Keystore, folder: Path
) -> Iterator[Jobs]:
    with migrated_database(backend, tmp_path_factory.mktemp("exports-db")) as db:
        chosen = policy()
        settings = Settings(
            database_url=db.url,
            keystore_url=str(keystore.engine.url),
            privacy=PrivacySettings(export_dir=folder, export_days=7, export_downloads=3),
        )
        context = JobContext(database=db, keystore=keystore, settings=settings, policy=lambda: chosen)
        yield Jobs(context, chosen)


def family(env: Jobs) -> Person:
    with env.database.session() as session:
        return person(session, env.keystore, InProcessCounters())


def exported(
    env: Jobs, who: Person, kind: RequestType = RequestType.ACCESS
) -> tuple[RequestRecord, PrivacyExport]:
    with env.database.session() as session:
        record = file(session, env.keystore, env.policy, kind, at=NOW, user_id=who.user_id)
    assert JobRunner(env.context).run(record.id) is RunOutcome.COMPLETED
    with env.database.session() as session:
        row = exports.of_request(session, request_id=record.id)
        assert row is not None
        session.expunge(row)
    return record, row


def opened(env: Jobs, row: PrivacyExport) -> bytes:
    with env.database.session() as session:
        found = exports.open_export(session, keystore=env.keystore, settings=env.context.settings, row=row)
    assert found is not None
    with found.path.open("rb") as handle:
        return b"".join(found.chunks(handle))


def test_the_job_seals_a_package_that_opens_back_to_the_zip(env: Jobs, folder: Path) -> None:
    ada = family(env)
    record, row = exported(env, ada)
    with env.database.session() as session:
        done = requests_service.get_request(session, public_id=record.public_id)
    assert done is not None
    assert done.receipt is not None
    package = done.receipt["steps"]["export"]["package"]
    assert package["kind"] == "access"
    assert package["downloads_allowed"] == 3
    assert row.expires_at - row.created_at == timedelta(days=7)
    path = exports.file_of(env.context.settings, row.id)
    assert path.parent == folder
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    data = opened(env, row)
    assert len(data) == row.size
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert "README.txt" in archive.namelist()
        assert ada.email in archive.read("traits.json").decode()


def test_the_file_holds_no_identifier_and_the_database_no_token(env: Jobs) -> None:
    ada = family(env)
    _, row = exported(env, ada)
    raw = exports.file_of(env.context.settings, row.id).read_bytes()
    email = ada.email.lower().encode()
    for needle in (
        ada.user_id.encode(),
        ada.anonymous_id.encode(),
        email,
        b"Ada",
        hashlib.sha256(email).hexdigest().encode(),
        hashlib.md5(email).hexdigest().encode(),  # noqa: S324 - looked for, not used
        b"PK\x03\x04",  # not even the zip's own signature: everything is sealed
    ):
        assert needle not in raw, needle
    token = exports.token_of(env.keystore, row.id)
    assert len(token) >= 43  # 256 bits, made again on demand
    with env.database.session() as session:
        columns = session.execute(select(PrivacyExport.__table__).where(PrivacyExport.id == row.id)).one()
    assert all(token not in str(value) for value in columns)
    assert row.token_digest == hashlib.sha256(token.encode()).hexdigest()


def test_portability_is_packaged_as_such(env: Jobs) -> None:
    ada = family(env)
    _, row = exported(env, ada, RequestType.PORTABILITY)
    assert row.kind == PackageKind.PORTABILITY.value
    with zipfile.ZipFile(io.BytesIO(opened(env, row))) as archive:
        assert "decisions.json" not in archive.namelist()
        assert "computed." not in archive.read("traits.json").decode()


def test_a_changed_or_cut_file_does_not_open(env: Jobs, tmp_path: Path) -> None:
    settings = env.context.settings.model_copy(update={"privacy": PrivacySettings(export_dir=tmp_path)})
    ada = family(env)
    data = os.urandom(10_000)
    with env.database.session() as session:
        record = file(session, env.keystore, env.policy, RequestType.ACCESS, at=NOW, user_id=ada.user_id)
        stored = exports.store(
            session, keystore=env.keystore, settings=settings, request_id=record.id, subject_id=ada.survivor,
            kind=PackageKind.ACCESS, data=data, at=NOW, expires_at=NOW + timedelta(days=1), chunk_size=1000,
        )  # fmt: skip
        row = session.get(PrivacyExport, stored.export_id)
        assert row is not None
        found = exports.open_export(session, keystore=env.keystore, settings=settings, row=row)
    assert found is not None
    path = found.path
    with path.open("rb") as handle:
        assert b"".join(found.chunks(handle)) == data  # ten chunks, each checked
    sealed = path.read_bytes()
    path.write_bytes(sealed[:-100] + bytes([sealed[-100] ^ 1]) + sealed[-99:])
    with path.open("rb") as handle, pytest.raises(KeyDestroyed):
        b"".join(found.chunks(handle))
    path.write_bytes(sealed[: len(exports.MAGIC) + 9 * (1000 + 29)])  # the last chunk cut off
    with path.open("rb") as handle, pytest.raises(KeyDestroyed):
        b"".join(found.chunks(handle))
    swapped = replace(found, size=9000)  # told it ends earlier: the ninth chunk is not the last
    path.write_bytes(sealed)
    with path.open("rb") as handle, pytest.raises(KeyDestroyed):
        b"".join(swapped.chunks(handle))


def test_expiry_deletes_the_package_and_its_file(env: Jobs) -> None:
    ada = family(env)
    _, row = exported(env, ada)
    path = exports.file_of(env.context.settings, row.id)
    settings = env.context.settings
    with env.database.session() as session:
        exports.sweep(
            session, keystore=env.keystore, settings=settings, at=row.expires_at - timedelta(seconds=1)
        )
        assert session.get(PrivacyExport, row.id) is not None
    assert path.exists()
    with env.database.session() as session:
        assert exports.sweep(session, keystore=env.keystore, settings=settings, at=row.expires_at) >= 1
        assert session.get(PrivacyExport, row.id) is None
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()
    assert not path.exists()
    assert last.action == exports.EXPIRED


def test_the_sweep_removes_files_no_row_names_once_old(env: Jobs) -> None:
    settings = env.context.settings
    stray = exports.file_of(settings, uuid.uuid4())
    fresh = exports.file_of(settings, uuid.uuid4())
    stray.write_bytes(b"left by a rolled-back step")
    fresh.write_bytes(b"being made right now")
    old = time.time() - 2 * exports.ORPHAN_AFTER.total_seconds()
    os.utime(stray, (old, old))
    ada = family(env)
    _, kept = exported(env, ada)
    kept_path = exports.file_of(settings, kept.id)
    os.utime(kept_path, (old, old))
    with env.database.session() as session:
        exports.sweep(session, keystore=env.keystore, settings=settings, at=utcnow())
    assert not stray.exists()
    assert fresh.exists()
    assert kept_path.exists()
    fresh.unlink()


def test_erasure_deletes_the_package_and_destroys_its_key(env: Jobs) -> None:
    ada = family(env)
    _, row = exported(env, ada)
    path = exports.file_of(env.context.settings, row.id)
    copy = path.read_bytes()
    with env.database.session() as session:
        erasure = file(session, env.keystore, env.policy, RequestType.ERASURE, at=NOW, user_id=ada.user_id)
    assert JobRunner(env.context).run(erasure.id) is RunOutcome.COMPLETED
    assert not path.exists()
    with env.database.session() as session:
        assert session.get(PrivacyExport, row.id) is None
        # A copy of the row and the file (a backup): the key that sealed it is gone with the person.
        assert (
            exports.open_export(session, keystore=env.keystore, settings=env.context.settings, row=row)
            is None
        )
    path.write_bytes(copy)
    try:
        with pytest.raises(KeyDestroyed):
            env.keystore.decrypt(row.subject_id, row.key_enc, context=f"{exports.KEY_CONTEXT}:{row.id}")
    finally:
        path.unlink()


def test_nothing_held_makes_no_package(env: Jobs) -> None:
    with env.database.session() as session:
        record = file(session, env.keystore, env.policy, RequestType.ACCESS, at=NOW, user_id="nobody-here")
    assert JobRunner(env.context).run(record.id) is RunOutcome.COMPLETED
    with env.database.session() as session:
        assert exports.of_request(session, request_id=record.id) is None
