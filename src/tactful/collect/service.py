"""Ingestion: every received message is stored, deduplicated, quarantined, suppressed or dropped (an
event the catalog does not declare), and counted, inside the caller's transaction (the HTTP layer
commits before it answers).

The order of work for a request keeps the database round trips per batch, not per event:
subject tokens out and what they prove (`trust`) → validate all, one dedup lookup (`checks`) →
strangers' events no purpose allows suppressed before anyone is created (`plans`) → resolve every
other identity at once (`links`: merges move our rows, then consent merges ledgers) → reserve new
message ids (one statement; a lost race turns into a duplicate) → the consent the events carry
(what each message may grant or widen: `trust`), and each event's purposes (`purposes`, which asks
`consent.storage`; an undeclared event: dropped; none: suppressed) → traits → computed atoms for the
whole batch → bulk inserts → counters, and the audit of refused claims (`trust`).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session

from tactful import jsontext
from tactful.audit import service as audit_service
from tactful.bulk import insert_rows
from tactful.catalog import drift
from tactful.catalog.filtering import event_atom_name
from tactful.collect import checks, erased, keep, proof, quarantine, realtime, store, trust
from tactful.collect import fields as collect_fields
from tactful.collect import outcomes as collect_outcomes
from tactful.collect import purposes as collect_purposes
from tactful.collect.message import MessageType
from tactful.collect.models import Event, MessageId, Quarantine
from tactful.collect.plans import Plan, Subjects, suppress_unheard
from tactful.collect.schemas import CollectCatalog, EventResult, IngestStats, Refusal, Source, Status
from tactful.collect.validate import Reason
from tactful.config import Limits
from tactful.consent import storage
from tactful.consent.gatekeeper import PolicyContext
from tactful.crypto import Keystore
from tactful.db import truncate_log_after_commit
from tactful.profiles import service as profiles_service


def _decide(
    session: Session,
    plans: list[Plan],
    *,
    keystore: Keystore,
    policy: PolicyContext,
    source: Source,
    at: datetime,
    fresh: frozenset[uuid.UUID],
) -> tuple[dict[int, storage.Decision], storage.Decisions | None, list[audit_service.AuditRecord]]:
    """Each new event's decision by plan index, the request's allowances (None without new events),
    and the audit entries of the consent recorded, still to append (with `_write`'s: one append)."""
    arriving = [p for p in plans if p.status is None]
    if not arriving:
        return {}, None, []
    may_grant, may_widen = trust.grants_and_widenings(
        session, arriving, keystore=keystore, source=source, at=at
    )
    items: dict[int, collect_purposes.Arriving] = {}
    for plan in arriving:
        assert plan.event is not None
        assert plan.subject_id is not None
        assert plan.message_id is not None
        message = plan.message if isinstance(plan.message, dict) else {}
        traits = keep.as_object(message.get("traits")) if plan.event.type is MessageType.IDENTIFY else {}
        carried = keep.as_object(keep.as_object(message.get("context")).get("traits"))
        items[plan.index] = collect_purposes.Arriving(
            plan.subject_id,
            plan.event,
            plan.message_id,
            {**carried, **traits},
            may_grant=plan.index in may_grant,
            may_widen=plan.index in may_widen,
        )
    with audit_service.held(session) as audited:
        under, refused_grants = collect_purposes.decide(
            session,
            keystore=keystore,
            policy=policy,
            items=list(items.values()),
            source=source,
            at=at,
            nothing_stored=fresh,
        )
    decided = {index: under.decide(item.item) for index, item in items.items()}
    for plan in arriving:
        plan.refused.extend(collect_purposes.refusals(decided[plan.index]))
        if decided[plan.index].traits and under.age_declared(items[plan.index].item, decided[plan.index]):
            plan.age_method = trust.age_method(plan, source)
        if plan.message_id in refused_grants:
            plan.refused.append(Refusal.CONSENT_GRANT)
    return decided, under, audited


def ingest(
    session: Session,
    *,
    keystore: Keystore,
    messages: Sequence[object],
    source: Source,
    at: datetime,
    limits: Limits,
    policy: PolicyContext,
    tokens: proof.TokenCheck | None = None,
    outcomes: collect_outcomes.OutcomeHook = collect_outcomes.ignore_outcomes,
    behaviour: realtime.Behaviour | None = None,
) -> list[EventResult]:
    """Ingest `messages` received at `at` under the deployment's `limits` and `policy` (whose catalog
    filters them); one result per message, in order. The caller commits.

    The consent the events carry is recorded first and each new event is stored with the purposes
    it may serve, dropped (`undeclared_event`) when the catalog does not declare it, or suppressed
    (`no_purpose`) when no purpose may.

    What a message says about a user id is a claim unless the source is trusted (a server key) or a
    subject token in the message proves it (`tokens` checks them; without it none proves anything):
    see `links` and `trust` for what a claim may not do.

    Stored track events that name a decision are handed to `outcomes` in this transaction
    (`collect.outcomes`).

    `behaviour` gathers, in the same pass, what the session counters may count of the stored events
    and the request's merges: the caller feeds the counters with it after the commit."""
    catalog = policy.catalog
    # Subject keys unwrapped once for the whole request, and forgotten with it (an erasure on
    # another process must hold from its next request on).
    keystore = keystore.cached()
    plans = [
        Plan(i, dict(m) if isinstance(m, Mapping) and not isinstance(m, dict) else m)
        for i, m in enumerate(messages)
    ]
    trust.take_proof(plans, source=source, tokens=tokens, at=at)
    checks.check(plans, keystore=keystore, source=source, at=at, limits=limits)
    fresh: dict[str, str | None] = {}
    checks.classify(plans, store.seen_messages(session, (p.digest for p in plans if p.digest)), fresh)
    # One read of who holds the new messages' identifiers, for both of the next two.
    checked = erased.check(session, plans, keystore=keystore, at=at)
    suppress_unheard(
        session, plans, keystore=keystore, policy=policy, source=source, at=at, known=checked.known
    )
    checks.drop_undeclared(plans, policy)
    subjects = Subjects(session, keystore, at, policy, trusted=source.trusted)
    subjects.resolve([p for p in plans if p.status in (None, Status.QUARANTINED)])
    # Suppressed first sightings keep their message ids too: a retry is a duplicate, as for anyone.
    new = [p for p in plans if p.status is None or p.unlinked]
    reservations = [
        {
            "digest": p.digest,
            "fingerprint": p.fingerprint,
            "subject_id": subjects.current(p.subject_id) if p.subject_id else None,
            "first_seen_at": at,
        }
        for p in new
    ]
    won = store.reserve_messages(session, reservations)
    lost = [p for p in new if p.digest not in won]
    if lost:  # another transaction reserved these ids first: they are repeats after all
        for p in lost:
            assert p.digest is not None
            fresh.pop(p.digest, None)
            if p.unlinked:
                p.status, p.reason, p.unlinked = None, None, False
        checks.classify(lost, store.seen_messages(session, (p.digest for p in lost if p.digest)), {})

    dropped: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    if checked.after_erasure:
        counts[erased.AFTER_ERASURE] += checked.after_erasure
    recorded: list[profiles_service.EventRecord] = []
    identified: list[profiles_service.TraitUpdate] = []
    for plan in plans:
        if plan.subject_id is not None:
            plan.subject_id = subjects.current(plan.subject_id)
    created = subjects.fresh()
    if behaviour is not None:
        behaviour.merged(subjects.merges())
    decisions, under, audited = _decide(
        session, plans, keystore=keystore, policy=policy, source=source, at=at, fresh=created
    )
    fields = None if under is None else collect_fields.FieldPurposes(under.policy.catalog, under)
    for plan in plans:
        if plan.status is None:
            if plan.undeclared:  # noted of every plan by `checks.drop_undeclared`
                # Still after its identities and the consent it carries were recorded: a choice
                # sent along with any event counts.
                plan.status, plan.reason = Status.DROPPED, Reason.UNDECLARED_EVENT
                continue
            decision = decisions[plan.index]
            if not decision.purposes:
                plan.status, plan.reason = Status.SUPPRESSED, Reason.NO_PURPOSE
                continue
            assert fields is not None  # made with the decisions
            keep.event(
                plan,
                catalog=catalog,
                source=source,
                at=at,
                dropped=dropped,
                recorded=recorded,
                identified=identified,
                decision=decision,
                fields=fields,
                counts=counts,
            )
            if behaviour is not None and under is not None:
                behaviour.stored(plan.row, purposes=decision.purposes, under=under, at=at)
    # Only the site's backend vouches for an e-mail address: a page's word takes no one's (§4).
    profiles_service.apply_traits_many(
        session, keystore=keystore, catalog=catalog, updates=identified, vouched=source.trusted
    )
    # Every new key and index entry is known now: the keystore commits while the rest is done. Its
    # transaction first reads the salts of everyone the request's audit entries name (a keystore
    # read of their own would wait for that commit).
    named = [r.subject_id for r in audited if r.subject_id is not None]
    keystore.write_held_soon(reading=[*named, *trust.audited_subjects(plans)])
    withheld = {} if under is None else under.withheld_computed([s for s, _, _ in recorded])
    profiles_service.record_events(session, catalog=catalog, events=recorded, withheld=withheld)
    # Subjects created by this request had nothing stored before: nothing to clear.
    collect_purposes.purge_computed(session, {s: a for s, a in withheld.items() if s not in created})
    if under is not None:
        claims = [(p.subject_id, p.outcome, p.event) for p in plans if p.status is Status.STORED]
        found = collect_outcomes.outcomes_of(claims, under.allowances, at=at)
        collect_outcomes.report(session, outcomes, found, at=at, counts=counts)
    _write(
        session,
        plans,
        keystore=keystore,
        catalog=catalog,
        source=source,
        at=at,
        limits=limits,
        dropped=dropped,
        counts=counts,
        audited=audited,
    )
    return [plan.result() for plan in plans]


def _write(
    session: Session,
    plans: list[Plan],
    *,
    keystore: Keystore,
    catalog: CollectCatalog,
    source: Source,
    at: datetime,
    limits: Limits,
    dropped: Counter[str],
    counts: Counter[str],
    audited: Sequence[audit_service.AuditRecord] = (),
) -> None:
    """Insert the request's rows and add its counts (`counts`: redacted and withheld fields so far);
    append the audit entries held so far (`audited`) with those of the refused claims, at once."""
    events = [p.row for p in plans if p.status is Status.STORED]
    quarantined = [
        quarantine.row(
            p.message,
            keystore=keystore,
            subject_id=p.subject_id,
            reason=str(p.reason),
            detail=p.detail,
            message_id=p.message_id,
            received_at=at,
            write_key_id=source.write_key_id,
            request_id=source.request_id,
            limit=limits.max_event_bytes,
            catalog=catalog,
            retention=timedelta(days=limits.quarantine_retention_days),
        )
        for p in plans
        if p.status is Status.QUARANTINED
    ]
    # Bulk inserts of plain dicts: the ORM's unit of work would add nothing but time.
    insert_rows(session, store.table_of(Event), events)
    insert_rows(session, store.table_of(Quarantine), quarantined)
    counts["received"] += len(plans)
    for plan in plans:
        assert plan.status is not None
        for code in dict.fromkeys(plan.refused):
            counts[f"refused:{code}"] += 1
        name = {Status.STORED: "stored", Status.DUPLICATE: "deduplicated"}.get(plan.status, str(plan.status))
        counts[name] += 1
        if plan.reason is not None:
            counts[f"{name}:{plan.reason}"] += 1
    store.add_counts(session, counts, dropped)
    # One append for the request: the chain's head is read (and on PostgreSQL locked) once.
    records = [*audited, *trust.audit_records(plans, source=source, at=at)]
    if records:
        audit_service.append_records(session, keystore=keystore, records=records)


# -- reading, moving, exporting, erasing ------------------------------------------------------


def ingest_stats(session: Session) -> IngestStats:
    """The running totals of every ingestion so far."""
    counters, dropped = store.totals(session)

    def by_prefix(prefix: str) -> dict[str, int]:
        return {name[len(prefix) :]: n for name, n in counters.items() if name.startswith(prefix)}

    return IngestStats(
        received=counters.get("received", 0),
        stored=counters.get("stored", 0),
        deduplicated=counters.get("deduplicated", 0),
        quarantined=counters.get("quarantined", 0),
        suppressed=counters.get("suppressed", 0),
        dropped=counters.get("dropped", 0),
        after_erasure=counters.get(erased.AFTER_ERASURE, 0),
        quarantined_by_reason=by_prefix("quarantined:"),
        suppressed_by_reason=by_prefix("suppressed:"),
        dropped_by_reason=by_prefix("dropped:"),
        refused_by_reason=by_prefix("refused:"),
        dropped_fields=dropped,
        redacted=by_prefix("redacted:"),
        withheld_fields=by_prefix("withheld:"),
    )


def catalog_drift(session: Session) -> drift.Drift:
    """The undeclared fields dropped so far, by field name, most frequent first."""
    _, dropped = store.totals(session)
    return drift.drift(dropped)


def move_subject(session: Session, *, source: uuid.UUID, target: uuid.UUID) -> int:
    """Move collection's rows of `source` to `target` (after profiles merged them)."""
    return store.move_subject(session, source=source, target=target)


def export_subject(
    session: Session, *, subject_id: uuid.UUID, keystore: Keystore | None = None
) -> dict[str, Any]:
    """Everything collection holds about a subject: its events and quarantined messages, whose
    payloads are decrypted with `keystore` (pass it: without it a sealed payload reads as None)."""
    events = session.execute(
        select(Event).where(Event.subject_id == subject_id).order_by(Event.timestamp)
    ).scalars()
    columns = [c.key for c in Event.__table__.columns if c.key != "subject_id"]
    return {
        "events": [{c: jsontext.column_value(getattr(e, c)) for c in columns} for e in events],
        "quarantine": quarantine.export_rows(session, keystore=keystore, subject_id=subject_id),
    }


def recent_events(
    session: Session, *, subject_id: uuid.UUID, limit: int, before: tuple[datetime, uuid.UUID] | None = None
) -> list[dict[str, Any]]:
    """Up to `limit` of the subject's stored events, newest first (by event time, then id), those
    before the `(timestamp, id)` of `before` when given: a page of an operator's look-up."""
    query = select(Event).where(Event.subject_id == subject_id)
    if before is not None:
        at, last = before
        query = query.where(or_(Event.timestamp < at, and_(Event.timestamp == at, Event.id < last)))
    query = query.order_by(Event.timestamp.desc(), Event.id.desc()).limit(limit)
    columns = [c.key for c in Event.__table__.columns if c.key != "subject_id"]
    return [{c: getattr(e, c) for c in columns} for e in session.scalars(query)]


def erase_subject(session: Session, *, subject_id: uuid.UUID, keystore: Keystore | None = None) -> int:
    """Delete a subject's events and quarantined messages, with those that name its identifiers
    (found through its identities and, with `keystore`, its indexed e-mail addresses: erase before
    them). Its message ids stay as bare keyed digests (no subject, no content fingerprint) so that a
    replay is suppressed rather than stored again."""
    removed = quarantine.erase(session, keystore=keystore, subject_id=subject_id)
    result = session.execute(delete(Event).where(Event.subject_id == subject_id))
    removed += int(getattr(result, "rowcount", 0) or 0)
    result = session.execute(
        update(MessageId)
        .where(MessageId.subject_id == subject_id)
        .values(subject_id=None, fingerprint=None, erased=True),
        execution_options={"synchronize_session": False},
    )
    # An erasure runs every store's handler in this transaction: once it commits, no copy of what
    # they deleted may stay in SQLite's log, whatever collection itself held.
    truncate_log_after_commit(session)
    return removed + int(getattr(result, "rowcount", 0) or 0)


def purge_message_ids(session: Session, *, before: datetime) -> int:
    """Forget dedup entries first seen before `before` (settings.dedup_retention_days ago)."""
    result = session.execute(delete(MessageId).where(MessageId.first_seen_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


def purge_quarantine(session: Session, *, at: datetime) -> int:
    """Delete quarantined messages kept past their retention (`Limits.quarantine_retention_days`,
    fixed on each row when it was quarantined) by `at`."""
    return quarantine.purge(session, at=at)


def event_atoms(session: Session, *, subject_id: uuid.UUID) -> frozenset[str]:
    """The event atoms the subject's stored events are (`events.product_viewed`): whom the catalog
    says they reach is whom an erasure must tell."""
    kinds = session.execute(select(Event.type, Event.event).where(Event.subject_id == subject_id).distinct())
    return frozenset(name for kind, event in kinds if (name := event_atom_name(kind, event)) is not None)
