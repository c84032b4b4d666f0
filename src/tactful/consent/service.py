"""The consent ledger store: append, read back, fold, merge, export and pseudonymise.

record(changes) ──▶ consent_events (append-only) + one `consent.changed` audit entry
                    └─ a refusal ──▶ withdrawal.purge_unsupported (same transaction)
record_gpc()    ──▶ an opt-out of `sale_or_share`, source `gpc`, once until explicitly lifted
state()         ◀── fold(rows) → policy's ConsentState (answers "was P granted at T?")
flags()         ◀── objection and restriction in force at T (gate facts)
merge_ledgers() ──▶ rows move to the survivor; explicit events where the fold would be laxer
                    than `merge_states` says
erase_ledger()  ──▶ rows kept as proof, pseudonymised (never deleted)
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, func, select, update
from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.bulk import insert_rows
from tactful.consent import gpc, withdrawal
from tactful.consent.fold import ConsentAction, merge_states
from tactful.consent.gatekeeper import PolicyContext
from tactful.consent.ledger import flags, flags_at, fold_entries, history, state, states
from tactful.consent.models import ConsentEventRow
from tactful.consent.schemas import ConsentChange, LedgerEntry, TargetKind
from tactful.crypto import Keystore
from tactful.policy.state import ConsentSource, ConsentState, ConsentStatus, PurposeState
from tactful.types import Purpose, new_id, new_row_id

__all__ = [
    "PolicyContext",
    "changes_from_categories",
    "erase_ledger",
    "export_ledger",
    "flags",
    "fold_entries",
    "gpc_due",
    "history",
    "merge_ledgers",
    "purposes_from_categories",
    "record",
    "record_gpc",
    "state",
    "states",
]

AUDIT_ACTION = "consent.changed"
_LEDGER = cast(Table, ConsentEventRow.__table__)
_CARRIED_FLAGS = (TargetKind.RESTRICTION, TargetKind.LIMIT_SENSITIVE)
_AUDIT_CHUNK = 30  # the audit log takes at most 32 detail keys; two are `source` and `count`


# -- appending -------------------------------------------------------------------------------------


def _next_sequence(session: Session, subject_id: uuid.UUID) -> int:
    current = session.scalar(
        select(func.max(ConsentEventRow.sequence)).where(ConsentEventRow.subject_id == subject_id)
    )
    return (current or 0) + 1


def _audit_records(
    *, subject_id: uuid.UUID, changes: Sequence[ConsentChange], at: datetime, actor: str
) -> list[audit_service.AuditRecord]:
    # Purposes and actions only: never proof, identifiers or notice texts.
    records = []
    for start in range(0, len(changes), _AUDIT_CHUNK):
        chunk = changes[start : start + _AUDIT_CHUNK]
        details: dict[str, audit_service.Scalar] = {c.label: c.action.value for c in chunk}
        details["source"] = ",".join(sorted({c.source.value for c in chunk}))
        details["count"] = len(chunk)
        records.append(
            audit_service.AuditRecord(
                action=AUDIT_ACTION, actor=actor, at=at, subject_id=subject_id, details=details
            )
        )
    return records


def record(
    session: Session,
    *,
    keystore: Keystore,
    subject_id: uuid.UUID,
    changes: Sequence[ConsentChange],
    at: datetime,
    actor: str,
    policy: PolicyContext | None = None,
) -> list[LedgerEntry]:
    """Append `changes` to the subject's ledger at server time `at`, in the order given, and audit
    them. Every receipt is kept, repeated choices included: each one is proof of what was received.

    With `policy` (every request path passes it), a refusal also purges, in the same transaction,
    the stored atoms that no purpose still allowed keeps (`withdrawal`). Without it nothing is
    purged: only for callers that hold no catalog, such as tests of the ledger alone."""
    recorded = record_many(
        session, keystore=keystore, changes={subject_id: changes}, at=at, actor=actor, policy=policy
    )
    return recorded.get(subject_id, [])


def _next_sequences(session: Session, subject_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    found: dict[uuid.UUID, int] = {}
    for start in range(0, len(subject_ids), 500):
        chunk = subject_ids[start : start + 500]
        rows = session.execute(
            select(ConsentEventRow.subject_id, func.max(ConsentEventRow.sequence))
            .where(ConsentEventRow.subject_id.in_(chunk))
            .group_by(ConsentEventRow.subject_id)
        )
        found.update((subject, int(top or 0)) for subject, top in rows)
    return {s: found.get(s, 0) + 1 for s in subject_ids}


def record_many(
    session: Session,
    *,
    keystore: Keystore,
    changes: Mapping[uuid.UUID, Sequence[ConsentChange]],
    at: datetime,
    actor: str,
    policy: PolicyContext | None = None,
    histories: Mapping[uuid.UUID, Sequence[LedgerEntry]] | None = None,
    nothing_stored: frozenset[uuid.UUID] = frozenset(),
) -> dict[uuid.UUID, list[LedgerEntry]]:
    """`record` for many subjects at once (collection's batches): one sequence query and one insert
    for all of them, then each subject's audit entry and, after a refusal, its purge.

    `histories`, when the caller read every subject's whole ledger in this transaction, saves the
    sequence query: the next sequence follows the last entry read. `nothing_stored` names subjects
    the caller knows hold nothing yet (created in this transaction): a refusal has nothing to purge."""
    if at.tzinfo is None:
        raise ValueError("consent is recorded at timezone-aware server times")
    wanted = {subject: list(given) for subject, given in changes.items() if given}
    if not wanted:
        return {}
    if histories is not None and all(s in histories for s in wanted):
        sequences = {s: max((e.sequence for e in histories[s]), default=0) + 1 for s in wanted}
    else:
        sequences = _next_sequences(session, list(wanted))
    entries: dict[uuid.UUID, list[LedgerEntry]] = {}
    rows: list[dict[str, Any]] = []
    for subject, given in wanted.items():
        made = entries[subject] = []
        for offset, change in enumerate(given):
            proof = {str(k): str(v) for k, v in change.proof.items()}
            entry = LedgerEntry(
                id=new_row_id(), sequence=sequences[subject] + offset, at=at, kind=change.kind,
                target=change.target, action=change.action, source=change.source,
                notice_version=change.notice_version, method=change.method, proof=proof,
            )  # fmt: skip
            made.append(entry)
            rows.append(
                {
                    "id": entry.id, "subject_id": subject, "sequence": entry.sequence, "at": at,
                    "target_kind": change.kind.value, "target": change.target, "action": change.action.value,
                    "source": change.source.value, "notice_version": change.notice_version,
                    "method": change.method, "proof": proof, "subject_ref": None, "erased_at": None,
                }
            )  # fmt: skip
    insert_rows(session, _LEDGER, rows)
    # A first visit's "no" finds nothing stored: only the others have atoms or events to purge.
    refusing = {
        s
        for s, given in wanted.items()
        if policy is not None and s not in nothing_stored and withdrawal.narrows(given)
    }
    # One append for the whole request: the chain's head is read and locked once.
    audit_service.append_records(
        session,
        keystore=keystore,
        records=[
            record
            for subject, given in wanted.items()
            for record in _audit_records(subject_id=subject, changes=given, at=at, actor=actor)
        ],
    )
    for subject in wanted:
        if policy is not None and subject in refusing:
            withdrawal.purge_unsupported(
                session, keystore=keystore, context=policy, subject_id=subject, at=at, actor=actor
            )
    return entries


def record_gpc(
    session: Session,
    *,
    keystore: Keystore,
    subject_id: uuid.UUID,
    at: datetime,
    proof: Mapping[str, str],
    actor: str = "gpc",
    policy: PolicyContext | None = None,
) -> LedgerEntry | None:
    """Record a Global Privacy Control signal as an opt-out of `sale_or_share` (source `gpc`).

    Idempotent: nothing is appended while an earlier signal's opt-out stands. Returns the new entry,
    or None when the opt-out was already in force. The absence of the signal is never an opt-in:
    there is no function to call for it.
    """
    if not gpc_due(session, subject_id=subject_id):
        return None
    change = ConsentChange.for_purpose(
        Purpose.SALE_OR_SHARE,
        ConsentAction.DENIED,
        ConsentSource.GPC,
        proof={**proof, gpc.GPC_PROOF_KEY: "1"},
    )
    recorded = record(
        session, keystore=keystore, subject_id=subject_id, changes=[change], at=at, actor=actor, policy=policy
    )
    return recorded[0]


def gpc_due(session: Session, *, subject_id: uuid.UUID) -> bool:
    """Whether a Global Privacy Control signal would change the subject's state now: no earlier
    signal's opt-out stands (a read: `record_gpc` asks it again in the unit that writes)."""
    return not gpc.gpc_in_force(history(session, subject_id=subject_id))


def changes_from_categories(
    preferences: Mapping[str, bool],
    *,
    mapping: Mapping[str, Sequence[str]],
    source: ConsentSource,
    proof: Mapping[str, str] | None = None,
) -> list[ConsentChange]:
    """Ledger changes from a customer's consent categories (Segment's `categoryPreferences`, or
    RudderStack's allowed/denied ids as True/False), through the configured category → purposes map.

    Unknown categories are ignored; `essential` is never recorded (it needs no consent). When two
    categories speak to one purpose, a refusal wins. Names match without regard to case: banners
    write `Analytics` where the configuration says `analytics`.
    """
    return [
        ConsentChange.for_purpose(
            purpose, ConsentAction.GRANTED if given else ConsentAction.DENIED, source, proof=dict(proof or {})
        )
        for purpose, given in purposes_from_categories(preferences, mapping=mapping)
    ]


def purposes_from_categories(
    preferences: Mapping[str, bool], *, mapping: Mapping[str, Sequence[str]]
) -> list[tuple[Purpose, bool]]:
    """What `changes_from_categories` records, as (purpose, granted) in purpose order: for callers
    that compare the choices with a ledger before making changes of them."""
    folded = {str(k).casefold(): v for k, v in mapping.items()}
    decided: dict[Purpose, bool] = {}
    for category, given in preferences.items():
        for name in mapping.get(category) or folded.get(str(category).casefold(), ()):
            try:
                purpose = Purpose(name)
            except ValueError:
                continue
            if purpose is not Purpose.ESSENTIAL:
                decided[purpose] = decided.get(purpose, True) and bool(given)
    return sorted(decided.items())


# -- merges ----------------------------------------------------------------------------------------


def _status_action(status: ConsentStatus) -> ConsentAction:
    return ConsentAction(status.value)


def _stricter_than(merged: PurposeState, folded: PurposeState) -> bool:
    return merged.status.refused and not folded.status.refused


def _corrections(merged: ConsentState, folded: ConsentState, at: datetime) -> list[ConsentChange]:
    proof = {"reason": "profile merge: the stricter choice of the two profiles"}
    found: list[ConsentChange] = []
    for purpose in Purpose:
        m = merged.state(purpose, at=at)
        if _stricter_than(m, folded.state(purpose, at=at)):
            found.append(
                ConsentChange.for_purpose(
                    purpose, _status_action(m.status), ConsentSource.IMPORT, proof=proof
                )
            )
    for name in sorted(merged.explicit):
        m = merged.explicit_state(name, at=at)
        if _stricter_than(m, folded.explicit_state(name, at=at)):
            found.append(
                ConsentChange.for_explicit(name, _status_action(m.status), ConsentSource.IMPORT, proof=proof)
            )
    m = merged.parental_state(at=at)
    if _stricter_than(m, folded.parental_state(at=at)):
        found.append(
            ConsentChange(TargetKind.PARENTAL, _status_action(m.status), ConsentSource.IMPORT, proof=proof)
        )
    if merged.objected(at=at) and not folded.objected(at=at):
        found.append(
            ConsentChange(
                TargetKind.LEGITIMATE_INTEREST, ConsentAction.DENIED, ConsentSource.IMPORT, proof=proof
            )
        )
    return found


def merge_ledgers(
    session: Session,
    *,
    keystore: Keystore,
    source: uuid.UUID,
    target: uuid.UUID,
    at: datetime,
    policy: PolicyContext | None = None,
) -> int:
    """Give `source`'s ledger to `target` (a profile merge). Returns the rows moved.

    The fold of the joined ledger keeps the latest choice per purpose; `merge_states` keeps the
    stricter one. Where they differ now, an `import` event records the stricter choice, so that from
    `at` on the target's fold says what the merge rule says. GPC signals move with the rows.
    """
    if source == target:
        return 0
    source_entries = history(session, subject_id=source)
    if not source_entries:
        return 0
    target_entries = history(session, subject_id=target)
    merged = merge_states(fold_entries(source_entries), fold_entries(target_entries))
    before = (flags_at(source_entries, at), flags_at(target_entries, at))
    # Flags outside the fold carry over too: either profile's restriction or limit binds the merged one.
    # (Each flag's kind names its `SubjectFlags` field.)
    carried = [k for k in _CARRIED_FLAGS if any(getattr(flags, k.value) for flags in before)]
    offset = _next_sequence(session, target)
    result = session.execute(
        update(ConsentEventRow)
        .where(ConsentEventRow.subject_id == source)
        .values(subject_id=target, sequence=ConsentEventRow.sequence + offset)
    )
    moved = cast(CursorResult[Any], result).rowcount or 0
    joined = history(session, subject_id=target)
    corrections = _corrections(merged, fold_entries(joined), at)
    now = flags_at(joined, at)
    for kind in carried:
        if not getattr(now, kind.value):
            corrections.append(ConsentChange(kind, ConsentAction.DENIED, ConsentSource.IMPORT))
    record(
        session,
        keystore=keystore,
        subject_id=target,
        changes=corrections,
        at=at,
        actor="merge",
        policy=policy,
    )
    return moved


# -- rights: export and erasure --------------------------------------------------------------------


def export_ledger(session: Session, *, subject_id: uuid.UUID) -> dict[str, object]:
    """The subject's consent history as JSON-ready data ({} when it has none)."""
    entries = history(session, subject_id=subject_id)
    if not entries:
        return {}
    return {
        "events": [
            {
                "at": e.at.isoformat(),
                "target": e.label,
                "action": e.action.value,
                "source": e.source.value,
                "notice_version": e.notice_version,
                "method": e.method,
                "proof": dict(e.proof),
            }
            for e in entries
        ]
    }


def erase_ledger(session: Session, *, keystore: Keystore, subject_id: uuid.UUID, at: datetime) -> int:
    """Keep the subject's consent records as proof, unlinked from it (DESIGN invariant 11).

    The rows get a random tombstone id in place of the subject id, and the subject's audit reference,
    so that they still match the audit log's `consent.changed` entries. Both become unlinkable when
    the keystore store destroys the subject's salt, which the registry does next. Returns the rows
    pseudonymised.
    """
    count = session.scalar(select(func.count()).where(ConsentEventRow.subject_id == subject_id)) or 0
    if not count:
        return 0
    # Never create a key here: a subject whose key is already gone keeps no reference.
    ref = keystore.subject_ref(subject_id) if keystore.has_subject(subject_id) else None
    result = session.execute(
        update(ConsentEventRow)
        .where(ConsentEventRow.subject_id == subject_id)
        .values(subject_id=new_id(), subject_ref=ref, erased_at=at)
    )
    return cast(CursorResult[Any], result).rowcount or 0
