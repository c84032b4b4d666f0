from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from tactful.crypto import Keystore, commit
from tactful.errors import ConfigurationError, KeyDestroyed

SECRET = "a-test-secret-that-is-long-enough-0001"


def _store(path: Path, secret: str = SECRET) -> Keystore:
    store = Keystore(f"sqlite:///{path}", secret_key=secret)
    store.create_schema()
    return store


def test_round_trip_is_bound_to_subject_and_context(keystore: Keystore) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    token = keystore.encrypt(alice, "alice@example.com", context="traits.email")
    assert b"alice" not in token
    assert keystore.decrypt(alice, token, context="traits.email") == "alice@example.com"
    keystore.ensure_subject(bob)
    with pytest.raises(KeyDestroyed):
        keystore.decrypt(bob, token, context="traits.email")
    with pytest.raises(KeyDestroyed):
        keystore.decrypt(alice, token, context="traits.phone")


def test_subject_refs_and_digests(keystore: Keystore) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    assert keystore.subject_ref(alice) == keystore.subject_ref(alice)
    assert keystore.subject_ref(alice) != keystore.subject_ref(bob)
    assert keystore.digest("user_id", "u1") == keystore.digest("user_id", "u1")
    assert keystore.digest("user_id", "u1") != keystore.digest("anonymous_id", "u1")


def test_blind_index_is_destroyed_with_the_subject(keystore: Keystore) -> None:
    alice = uuid.uuid4()
    keystore.ensure_subject(alice)
    keystore.put_index(alice, kind="email", value="alice@example.com")
    assert keystore.lookup_index(kind="email", value="alice@example.com") == alice
    assert keystore.destroy(alice)
    assert keystore.lookup_index(kind="email", value="alice@example.com") is None
    assert not keystore.destroy(alice)


def test_database_copy_with_the_kek_cannot_decrypt_after_key_removal(tmp_path: Path) -> None:
    """A backup of the main data plus the KEK is not enough once the subject's key is gone."""
    store = _store(tmp_path / "keys.db")
    subject = uuid.uuid4()
    token = store.encrypt(subject, "+44 20 7946 0000", context="traits.phone")
    backup = tmp_path / "main-backup.bin"
    backup.write_bytes(token)  # what a copy of the main database holds
    shutil.copy(tmp_path / "keys.db", tmp_path / "keys-before-erasure.db")
    store.destroy(subject)
    store.dispose()
    reopened = _store(tmp_path / "keys.db")
    with pytest.raises(KeyDestroyed):
        reopened.decrypt(subject, backup.read_bytes(), context="traits.phone")
    reopened.dispose()


def test_rotation_rewraps_every_key(tmp_path: Path) -> None:
    store = _store(tmp_path / "keys.db")
    subjects = [uuid.uuid4() for _ in range(5)]
    tokens = {s: store.encrypt(s, f"value-{s}", context="c") for s in subjects}
    digest = store.digest("user_id", "u1")
    seen: list[tuple[int, int]] = []
    assert (
        store.rotate("a-brand-new-secret-that-is-long-enough", progress=lambda d, t: seen.append((d, t))) == 6
    )
    assert seen[-1] == (6, 6)
    store.dispose()
    with pytest.raises(ConfigurationError, match="another TACTFUL_SECRET_KEY"):
        _store(tmp_path / "keys.db").decrypt(subjects[0], tokens[subjects[0]], context="c")
    rotated = _store(tmp_path / "keys.db", "a-brand-new-secret-that-is-long-enough")
    for subject, token in tokens.items():
        assert rotated.decrypt(subject, token, context="c") == f"value-{subject}"
    assert rotated.digest("user_id", "u1") == digest
    rotated.dispose()


def test_tampered_wrapped_key_is_refused(tmp_path: Path) -> None:
    store = _store(tmp_path / "keys.db")
    subject = uuid.uuid4()
    token = store.encrypt(subject, "x", context="c")
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE subject_keys SET wrapped = :w"), {"w": b"\x01" + b"\x00" * 90})
    with pytest.raises(ConfigurationError, match="altered"):
        store.decrypt(subject, token, context="c")
    store.dispose()


def _commits(store: Keystore) -> list[object]:
    seen: list[object] = []
    sa.event.listen(store.engine, "commit", seen.append)
    return seen


def test_ensure_subjects_creates_missing_keys_in_one_transaction_and_keeps_existing_ones(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path / "keys.db")
    known = uuid.uuid4()
    token = store.encrypt(known, "kept", context="c")
    fresh = [uuid.uuid4() for _ in range(40)]
    commits = _commits(store)
    store.ensure_subjects([known, *fresh, fresh[0]])
    assert len(commits) == 1
    assert all(store.has_subject(s) for s in fresh)
    assert store.decrypt(known, token, context="c") == "kept"
    store.ensure_subjects(fresh)  # idempotent
    store.ensure_subjects([])
    store.dispose()


def test_a_cached_view_unwraps_each_key_once_and_forgets_it_with_the_view(tmp_path: Path) -> None:
    store = _store(tmp_path / "keys.db")
    subjects = [uuid.uuid4() for _ in range(3)]
    view = store.cached()
    view.ensure_subjects(subjects)
    queries: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *args: queries.append(args[2]))
    tokens = [view.encrypt(s, f"v{n}", context="c") for n, s in enumerate(subjects) for _ in range(5)]
    assert [view.decrypt(subjects[n // 5], t, context="c") for n, t in enumerate(tokens)] == [
        f"v{n // 5}" for n in range(15)
    ]
    assert queries == []
    # Another process erases a subject: the next request's view no longer decrypts it.
    other = Keystore(str(store.engine.url), secret_key=SECRET)
    other.destroy(subjects[0])
    other.dispose()
    with pytest.raises(KeyDestroyed):
        store.cached().decrypt(subjects[0], tokens[0], context="c")
    with pytest.raises(KeyDestroyed):
        store.decrypt(subjects[0], tokens[0], context="c")
    # Erasing through a view forgets its own cached key at once.
    view.destroy(subjects[1])
    with pytest.raises(KeyDestroyed):
        view.decrypt(subjects[1], tokens[5], context="c")
    assert not store.caching
    assert view.caching
    store.dispose()


def test_put_indexes_writes_every_entry_in_one_transaction_and_the_last_one_wins(tmp_path: Path) -> None:
    store = _store(tmp_path / "keys.db")
    alice, bob = uuid.uuid4(), uuid.uuid4()
    store.put_index(alice, kind="email", value="old@example.com")
    store.digest("email", "warm-up")  # the index key is read once, outside the counted transaction
    commits = _commits(store)
    store.put_indexes(
        [
            (alice, "email", "alice@example.com"),
            (alice, "email", "old@example.com"),
            (bob, "email", "old@example.com"),  # the address moved to bob
        ]
    )
    store.put_indexes([])
    assert len(commits) == 1
    assert store.lookup_index(kind="email", value="alice@example.com") == alice
    assert store.lookup_index(kind="email", value="old@example.com") == bob
    store.dispose()


def test_a_view_holds_new_keys_and_index_entries_for_one_transaction_at_the_commit(tmp_path: Path) -> None:
    store = _store(tmp_path / "keys.db")
    store.digest("email", "warm-up")
    main = sa.create_engine(f"sqlite:///{tmp_path / 'main.db'}")
    fresh = [uuid.uuid4() for _ in range(3)]
    commits = _commits(store)
    view = store.cached()
    with Session(main) as session, session.begin():
        view.new_subjects(fresh, before_commit_of=session)
        token = view.encrypt(fresh[0], "sealed", context="c")
        with session.begin_nested():
            pass  # a savepoint's release is not the commit
        view.put_indexes([(fresh[1], "email", "b@example.com")], before_commit_of=session)
        assert commits == []
        # Until then the rest of the process reads them as written.
        assert store.has_subject(fresh[2])
        assert store.lookup_index(kind="email", value="b@example.com") == fresh[1]
        assert store.decrypt(fresh[0], token, context="c") == "sealed"
    assert len(commits) == 1
    other = Keystore(str(store.engine.url), secret_key=SECRET)
    assert all(other.has_subject(s) for s in fresh)
    assert other.decrypt(fresh[0], token, context="c") == "sealed"
    assert other.lookup_index(kind="email", value="b@example.com") == fresh[1]
    other.dispose()
    store.dispose()


def test_held_writes_are_dropped_with_a_rollback_and_an_erasure(tmp_path: Path) -> None:
    store = _store(tmp_path / "keys.db")
    main = sa.create_engine(f"sqlite:///{tmp_path / 'main.db'}")
    rolled_back, erased, kept = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    view = store.cached()
    with Session(main) as session:
        session.begin()
        view.new_subjects([rolled_back], before_commit_of=session)
        view.put_indexes([(rolled_back, "email", "r@example.com")], before_commit_of=session)
        session.rollback()  # the request failed
    assert not store.has_subject(rolled_back)
    assert store.lookup_index(kind="email", value="r@example.com") is None
    with pytest.raises(KeyDestroyed):
        view.decrypt(rolled_back, b"\x01" + bytes(40), context="c")
    view = store.cached()
    with Session(main) as session, session.begin():
        view.new_subjects([erased, kept], before_commit_of=session)
        store.destroy(erased)  # erased while held: never written, whoever holds it
    assert not store.has_subject(erased)
    assert store.has_subject(kept)
    # Without a view there is nothing to hold: the keys are written at once.
    with Session(main) as session:
        plain = uuid.uuid4()
        store.new_subjects([plain], before_commit_of=session)
        assert Keystore(str(store.engine.url), secret_key=SECRET).has_subject(plain)
    store.dispose()


def test_held_writes_started_early_are_durable_before_the_main_commit(tmp_path: Path) -> None:
    store = _store(tmp_path / "keys.db")
    main = sa.create_engine(f"sqlite:///{tmp_path / 'main.db'}")
    early, late = uuid.uuid4(), uuid.uuid4()
    view = store.cached()
    with Session(main) as session, session.begin():
        view.new_subjects([early], before_commit_of=session)
        view.put_indexes([(early, "email", "e@example.com")], before_commit_of=session)
        view.write_held_soon()  # on a worker thread, while the request goes on
        view.write_held_soon()  # one at a time: a second call while it runs waits for the commit
        view.new_subjects([late], before_commit_of=session)  # held after it started
        token = view.encrypt(late, "sealed", context="c")
    other = Keystore(str(store.engine.url), secret_key=SECRET)
    assert other.has_subject(early)
    assert other.has_subject(late)
    assert other.lookup_index(kind="email", value="e@example.com") == early
    assert other.decrypt(late, token, context="c") == "sealed"
    other.dispose()
    store.dispose()


def test_keys_read_by_an_early_write_serve_the_request_without_a_transaction_of_their_own(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path / "keys.db")
    main = sa.create_engine(f"sqlite:///{tmp_path / 'main.db'}")
    known, erased, new = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    store.ensure_subjects([known, erased])
    expected = store.subject_ref(known)
    token = store.encrypt(erased, "sealed", context="c")
    store.digest("user_id", "u1")  # the index key, made on first use
    transactions: list[object] = []

    def begun(conn: object) -> None:
        transactions.append(conn)

    event.listen(store.engine, "begin", begun)
    try:
        view = store.cached()
        with Session(main) as session, session.begin():
            view.new_subjects([new], before_commit_of=session)
            view.write_held_soon(reading=[known, erased, new])  # the new key is held: not read
            assert view.subject_ref(known) == expected
            view.ensure_subjects([known, new])
            assert len(transactions) == 1  # the early write's, which read the key first
            assert view.destroy(erased)  # erased after the read: the key read is gone with it
            with pytest.raises(KeyDestroyed):
                view.decrypt(erased, token, context="c")
    finally:
        event.remove(store.engine, "begin", begun)
    assert store.has_subject(new)
    store.dispose()


def test_a_failed_early_write_fails_what_waits_for_its_read(tmp_path: Path) -> None:
    store = _store(tmp_path / "keys.db")
    main = sa.create_engine(f"sqlite:///{tmp_path / 'main.db'}")
    known = uuid.uuid4()
    store.ensure_subject(known)
    view = store.cached()
    with sa.create_engine(f"sqlite:///{tmp_path / 'keys.db'}").begin() as conn:
        conn.exec_driver_sql("DROP TABLE subject_keys")  # the keystore refuses the read
    with Session(main) as session:
        session.begin()
        view.write_held_soon(reading=[known])
        with pytest.raises(sa.exc.OperationalError):
            view.subject_ref(known)  # told, never left waiting
        session.rollback()
    store.dispose()


def test_a_failed_early_write_fails_the_commit_and_leaves_no_usable_key(tmp_path: Path) -> None:
    store = _store(tmp_path / "keys.db")
    main = sa.create_engine(f"sqlite:///{tmp_path / 'main.db'}")
    subject = uuid.uuid4()
    view = store.cached()
    with sa.create_engine(f"sqlite:///{tmp_path / 'keys.db'}").begin() as conn:
        conn.exec_driver_sql("DROP TABLE subject_keys")  # the keystore refuses the write
    with Session(main) as session:
        session.begin()
        view.new_subjects([subject], before_commit_of=session)
        view.write_held_soon()
        with pytest.raises(sa.exc.OperationalError):
            session.commit()
    store.create_schema()  # the keystore is back, without the key that was never written
    with pytest.raises(KeyDestroyed):
        view.decrypt(subject, b"\x01" + bytes(40), context="c")
    store.dispose()


def test_a_rollback_waits_for_an_early_write(tmp_path: Path) -> None:
    store = _store(tmp_path / "keys.db")
    main = sa.create_engine(f"sqlite:///{tmp_path / 'main.db'}")
    subject = uuid.uuid4()
    view = store.cached()
    with Session(main) as session:
        session.begin()
        view.new_subjects([subject], before_commit_of=session)
        view.write_held_soon()
        session.rollback()  # the request failed after the keystore write began
    # The rollback waited for the worker, so its write is finished: a key of no subject, sealing
    # nothing (no thread outlives the request that started it).
    other = Keystore(str(store.engine.url), secret_key=SECRET)
    assert other.has_subject(subject)
    other.dispose()
    store.dispose()


def test_the_chain_key_keeps_its_first_anchor_and_outlives_erasure_and_rotation(tmp_path: Path) -> None:
    store = _store(tmp_path / "keys.db")
    assert store.system.chain_key() is None
    made = store.system.create_chain_key(anchor_seq=7, anchor_hash="a" * 64)
    # Another process racing to make it gets the first one: the anchor never moves.
    assert store.system.create_chain_key(anchor_seq=9, anchor_hash="b" * 64) == made
    other = _store(tmp_path / "keys.db")
    assert other.system.chain_key() == made
    assert other.system.create_chain_key(anchor_seq=1, anchor_hash="c" * 64) == made
    other.dispose()
    subject = uuid.uuid4()
    store.ensure_subject(subject)
    assert store.destroy(subject)
    assert store.rotate("a-brand-new-secret-that-is-long-enough") == 1
    store.dispose()
    rotated = _store(tmp_path / "keys.db", "a-brand-new-secret-that-is-long-enough")
    assert rotated.system.chain_key() == made
    rotated.dispose()
    with pytest.raises(ConfigurationError):
        _store(tmp_path / "keys.db").system.chain_key()


def test_the_sealed_anchor_cannot_be_moved_without_the_kek(tmp_path: Path) -> None:
    store = _store(tmp_path / "keys.db")
    store.system.create_chain_key(anchor_seq=3, anchor_hash="d" * 64)
    with store.engine.begin() as conn:
        wrapped = conn.execute(
            sa.text("SELECT wrapped FROM system_keys WHERE name = 'audit-chain'")
        ).scalar_one()
        flipped = wrapped[:-1] + bytes([wrapped[-1] ^ 1])
        conn.execute(
            sa.text("UPDATE system_keys SET wrapped = :w WHERE name = 'audit-chain'"), {"w": flipped}
        )
    store.dispose()
    with pytest.raises(ConfigurationError, match="altered"):
        _store(tmp_path / "keys.db").system.chain_key()


def test_system_keys_seal_under_their_name_and_only_unprotected_ones_can_be_dropped(tmp_path: Path) -> None:
    store = _store(tmp_path / "keys.db")
    assert store.system.ensure("quarantine/2026-01-01")
    assert not store.system.ensure("quarantine/2026-01-01")
    token = store.system.encrypt("quarantine/2026-01-01", "kept for a while", context="c")
    newer = store.system.encrypt("quarantine/2026-03-01", "kept longer", context="c")
    assert b"kept" not in token
    assert store.system.decrypt("quarantine/2026-01-01", token, context="c") == "kept for a while"
    with pytest.raises(KeyDestroyed):
        store.system.decrypt("quarantine/2026-03-01", token, context="c")
    with pytest.raises(KeyDestroyed):
        store.system.decrypt("quarantine/2026-01-01", token, context="other")
    store.digest("user_id", "u1")  # makes the blind-index key
    store.system.create_chain_key(anchor_seq=0, anchor_hash="0" * 64)
    for protected in ("blind", "audit", "audit-chain"):
        with pytest.raises(ValueError, match="never dropped"):
            store.system.drop_before(protected, name_below="zzz")
    assert store.system.drop_before("quarantine/", name_below="2026-02-01") == 1
    other = _store(tmp_path / "keys.db")  # not from a cache: gone from the database
    with pytest.raises(KeyDestroyed):
        other.system.decrypt("quarantine/2026-01-01", token, context="c")
    assert other.system.decrypt("quarantine/2026-03-01", newer, context="c") == "kept longer"
    assert other.system.chain_key() is not None
    other.dispose()
    store.dispose()


def test_index_digests_lists_a_subjects_entries_only(tmp_path: Path) -> None:
    store = _store(tmp_path / "keys.db")
    alice, bob = uuid.uuid4(), uuid.uuid4()
    store.put_index(alice, kind="email", value="alice@example.com")
    store.put_index(bob, kind="email", value="bob@example.com")
    assert store.index_digests(alice) == {store.digest("email", "alice@example.com")}
    store.destroy(alice)
    assert store.index_digests(alice) == set()
    store.dispose()


def test_only_a_session_holding_keystore_writes_carries_its_hooks(tmp_path: Path) -> None:
    store = _store(tmp_path / "keys.db")
    main = sa.create_engine(f"sqlite:///{tmp_path / 'main.db'}")
    hook = commit.write_held_before_commit
    assert not event.contains(Session, "before_commit", hook)  # nothing on SQLAlchemy's class
    view = store.cached()
    with Session(main) as plain, Session(main) as holding, holding.begin():
        view.new_subjects([uuid.uuid4()], before_commit_of=holding)
        assert event.contains(holding, "before_commit", hook)
        assert not event.contains(plain, "before_commit", hook)
    store.dispose()
