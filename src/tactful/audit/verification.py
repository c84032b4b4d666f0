"""Verification of the audit log's chain: walk it in sequence order and name the first entry that
was edited, deleted or reordered, or a log that ends before a head recorded elsewhere (`--expect-head`)
or before the anchor of its keyed segment. How entries are hashed and appended is in `service.py`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.audit.models import AuditEntry
from tactful.audit.service import GENESIS, compute_hash, head
from tactful.crypto import ChainKey, Keystore
from tactful.errors import InvalidInput


class ChainProblem(StrEnum):
    EDITED = "edited"
    DELETED = "deleted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    """The log ends before an entry it must hold: the expected head, or the keyed segment's anchor."""


@dataclass(frozen=True)
class ChainReport:
    """The outcome of `verify`: sound up to `checked`, and the first broken link if any.
    `keyed_from` is the first sequence number of the keyed segment (None before the key exists)."""

    ok: bool
    checked: int
    head_seq: int | None
    head_hash: str | None
    first_bad_seq: int | None = None
    problem: ChainProblem | None = None
    detail: str = ""
    keyed_from: int | None = None


_ANCHOR = re.compile(r"^(0|[1-9][0-9]{0,18}):([0-9a-f]{64})$")


def parse_anchor(text: str) -> tuple[int, str]:
    """(sequence, hash) from `SEQ:HASH` as `Head.anchor` writes it, or InvalidInput."""
    match = _ANCHOR.match(text.strip().lower())
    if match is None:
        raise InvalidInput(
            "an audit head is written SEQ:HASH (a sequence number, a colon, 64 hex digits)",
            code="audit_invalid_head",
        )
    return int(match[1]), match[2]


# -- verify -------------------------------------------------------------------------------------


def verify(
    session: Session,
    *,
    keystore: Keystore,
    expect_head: tuple[int, str] | None = None,
    batch_size: int = 1000,
) -> ChainReport:
    """Walk the chain in sequence order; report the first entry that was edited, deleted or
    reordered, or a log that ends before `expect_head` (a head recorded elsewhere earlier) or
    before the anchor of its keyed segment."""
    chain = keystore.system.chain_key()
    walk = _walk(session, chain, expect_head, batch_size)
    current = head(session)
    head_seq, head_hash = (None, None) if current is None else current
    keyed_from = None if chain is None else chain.anchor_seq + 1
    if walk.broken is None:
        broken = _missing_tail(walk, chain, expect_head)
        if broken is None:
            return ChainReport(
                ok=True, checked=walk.checked, head_seq=head_seq, head_hash=head_hash, keyed_from=keyed_from
            )
    else:
        broken = walk.broken
    seq, problem, detail = broken
    if problem is None:
        predecessor = session.execute(select(AuditEntry.seq).where(AuditEntry.hash == detail)).scalar()
        if predecessor is not None:
            problem = ChainProblem.REORDERED
            detail = f"the entry follows entry {predecessor}, not entry {walk.last_seq}"
        else:
            problem = ChainProblem.DELETED
            detail = "the entry it follows is missing"
    return ChainReport(
        ok=False,
        checked=walk.checked,
        head_seq=head_seq,
        head_hash=head_hash,
        first_bad_seq=seq,
        problem=problem,
        detail=detail,
        keyed_from=keyed_from,
    )


_Broken = tuple[int, ChainProblem | None, str]


@dataclass(frozen=True)
class _Walk:
    checked: int
    last_seq: int
    broken: _Broken | None
    seen_hashes: Mapping[int, str]
    """The hashes of the entries at the sequence numbers verification must find (anchors)."""


def _walk(
    session: Session, chain: ChainKey | None, expect_head: tuple[int, str] | None, batch_size: int
) -> _Walk:
    columns = (
        AuditEntry.seq,
        AuditEntry.at,
        AuditEntry.actor,
        AuditEntry.action,
        AuditEntry.subject_ref,
        AuditEntry.details,
        AuditEntry.prev_hash,
        AuditEntry.hash,
    )
    watched = {seq for seq in (chain and chain.anchor_seq, expect_head and expect_head[0]) if seq}
    seen: dict[int, str] = {}
    # Plain rows rather than entities: the session's identity map may hold stale copies of entries
    # that were changed behind its back, and those are exactly what we look for.
    statement = select(*columns).order_by(AuditEntry.seq).execution_options(yield_per=batch_size)
    checked, prev_seq, prev_hash = 0, 0, GENESIS
    broken: _Broken | None = None
    result = session.execute(statement)
    try:
        for row in result:
            keyed = chain is not None and row.seq > chain.anchor_seq
            recomputed = compute_hash(
                at=row.at,
                actor=row.actor,
                action=row.action,
                subject_ref=row.subject_ref,
                details=row.details,
                prev_hash=row.prev_hash,
                key=chain.key if keyed and chain is not None else None,
            )
            if recomputed != row.hash:
                broken = (row.seq, ChainProblem.EDITED, "the entry no longer matches its hash")
                break
            if chain is not None and row.seq == chain.anchor_seq and row.hash != chain.anchor_hash:
                broken = (
                    row.seq,
                    ChainProblem.EDITED,
                    "the entry is not the one the keyed segment is anchored to",
                )
                break
            if row.prev_hash != prev_hash:
                broken = (row.seq, None, row.prev_hash)  # classified by `verify`, once the cursor is closed
                break
            if row.seq != prev_seq + 1:
                broken = (row.seq, ChainProblem.DELETED, f"the sequence jumps from {prev_seq} to {row.seq}")
                break
            if row.seq in watched:
                seen[row.seq] = row.hash
            checked, prev_seq, prev_hash = checked + 1, row.seq, row.hash
    finally:
        result.close()  # a server-side cursor on PostgreSQL: release it before the next query
    return _Walk(checked=checked, last_seq=prev_seq, broken=broken, seen_hashes=seen)


def _missing_tail(walk: _Walk, chain: ChainKey | None, expect_head: tuple[int, str] | None) -> _Broken | None:
    """What a sound chain lacks: the entries up to its keyed segment's anchor, or the expected head."""
    if chain is not None and walk.last_seq < chain.anchor_seq:
        return (
            walk.last_seq + 1,
            ChainProblem.TRUNCATED,
            f"the log ends at entry {walk.last_seq}, before entry {chain.anchor_seq}, its key's anchor",
        )
    if expect_head is None:
        return None
    seq, expected = expect_head
    if seq == 0:
        return (
            None
            if expected == GENESIS
            else (0, ChainProblem.EDITED, "an empty log's head is the genesis hash")
        )
    if walk.last_seq < seq:
        return (
            walk.last_seq + 1,
            ChainProblem.TRUNCATED,
            f"the log ends at entry {walk.last_seq}, before the expected head {seq}",
        )
    if walk.seen_hashes.get(seq) != expected:
        return (seq, ChainProblem.EDITED, f"entry {seq} is not the expected head")
    return None
