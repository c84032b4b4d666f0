"""Held appends: a request that audits in several steps appends once, in the order of its calls."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.audit import verification as audit_verification
from tactful.audit.models import AuditEntry
from tactful.crypto import Keystore
from tests.audit.builders import at


def _record(n: int) -> audit_service.AuditRecord:
    return audit_service.AuditRecord(action="tests.held", actor="system", at=at(n), details={"n": n})


def _numbers(session: Session) -> list[object]:
    rows = session.execute(select(AuditEntry.details).order_by(AuditEntry.seq)).scalars()
    return [details.get("n") for details in rows]


def test_held_records_wait_and_keep_the_order_of_the_calls(session: Session, keystore: Keystore) -> None:
    before = _numbers(session)
    with audit_service.held(session) as waiting:
        audit_service.append_records(session, keystore=keystore, records=[_record(1), _record(2)])
        assert _numbers(session) == before  # nothing written yet
        assert [r.details for r in waiting] == [{"n": 1}, {"n": 2}]
        # A caller that wants its entry now: what waits goes first.
        entry = audit_service.append(
            session, keystore=keystore, action="tests.held", actor="system", at=at(3), details={"n": 3}
        )
        assert entry.details == {"n": 3}
        assert waiting == []
        audit_service.append_records(session, keystore=keystore, records=[_record(4)])
    assert [r.details for r in waiting] == [{"n": 4}]
    # Outside the block appends are written at once again.
    audit_service.append_records(session, keystore=keystore, records=[*waiting, _record(5)])
    assert _numbers(session) == [*before, 1, 2, 3, 4, 5]
    assert audit_verification.verify(session, keystore=keystore).ok


def test_a_failed_block_leaves_no_hold_behind(session: Session, keystore: Keystore) -> None:
    before = _numbers(session)
    with pytest.raises(RuntimeError), audit_service.held(session):
        raise RuntimeError("the request failed")
    audit_service.append_records(session, keystore=keystore, records=[_record(6)])
    assert _numbers(session) == [*before, 6]
