"""A backup of the main database, even together with the key-encryption key, cannot be read once
the subject's key is gone from the keystore (DESIGN §5): erasure reaches every copy."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select

from tactful.config import Settings
from tactful.crypto import Keystore
from tactful.db import Database, migrate
from tactful.errors import KeyDestroyed
from tactful.profiles import service as profiles_service
from tactful.profiles.models import Identity, Trait
from tactful.rights.registry import RightsContext, erase_all
from tests.profiles.builders import T0, catalog

SECRET = "crypto-shredding-test-secret-of-enough-length"


def _backup(source: Path, target: Path) -> None:
    # Fold the WAL into the main file first, as a file-level backup of a quiet database would.
    with sqlite3.connect(source) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    shutil.copyfile(source, target)


def test_a_backup_cannot_decrypt_an_erased_subject(tmp_path: Path) -> None:
    main_file, backup_file, keys_file = tmp_path / "main.db", tmp_path / "backup.db", tmp_path / "keys.db"
    migrate(f"sqlite:///{main_file}")
    db = Database(f"sqlite:///{main_file}")
    keystore = Keystore(f"sqlite:///{keys_file}", secret_key=SECRET)
    keystore.create_schema()
    email = "ada.lovelace@example.com"
    with db.session() as session:
        subject_id = profiles_service.resolve(
            session, keystore=keystore, anonymous_id=None, user_id="ada-1815", at=T0
        ).subject_id
        profiles_service.apply_traits(
            session,
            keystore=keystore,
            catalog=catalog(),
            subject_id=subject_id,
            traits={"email": email, "first_name": "Ada"},
            at=T0,
        )
    db.dispose()
    _backup(main_file, backup_file)
    assert email.encode() not in backup_file.read_bytes()
    assert b"ada-1815" not in backup_file.read_bytes()

    copy = Database(f"sqlite:///{backup_file}")
    try:
        with copy.session() as session:
            sealed = session.scalars(select(Trait.value_enc).where(Trait.atom == "traits.email")).one()
            user_id_sealed = session.scalars(select(Identity.value_enc)).one()
            assert sealed is not None
            # While the key exists, the backup is readable with the keystore: the test can fail.
            profile = profiles_service.get_profile(session, keystore=keystore, subject_id=subject_id)
            assert profile.traits["traits.email"] == email

        db = Database(f"sqlite:///{main_file}")
        with db.session() as session:
            erased = erase_all(
                RightsContext(session=session, keystore=keystore, settings=Settings()), subject_id
            )
        db.dispose()
        assert erased["keystore"] == 1

        # The attacker holds the backup and the KEK (the same secret), with the keystore as it is now.
        restored_keystore = Keystore(f"sqlite:///{keys_file}", secret_key=SECRET)
        with copy.session() as session, pytest.raises(KeyDestroyed):
            profiles_service.get_profile(session, keystore=restored_keystore, subject_id=subject_id)
        with pytest.raises(KeyDestroyed):
            restored_keystore.decrypt(subject_id, sealed, context="traits.email")
        with pytest.raises(KeyDestroyed):
            restored_keystore.decrypt(subject_id, user_id_sealed, context="identity.user_id")
        assert restored_keystore.lookup_index(kind="email", value=email) is None
        restored_keystore.dispose()
    finally:
        copy.dispose()
        keystore.dispose()
