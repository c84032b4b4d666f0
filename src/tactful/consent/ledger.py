"""Reading the consent ledger back: rows as entries, the fold into policy's consent state, and the
flags (objection, restriction, the limit on sensitive data). Apart from `service` so that the
gatekeeper, which the service calls after a refusal, reads the ledger without importing the service."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from tactful.bulk import one_of
from tactful.consent.fold import ConsentAction, ConsentEvent, fold
from tactful.consent.models import ConsentEventRow
from tactful.consent.schemas import LedgerEntry, SubjectFlags, TargetKind
from tactful.policy.state import ConsentRecord, ConsentSource, ConsentState, ConsentStatus
from tactful.types import Purpose

_KINDS = {kind.value: kind for kind in TargetKind}
_ACTIONS = {action.value: action for action in ConsentAction}
_SOURCES = {source.value: source for source in ConsentSource}
"""Members by stored value: a dictionary lookup, where calling the enum costs a Python call per
value of every row read."""


def entry_of(row: ConsentEventRow | Row[Any]) -> LedgerEntry:
    kind, action, source = row.target_kind, row.action, row.source
    return LedgerEntry(
        id=row.id,
        sequence=row.sequence,
        at=row.at,
        # An unknown value still fails as the enum fails: the lookups fall back to calling it.
        kind=_KINDS.get(kind) or TargetKind(kind),
        target=row.target,
        action=_ACTIONS.get(action) or ConsentAction(action),
        source=_SOURCES.get(source) or ConsentSource(source),
        notice_version=row.notice_version,
        method=row.method,
        proof={str(k): str(v) for k, v in (row.proof or {}).items()},
    )


_STATUS = {action: ConsentStatus(action.value) for action in ConsentAction}


def refusals_version(entries: Sequence[LedgerEntry]) -> str:
    """The version of a subject's refusals: it changes with every refusal, withdrawal, objection,
    restriction or GPC signal recorded (each is a `denied` or `withdrawn` entry), when a merge brings
    another ledger's, and when erasure takes the ledger away; a grant leaves it as it was. What was
    counted under one version (the session counters) is stale under any other."""
    refusals = [e for e in entries if e.action is not ConsentAction.GRANTED]
    if not refusals:
        return "0"
    return f"{len(refusals)}.{max(refusals, key=lambda e: (e.at, e.sequence)).id.hex[:12]}"


_OUTSIDE_FOLD = frozenset({TargetKind.RESTRICTION, TargetKind.LIMIT_SENSITIVE})
"""Flags the fold does not carry: the gate reads them as subject facts (`flags_at`)."""


def _event(entry: LedgerEntry) -> ConsentEvent | None:
    """The fold's view of an entry; None for the flags outside it."""
    kind = entry.kind
    if kind in _OUTSIDE_FOLD:
        return None
    return ConsentEvent(
        action=entry.action,
        at=entry.at,
        source=entry.source,
        purpose=Purpose(str(entry.target)) if kind is TargetKind.PURPOSE else None,
        explicit=entry.target if kind is TargetKind.EXPLICIT else None,
        parental=kind is TargetKind.PARENTAL,
        legitimate_interest=kind is TargetKind.LEGITIMATE_INTEREST,
        notice_version=entry.notice_version,
        proof=entry.proof,
        method=entry.method,
        sequence=entry.sequence,
    )


def history(session: Session, *, subject_id: uuid.UUID, until: datetime | None = None) -> list[LedgerEntry]:
    """The subject's ledger in order of receipt (up to `until` when given)."""
    query = select(ConsentEventRow).where(ConsentEventRow.subject_id == subject_id)
    if until is not None:
        query = query.where(ConsentEventRow.at <= until)
    rows = session.scalars(query.order_by(ConsentEventRow.at, ConsentEventRow.sequence))
    return [entry_of(row) for row in rows]


def fold_entries(entries: Iterable[LedgerEntry]) -> ConsentState:
    return fold(e for e in (_event(entry) for entry in entries) if e is not None)


def state(session: Session, *, subject_id: uuid.UUID) -> ConsentState:
    """The folded ledger of the subject: its consent at any moment."""
    return fold_entries(history(session, subject_id=subject_id))


_LEDGERS = select(
    *(c for c in ConsentEventRow.__table__.columns if c.name not in ("subject_ref", "erased_at"))
).where(one_of(ConsentEventRow.__table__.c.subject_id, "subjects"))
"""Plain rows of many subjects' ledgers, built once (entities would add nothing but time), without
the erasure columns, which entries do not carry."""


def histories(session: Session, *, subject_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[LedgerEntry]]:
    """The ledgers of many subjects, each in order of receipt, in one query per 500 subjects."""
    wanted = list(dict.fromkeys(subject_ids))
    grouped: dict[uuid.UUID, list[LedgerEntry]] = {s: [] for s in wanted}
    # Rows of this transaction's own ORM writes must be in the database before the read.
    session.flush()
    for start in range(0, len(wanted), 500):
        for row in session.connection().execute(_LEDGERS, {"subjects": wanted[start : start + 500]}):
            grouped[row.subject_id].append(entry_of(row))
    for entries in grouped.values():
        entries.sort(key=lambda e: (e.at, e.sequence))
    return grouped


def states(session: Session, *, subject_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ConsentState]:
    """The folded ledgers of many subjects in one query (subjects without a ledger get an empty state)."""
    grouped = histories(session, subject_ids=subject_ids)
    return {s: fold_entries(entries) for s, entries in grouped.items()}


def latest(entries: Iterable[LedgerEntry], kind: TargetKind, at: datetime) -> LedgerEntry | None:
    found = [e for e in entries if e.kind is kind and e.at <= at]
    # A refusal received at the same moment decides, as in the fold.
    return max(found, key=lambda e: (e.at, e.sequence, e.action is not ConsentAction.GRANTED), default=None)


def _deciding_key(entry: LedgerEntry) -> tuple[object, ...]:
    # The fold's full order of two records of one target (`fold._order`), for the rare exact tie.
    record = ConsentRecord(
        _STATUS[entry.action], entry.at, entry.source, entry.notice_version, entry.proof, entry.method,
        entry.sequence,
    )  # fmt: skip
    key = record.order_key()
    return (key[0], key[1], record.status is not ConsentStatus.GRANTED, *key[2:])


def statuses_at(entries: Iterable[LedgerEntry], at: datetime) -> dict[Purpose, ConsentStatus]:
    """Each purpose's status at `at`, as `fold_entries(entries).state(p, at=at).status` answers it:
    the deciding entry is the last in the fold's order among those received by `at`. One pass
    without building the state, for callers that read nothing else of it."""
    deciding: dict[str, LedgerEntry] = {}
    for entry in entries:
        if entry.kind is not TargetKind.PURPOSE or entry.at > at:
            continue
        target = str(entry.target)
        current = deciding.get(target)
        if current is not None:
            mine = (entry.at, entry.sequence, entry.action is not ConsentAction.GRANTED)
            theirs = (current.at, current.sequence, current.action is not ConsentAction.GRANTED)
            # Equal keys fall to the full order; equal there too, the later entry wins (a stable sort).
            if mine < theirs or (mine == theirs and _deciding_key(entry) < _deciding_key(current)):
                continue
        deciding[target] = entry
    found = dict.fromkeys(Purpose, ConsentStatus.NOT_SET)
    for target, entry in deciding.items():
        found[Purpose(target)] = _STATUS[entry.action]
    return found


def _refused(entries: Sequence[LedgerEntry], kind: TargetKind, at: datetime) -> bool:
    # Each flag is set by refusing (denied or withdrawn) and lifted by granting; never set: off.
    found = latest(entries, kind, at)
    return found is not None and found.action is not ConsentAction.GRANTED


def flags_at(entries: Sequence[LedgerEntry], at: datetime) -> SubjectFlags:
    return SubjectFlags(
        objection=_refused(entries, TargetKind.LEGITIMATE_INTEREST, at),
        restriction=_refused(entries, TargetKind.RESTRICTION, at),
        limit_sensitive=_refused(entries, TargetKind.LIMIT_SENSITIVE, at),
    )


def flags(session: Session, *, subject_id: uuid.UUID, at: datetime) -> SubjectFlags:
    """The flags in force at `at` (gate inputs: `SubjectFacts`)."""
    return flags_at(history(session, subject_id=subject_id, until=at), at)
