"""The chain links entries, and verification names the first edited, deleted or reordered one."""

from __future__ import annotations

import itertools
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.audit import verification as audit_verification
from tactful.audit.models import AuditEntry
from tactful.audit.service import GENESIS
from tactful.audit.verification import ChainProblem
from tactful.crypto import Keystore
from tests.audit.builders import at

audit_table = AuditEntry.__table__


def _append_many(session: Session, keystore: Keystore, count: int) -> list[AuditEntry]:
    return [
        audit_service.append(
            session,
            keystore=keystore,
            action="tests.appended",
            actor="system",
            at=at(i),
            details={"n": i, "label": f"entry {i}"},
        )
        for i in range(count)
    ]


def _chain_key(keystore: Keystore) -> bytes:
    chain = keystore.system.chain_key()
    assert chain is not None
    return chain.key


def _swap(session: Session, first: int, second: int) -> None:
    # Through a free sequence number, as the primary key forbids a direct swap.
    parking = -1_000_000
    session.execute(update(audit_table).where(audit_table.c.seq == first).values(seq=parking))
    session.execute(update(audit_table).where(audit_table.c.seq == second).values(seq=first))
    session.execute(update(audit_table).where(audit_table.c.seq == parking).values(seq=second))


def test_entries_link_to_their_predecessor(session: Session, keystore: Keystore) -> None:
    entries = _append_many(session, keystore, 4)

    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev_hash == GENESIS
    for previous, entry in itertools.pairwise(entries):
        assert entry.prev_hash == previous.hash
    assert len({e.hash for e in entries}) == 4
    report = audit_verification.verify(session, keystore=keystore)
    assert report.ok
    assert report.checked == 4
    assert (report.head_seq, report.head_hash) == (4, entries[-1].hash)
    assert audit_service.head(session) == (4, entries[-1].hash)


def test_an_empty_log_verifies(session: Session, keystore: Keystore) -> None:
    report = audit_verification.verify(session, keystore=keystore)
    assert report.ok
    assert (report.checked, report.head_seq, report.head_hash) == (0, None, None)


def test_the_hash_covers_every_field(session: Session, keystore: Keystore) -> None:
    entry = _append_many(session, keystore, 1)[0]
    fields = {
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "subject_ref": entry.subject_ref,
        "details": entry.details,
        "prev_hash": entry.prev_hash,
        "key": _chain_key(keystore),
    }
    assert audit_service.compute_hash(**fields) == entry.hash  # type: ignore[arg-type]
    changes = {
        "at": at(9999),
        "actor": "cli",
        "action": "tests.other",
        "subject_ref": "f" * 64,
        "details": {**entry.details, "n": 1},
        "prev_hash": "1" * 64,
    }
    for name, value in changes.items():
        assert audit_service.compute_hash(**{**fields, name: value}) != entry.hash, name  # type: ignore[arg-type]


def test_verify_finds_an_edited_actor(session: Session, keystore: Keystore) -> None:
    _append_many(session, keystore, 5)
    session.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3"))

    report = audit_verification.verify(session, keystore=keystore)
    assert not report.ok
    assert (report.first_bad_seq, report.problem, report.checked) == (3, ChainProblem.EDITED, 2)


def test_verify_finds_edited_details(session: Session, keystore: Keystore) -> None:
    _append_many(session, keystore, 5)
    session.execute(update(audit_table).where(audit_table.c.seq == 2).values(details={"n": 1, "label": "x"}))

    report = audit_verification.verify(session, keystore=keystore)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 2, ChainProblem.EDITED)


def test_verify_finds_a_deleted_entry(session: Session, keystore: Keystore) -> None:
    _append_many(session, keystore, 5)
    session.execute(text("DELETE FROM audit_log WHERE seq = 3"))

    report = audit_verification.verify(session, keystore=keystore)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 4, ChainProblem.DELETED)


def test_verify_finds_a_deleted_first_entry(session: Session, keystore: Keystore) -> None:
    _append_many(session, keystore, 3)
    session.execute(delete(audit_table).where(audit_table.c.seq == 1))

    report = audit_verification.verify(session, keystore=keystore)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 2, ChainProblem.DELETED)


def test_verify_finds_a_deletion_whose_successor_was_relinked(session: Session, keystore: Keystore) -> None:
    entries = _append_many(session, keystore, 4)
    session.execute(delete(audit_table).where(audit_table.c.seq == 2))
    third = entries[2]
    relinked = audit_service.compute_hash(
        at=third.at,
        actor=third.actor,
        action=third.action,
        subject_ref=third.subject_ref,
        details=third.details,
        prev_hash=entries[0].hash,
        key=_chain_key(keystore),  # even with the key, the hole in the sequence shows
    )
    session.execute(
        update(audit_table).where(audit_table.c.seq == 3).values(prev_hash=entries[0].hash, hash=relinked)
    )

    report = audit_verification.verify(session, keystore=keystore)
    # Entry 3 now links to entry 1 and hashes correctly, but the sequence shows the hole.
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 3, ChainProblem.DELETED)


def test_verify_finds_reordered_entries(session: Session, keystore: Keystore) -> None:
    _append_many(session, keystore, 5)
    _swap(session, 2, 4)

    report = audit_verification.verify(session, keystore=keystore)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 2, ChainProblem.REORDERED)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=25)
@given(data=st.data(), length=st.integers(min_value=2, max_value=7))
def test_any_single_tampering_is_found_where_it_happened(
    session: Session, keystore: Keystore, data: st.DataObject, length: int
) -> None:
    kind = data.draw(st.sampled_from(["edit", "delete", "swap"]))
    nested = session.begin_nested()
    try:
        _append_many(session, keystore, length)
        if kind == "edit":
            target = data.draw(st.integers(1, length))
            session.execute(
                update(audit_table).where(audit_table.c.seq == target).values(action="tests.forged")
            )
            expected = (target, ChainProblem.EDITED)
        elif kind == "delete":
            # The newest entry is left alone: no chain can notice its own tail being cut off
            # (that is what anchoring `head_hash` elsewhere is for).
            target = data.draw(st.integers(1, length - 1))
            session.execute(delete(audit_table).where(audit_table.c.seq == target))
            expected = (target + 1, ChainProblem.DELETED)
        else:
            first = data.draw(st.integers(1, length - 1))
            second = data.draw(st.integers(first + 1, length))
            _swap(session, first, second)
            expected = (first, ChainProblem.REORDERED)
        report = audit_verification.verify(session, keystore=keystore)
        assert not report.ok
        assert (report.first_bad_seq, report.problem) == expected
        assert report.checked == expected[0] - 1 - (1 if kind == "delete" else 0)
    finally:
        nested.rollback()


# Storable text: PostgreSQL refuses NUL, and lone surrogates are not Unicode text.
storable = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=storable, max_size=40),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(details=st.dictionaries(st.text(alphabet=storable, min_size=1, max_size=20), scalars, max_size=12))
def test_any_scalar_details_survive_the_round_trip(
    session: Session, keystore: Keystore, details: dict[str, audit_service.Scalar]
) -> None:
    nested = session.begin_nested()
    try:
        audit_service.append(
            session, keystore=keystore, action="tests.details", actor="system", at=at(0), details=details
        )
        session.expire_all()
        report = audit_verification.verify(session, keystore=keystore)
        assert report.ok, report
        stored = session.execute(select(audit_table.c.details)).scalar_one()
        assert stored.keys() == details.keys()
        for key, value in details.items():
            assert stored[key] == value
    finally:
        nested.rollback()


def test_sequence_numbers_stay_dense(session: Session, keystore: Keystore) -> None:
    _append_many(session, keystore, 6)
    count, low, high = session.execute(
        select(func.count(), func.min(audit_table.c.seq), func.max(audit_table.c.seq))
    ).one()
    assert (count, low, high) == (6, 1, 6)


def test_the_table_holds_no_subject_id() -> None:
    assert "subject_id" not in audit_table.c


@pytest.mark.parametrize("subject_count", [2, 5])
def test_subject_refs_differ_per_subject_and_repeat_for_one(
    session: Session, keystore: Keystore, subject_count: int
) -> None:
    subjects = [uuid.uuid4() for _ in range(subject_count)]
    refs = []
    for i, subject in enumerate(subjects):
        first = audit_service.append(
            session, keystore=keystore, action="tests.subject", actor="system", at=at(i), subject_id=subject
        )
        again = audit_service.append(
            session, keystore=keystore, action="tests.subject", actor="system", at=at(i), subject_id=subject
        )
        assert first.subject_ref == again.subject_ref
        assert first.subject_ref is not None
        assert str(subject) not in first.subject_ref
        assert subject.hex not in first.subject_ref
        refs.append(first.subject_ref)
    assert len(set(refs)) == subject_count


def test_erasing_the_salt_unlinks_the_entries(session: Session, keystore: Keystore) -> None:
    subject = uuid.uuid4()
    entry = audit_service.append(
        session, keystore=keystore, action="profiles.merged", actor="collect", at=at(0), subject_id=subject
    )
    assert keystore.subject_ref(subject) == entry.subject_ref

    keystore.destroy(subject)

    # The subject's salt is gone: any new reference is made under a fresh salt and matches nothing.
    assert keystore.subject_ref(subject) != entry.subject_ref
    matching = session.scalars(
        select(AuditEntry.seq).where(AuditEntry.subject_ref == keystore.subject_ref(subject))
    ).all()
    assert matching == []
    assert audit_verification.verify(session, keystore=keystore).ok


@pytest.mark.parametrize("batch_size", [1, 3, 7])
def test_verification_reads_across_batches(session: Session, keystore: Keystore, batch_size: int) -> None:
    _append_many(session, keystore, 10)
    assert audit_verification.verify(session, keystore=keystore, batch_size=batch_size).checked == 10

    _swap(session, 6, 8)
    report = audit_verification.verify(session, keystore=keystore, batch_size=batch_size)
    assert (report.checked, report.first_bad_seq, report.problem) == (5, 6, ChainProblem.REORDERED)


def test_a_batch_append_continues_the_chain_like_single_appends(session: Session, keystore: Keystore) -> None:
    before = _append_many(session, keystore, 2)
    subject = uuid.uuid4()
    records = [
        audit_service.AuditRecord(
            action="tests.batched", actor="system", at=at(10 + i), subject_id=subject, details={"n": i}
        )
        for i in range(3)
    ]
    batch = audit_service.append_many(session, keystore=keystore, records=records)
    assert [e.seq for e in batch] == [before[-1].seq + 1, before[-1].seq + 2, before[-1].seq + 3]
    assert batch[0].prev_hash == before[-1].hash
    assert [e.prev_hash for e in batch[1:]] == [e.hash for e in batch[:-1]]
    assert {e.subject_ref for e in batch} == {keystore.subject_ref(subject)}
    assert audit_service.append_many(session, keystore=keystore, records=[]) == []
    assert audit_verification.verify(session, keystore=keystore).ok
