"""Backups after an erasure: a copy of the main database taken before it can no longer be decrypted
for the person (crypto-shredding), and once restored, `tactful privacy reapply` (and every server
start) erases them from it again, from the erasure log in the keystore."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from tactful import main
from tactful.audit import verification
from tactful.audit.models import AuditEntry
from tactful.cli import app
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.errors import KeyDestroyed
from tactful.profiles import service as profiles_service
from tactful.profiles.models import Identity, Trait
from tactful.rights.due import RequestType
from tactful.rights.jobs import JobRunner, RunOutcome
from tactful.rights.reapply import REAPPLIED, reapply
from tactful.rights.steps import PLANS, Outcome, StepContext
from tactful.types import utcnow
from tests.rights.erasing import POLICY, SECRET, Place, count, place, seed, subject_of
from tests.rights.requesting import file

NOW = utcnow().replace(microsecond=0)


@pytest.fixture
def where(tmp_path: Path) -> Iterator[Place]:
    with place("sqlite", tmp_path) as found:  # files to copy: SQLite's
        yield found


def backup(source: Path, target: Path) -> None:
    # Fold the WAL into the file first, as a file-level backup of a quiet database would.
    with sqlite3.connect(source) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    shutil.copyfile(source, target)


def erase(where: Place, user_id: str) -> None:
    with where.database.session() as session:
        record = file(session, where.keystore, POLICY, RequestType.ERASURE, at=NOW, user_id=user_id)
    assert JobRunner(where.jobs()).run(record.id) is RunOutcome.COMPLETED


def test_a_restored_backup_is_unreadable_for_the_person_and_erased_again(where: Place) -> None:
    ada, bob = seed(where, at=NOW, tag="ada"), seed(where, at=NOW, tag="bob")
    main_file = where.files[0]
    copy_file = main_file.with_name("backup.db")
    backup(main_file, copy_file)
    erase(where, ada.user_id)

    # Crypto-shredding: the copy holds her sealed identifiers, which no longer open.
    copy = Database(f"sqlite:///{copy_file}")
    try:
        with copy.session() as session:
            sealed = session.scalars(
                select(Identity.value_enc).where(Identity.subject_id == ada.subject_id)
            ).all()
            email = session.scalars(
                select(Trait.value_enc).where(
                    Trait.subject_id == ada.subject_id, Trait.atom == "traits.email"
                )
            ).one()
            assert len(sealed) == 3
            for token in sealed:
                for kind in ("user_id", "anonymous_id"):
                    with pytest.raises(KeyDestroyed):
                        where.keystore.decrypt(ada.subject_id, token, context=f"identity.{kind}")
            assert email is not None
            with pytest.raises(KeyDestroyed):
                where.keystore.decrypt(ada.subject_id, email, context="traits.email")
            with pytest.raises(KeyDestroyed):
                profiles_service.get_profile(session, keystore=where.keystore, subject_id=ada.subject_id)
            # Bob's, in the same copy, still open: the key is what went.
            assert profiles_service.get_profile(session, keystore=where.keystore, subject_id=bob.subject_id)
    finally:
        copy.dispose()

    # The copy is restored over the main database: she is back in it, until the log is re-applied.
    where.database.dispose()
    for stale in (main_file.with_name(main_file.name + "-wal"), main_file.with_name(main_file.name + "-shm")):
        stale.unlink(missing_ok=True)
    shutil.copyfile(copy_file, main_file)
    assert count(where, "events") == 6
    done = reapply(database=where.database, keystore=where.keystore, settings=where.settings, at=utcnow())
    assert (done.logged, done.restored, done.keys) == (1, 1, 0)
    assert done.removed >= 3 + 2 + 3  # her events, quarantined messages, profile rows
    assert count(where, "events") == 3  # bob's
    assert subject_of(where, user_id=ada.user_id) is None
    assert subject_of(where, user_id=bob.user_id) == bob.subject_id
    data = main_file.read_bytes() + main_file.with_name(main_file.name + "-wal").read_bytes()
    assert ada.subject_id.hex.encode() not in data
    assert bob.subject_id.hex.encode() in data
    again = reapply(database=where.database, keystore=where.keystore, settings=where.settings, at=utcnow())
    assert (again.restored, again.removed, again.keys) == (0, 0, 0)
    with where.database.session() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == REAPPLIED)).all()
        assert [(e.subject_ref, dict(e.details or {})) for e in entries] == [
            (None, {"subjects": 1, "rows": done.removed, "keys": 0})
        ]
        assert verification.verify(session, keystore=where.keystore).ok


def test_the_command_reapplies_and_the_log_expires(where: Place, monkeypatch: pytest.MonkeyPatch) -> None:
    ada = seed(where, at=NOW, tag="ada")
    erase(where, ada.user_id)
    # A key made again for the erased id (a straggling process): the re-application destroys it.
    where.keystore.ensure_subject(ada.subject_id)
    for name, value in {
        "TACTFUL_DATABASE_URL": where.settings.database_url,
        "TACTFUL_KEYSTORE_URL": where.settings.keystore_url,
        "TACTFUL_SECRET_KEY": SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TACTFUL_CONFIG_FILE", raising=False)
    result = CliRunner().invoke(app, ["privacy", "reapply", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "erased_subjects_logged": 1,
        "found_again": 0,
        "rows_removed": 0,
        "keys_destroyed": 1,
        "log_entries_expired": 0,
    }
    after = Keystore(where.settings.keystore_url, secret_key=SECRET)
    assert not after.has_subject(ada.subject_id)
    after.dispose()
    # Past the deduplication window the identifiers go; past the backups' retention, the ids.
    log = where.keystore.erasure_log
    window = timedelta(days=where.settings.dedup_retention_days)
    assert log.erased([("user_id", ada.user_id)], at=utcnow()) != {}
    assert log.erased([("user_id", ada.user_id)], at=utcnow() + window + timedelta(days=1)) == {}
    kept = timedelta(days=where.settings.privacy.erasure_log_days)
    assert log.purge(at=utcnow() + window + timedelta(days=1)) == {"identifiers": 4, "subjects": 0}
    assert log.subjects(at=utcnow()) == [ada.subject_id]
    assert log.purge(at=utcnow() + kept + timedelta(days=1)) == {"identifiers": 0, "subjects": 1}
    assert log.subjects(at=utcnow()) == []


def test_a_server_start_reapplies_the_log(where: Place) -> None:
    ada = seed(where, at=NOW, tag="ada")
    main_file = where.files[0]
    copy_file = main_file.with_name("backup.db")
    backup(main_file, copy_file)
    erase(where, ada.user_id)
    where.database.dispose()
    for stale in (main_file.with_name(main_file.name + "-wal"), main_file.with_name(main_file.name + "-shm")):
        stale.unlink(missing_ok=True)
    shutil.copyfile(copy_file, main_file)
    assert count(where, "events") == 3
    settings = where.settings.model_copy(update={"secret_key": SecretStr(SECRET)})
    with TestClient(main.create_app(settings)) as client:  # the lifespan runs: the server starts
        assert client.get("/healthz").status_code == 200
    assert count(where, "events") == 0
    assert subject_of(where, user_id=ada.user_id) is None


@dataclass(frozen=True)
class Failing:
    name: str = "erase_stores"

    def run(self, ctx: StepContext) -> Outcome:
        raise RuntimeError("the database went away")


def test_an_erasure_that_failed_before_its_deletions_is_not_completed_by_a_reapplication(
    where: Place,
) -> None:
    ada = seed(where, at=NOW, tag="ada")
    plan = tuple(Failing() if s.name == "erase_stores" else s for s in PLANS[RequestType.ERASURE])
    with where.database.session() as session:
        record = file(session, where.keystore, POLICY, RequestType.ERASURE, at=NOW, user_id=ada.user_id)
    runner = JobRunner(where.jobs(), plans={RequestType.ERASURE: plan}, max_attempts=1)
    assert runner.run(record.id) is RunOutcome.FAILED
    done = reapply(database=where.database, keystore=where.keystore, settings=where.settings, at=utcnow())
    assert (done.logged, done.restored, done.keys) == (0, 0, 0)
    assert subject_of(where, user_id=ada.user_id) == ada.subject_id
