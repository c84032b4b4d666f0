"""The keyed chain: whoever can write the main database, but not read the keystore, cannot rewrite
the log so that it verifies; an old unkeyed log keeps verifying, and a cut tail is found against a
head recorded elsewhere."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.audit import verification as audit_verification
from tactful.audit.models import AuditEntry
from tactful.audit.service import GENESIS
from tactful.audit.verification import ChainProblem
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.errors import ConfigurationError, InvalidInput
from tests.audit.builders import at
from tests.backends import fresh_database, migrated_database

audit_table = AuditEntry.__table__
SECRET = "keyed-chain-test-secret-of-enough-length"


@dataclass(frozen=True)
class Fresh:
    db: Database
    keystore: Keystore
    keystore_url: str


@pytest.fixture
def fresh(backend: str, tmp_path: Path) -> Iterator[Fresh]:
    """An empty database and an empty keystore of their own: the chain key does not exist yet."""
    with (
        migrated_database(backend, tmp_path) as db,
        fresh_database(backend, tmp_path, migrated=False, name="keys") as url,
    ):
        keystore = Keystore(url, secret_key=SECRET)
        keystore.create_schema()
        try:
            yield Fresh(db, keystore, url)
        finally:
            keystore.dispose()


def _append(session: Session, keystore: Keystore, count: int, *, start: int = 0) -> list[AuditEntry]:
    return [
        audit_service.append(
            session,
            keystore=keystore,
            action="tests.appended",
            actor="system",
            at=at(start + i),
            details={"n": start + i},
        )
        for i in range(count)
    ]


def _rows(session: Session) -> list[Any]:
    return list(session.execute(select(audit_table).order_by(audit_table.c.seq)))


def _write_unkeyed(session: Session, count: int) -> list[str]:
    """Entries as a log written before the chain was keyed holds them: plain SHA-256."""
    hashes, prev = [], GENESIS
    for seq in range(1, count + 1):
        fields: dict[str, Any] = {
            "at": at(seq), "actor": "system", "action": "tests.legacy", "subject_ref": None,
            "details": {"n": seq}, "prev_hash": prev,
        }  # fmt: skip
        digest = audit_service.compute_hash(**fields)
        session.execute(insert(audit_table).values(seq=seq, hash=digest, **fields))
        hashes.append(digest)
        prev = digest
    return hashes


def _forge_from(session: Session, seq: int, **changes: Any) -> None:
    """Change entry `seq` and recompute the hashes of it and every entry after it, each linked to
    its new predecessor, as a forger without the key would: SHA-256 over exactly the document the
    entry's format hashes (keyed or not), since the format is no secret."""
    rows = _rows(session)
    prev = next((r.hash for r in rows if r.seq == seq - 1), GENESIS)
    for row in rows:
        if row.seq < seq:
            continue
        fields = {
            "at": row.at, "actor": row.actor, "action": row.action, "subject_ref": row.subject_ref,
            "details": row.details, "prev_hash": prev,
        }  # fmt: skip
        if row.seq == seq:
            fields.update(changes)
        plain = audit_service.compute_hash(**fields)
        keyed = audit_service.canonical_entry(**fields, keyed=True)
        # Whichever of the two the entry was hashed as (the forger can tell by trying on the original).
        original = audit_service.compute_hash(**{**_fields(row), "prev_hash": row.prev_hash})
        digest = plain if original == row.hash else hashlib.sha256(keyed).hexdigest()
        session.execute(update(audit_table).where(audit_table.c.seq == row.seq).values(hash=digest, **fields))
        prev = digest


def _fields(row: Any) -> dict[str, Any]:
    return {
        "at": row.at, "actor": row.actor, "action": row.action, "subject_ref": row.subject_ref,
        "details": row.details, "prev_hash": row.prev_hash,
    }  # fmt: skip


def _renumber_after(session: Session, seq: int) -> None:
    """Close the gap a deleted entry `seq` left: every later entry moves down by one."""
    for row in _rows(session):
        if row.seq > seq:
            session.execute(update(audit_table).where(audit_table.c.seq == row.seq).values(seq=row.seq - 1))


def test_entries_are_keyed_and_plain_sha256_does_not_reproduce_them(
    session: Session, keystore: Keystore
) -> None:
    [entry] = _append(session, keystore, 1)
    chain = keystore.system.chain_key()
    assert chain is not None
    fields = {
        "at": entry.at, "actor": entry.actor, "action": entry.action, "subject_ref": entry.subject_ref,
        "details": entry.details, "prev_hash": entry.prev_hash,
    }  # fmt: skip
    assert audit_service.compute_hash(**fields, key=chain.key) == entry.hash
    assert audit_service.compute_hash(**fields) != entry.hash
    assert audit_service.compute_hash(**fields, key=b"\x00" * 32) != entry.hash


@pytest.mark.parametrize("target", [1, 3, 5])
def test_an_edit_with_recomputed_sha256_hashes_is_found(
    session: Session, keystore: Keystore, target: int
) -> None:
    _append(session, keystore, 5)
    _forge_from(session, target, actor="someone-else")

    report = audit_verification.verify(session, keystore=keystore)
    assert not report.ok
    assert (report.first_bad_seq, report.problem, report.checked) == (target, ChainProblem.EDITED, target - 1)


@pytest.mark.parametrize("recompute", [False, True], ids=["hashes-kept", "hashes-recomputed"])
def test_a_deleted_entry_with_renumbering_is_found(
    session: Session, keystore: Keystore, recompute: bool
) -> None:
    _append(session, keystore, 6)
    session.execute(delete(audit_table).where(audit_table.c.seq == 3))
    _renumber_after(session, 3)
    if recompute:  # the successor relinked to the deleted entry's predecessor
        _forge_from(session, 3)
    assert [r.seq for r in _rows(session)] == [1, 2, 3, 4, 5]  # dense again: the sequence shows nothing

    report = audit_verification.verify(session, keystore=keystore)
    assert not report.ok
    assert report.first_bad_seq == 3
    assert report.problem == (ChainProblem.EDITED if recompute else ChainProblem.DELETED)


def test_a_truncated_tail_is_found_against_the_expected_head(session: Session, keystore: Keystore) -> None:
    entries = _append(session, keystore, 5)
    recorded = audit_service.head_entry(session)
    assert recorded is not None
    assert (recorded.seq, recorded.hash, recorded.at) == (5, entries[-1].hash, entries[-1].at)
    assert audit_verification.parse_anchor(recorded.anchor()) == (5, entries[-1].hash)
    assert audit_verification.verify(session, keystore=keystore, expect_head=(5, recorded.hash)).ok
    _append(session, keystore, 2, start=10)  # the log grew since: the recorded head still holds
    assert audit_verification.verify(session, keystore=keystore, expect_head=(5, recorded.hash)).ok

    session.execute(delete(audit_table).where(audit_table.c.seq >= 4))

    # Alone, the chain cannot see its own tail cut off; the head recorded elsewhere can.
    assert audit_verification.verify(session, keystore=keystore).ok
    report = audit_verification.verify(session, keystore=keystore, expect_head=(5, recorded.hash))
    assert not report.ok
    assert (report.problem, report.first_bad_seq, report.checked, report.head_seq) == (
        ChainProblem.TRUNCATED, 4, 3, 3,
    )  # fmt: skip


def test_an_expected_head_that_differs_is_reported(session: Session, keystore: Keystore) -> None:
    entries = _append(session, keystore, 3)
    report = audit_verification.verify(session, keystore=keystore, expect_head=(2, entries[0].hash))
    assert (report.ok, report.problem, report.first_bad_seq) == (False, ChainProblem.EDITED, 2)
    assert audit_verification.verify(session, keystore=keystore, expect_head=(2, entries[1].hash)).ok
    assert audit_verification.verify(session, keystore=keystore, expect_head=(0, GENESIS)).ok


@pytest.mark.parametrize("text", ["", "5", "5:abc", "-1:" + "0" * 64, "x:" + "0" * 64, "5:" + "g" * 64])
def test_malformed_heads_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        audit_verification.parse_anchor(text)
    assert refused.value.code == "audit_invalid_head"


def test_the_old_unkeyed_prefix_verifies_and_the_keyed_segment_starts_at_the_anchor(fresh: Fresh) -> None:
    with fresh.db.session() as session:
        legacy = _write_unkeyed(session, 3)
    with fresh.db.session() as session:
        report = audit_verification.verify(session, keystore=fresh.keystore)
        assert (report.ok, report.checked, report.keyed_from) == (True, 3, None)
        assert fresh.keystore.system.chain_key() is None  # verifying does not make the key

        keyed = _append(session, fresh.keystore, 2, start=10)
    chain = fresh.keystore.system.chain_key()
    assert chain is not None
    assert (chain.anchor_seq, chain.anchor_hash) == (3, legacy[-1])
    assert keyed[0].seq == 4
    assert keyed[0].prev_hash == legacy[-1]
    with fresh.db.session() as session:
        assert [r.hash for r in _rows(session)[:3]] == legacy  # no past entry rewritten
        report = audit_verification.verify(session, keystore=fresh.keystore)
    assert (report.ok, report.checked, report.keyed_from, report.head_seq) == (True, 5, 4, 5)


@pytest.mark.parametrize("target", [1, 3])
def test_a_forged_unkeyed_prefix_is_found_at_the_anchor(fresh: Fresh, target: int) -> None:
    with fresh.db.session() as session:
        _write_unkeyed(session, 3)
        _append(session, fresh.keystore, 2, start=10)
    with fresh.db.session() as session:
        # The prefix is plain SHA-256, so a forger can recompute it; the anchor sealed with the key
        # still names the old hash of entry 3. Keyed entries after it are forged in plain too.
        _forge_from(session, target, details={"n": 99})
        report = audit_verification.verify(session, keystore=fresh.keystore)
        session.rollback()
    assert not report.ok
    assert (report.first_bad_seq, report.problem) == (3, ChainProblem.EDITED)


def test_a_log_cut_below_its_anchor_is_found_without_an_expected_head(fresh: Fresh) -> None:
    with fresh.db.session() as session:
        _write_unkeyed(session, 3)
        _append(session, fresh.keystore, 2, start=10)
    with fresh.db.session() as session:
        session.execute(delete(audit_table).where(audit_table.c.seq >= 3))
        report = audit_verification.verify(session, keystore=fresh.keystore)
        session.rollback()
    assert (report.ok, report.problem, report.first_bad_seq, report.checked) == (
        False, ChainProblem.TRUNCATED, 3, 2,
    )  # fmt: skip


def test_the_key_survives_erasure_and_secret_rotation(fresh: Fresh) -> None:
    subject = uuid.uuid4()
    with fresh.db.session() as session:
        audit_service.append(
            session,
            keystore=fresh.keystore,
            action="tests.subject",
            actor="system",
            at=at(0),
            subject_id=subject,
        )
        _append(session, fresh.keystore, 2, start=1)
    assert fresh.keystore.destroy(subject)  # the subject's salt goes; the chain's key stays
    with fresh.db.session() as session:
        assert audit_verification.verify(session, keystore=fresh.keystore).ok

    rotated_secret = "keyed-chain-rotated-secret-of-enough-length"
    assert fresh.keystore.rotate(rotated_secret) == 1  # the chain's key (the subject's is gone)
    rotated = Keystore(fresh.keystore_url, secret_key=rotated_secret)
    stale = Keystore(fresh.keystore_url, secret_key=SECRET)
    try:
        with fresh.db.session() as session:
            _append(session, rotated, 1, start=5)  # the same key, re-wrapped: the chain goes on
            report = audit_verification.verify(session, keystore=rotated)
            assert (report.ok, report.checked, report.keyed_from) == (True, 4, 1)
            with pytest.raises(ConfigurationError):
                audit_verification.verify(session, keystore=stale)
    finally:
        rotated.dispose()
        stale.dispose()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=25)
@given(data=st.data(), length=st.integers(min_value=1, max_value=7))
def test_any_forgery_with_recomputed_sha256_hashes_is_found_where_it_starts(
    session: Session, keystore: Keystore, data: st.DataObject, length: int
) -> None:
    nested = session.begin_nested()
    try:
        _append(session, keystore, length)
        target = data.draw(st.integers(1, length))
        change = data.draw(
            st.sampled_from(
                [
                    {"action": "tests.forged"},
                    {"details": {"n": -1}},
                    {"at": datetime.fromisoformat("2030-01-01T00:00:00+00:00")},
                ]
            )
        )
        _forge_from(session, target, **change)
        report = audit_verification.verify(session, keystore=keystore)
        assert (report.ok, report.first_bad_seq, report.problem) == (False, target, ChainProblem.EDITED)
    finally:
        nested.rollback()
