"""Ingestion: every received message is stored, deduplicated, quarantined, suppressed or dropped (an
event the catalog does not declare), and counted, inside the caller's transaction (the HTTP layer
commits before it answers).

The order of work for a request keeps the database round trips per batch, not per event:
validate all → one dedup lookup → strangers' events no purpose allows suppressed before anyone is
created (`plans`) → resolve every other identity at once (merges move our rows, then consent
merges ledgers) → reserve new message ids (one statement; a lost race turns into a duplicate) → the
consent the events carry, and each event's purposes (`purposes`; an undeclared event: dropped;
none: suppressed) → traits →
computed atoms for the whole batch → bulk inserts → counters.
"""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tactful import jsontext
from tactful.audit import service as audit_service
from tactful.bulk import insert_rows
from tactful.catalog import drift
from tactful.catalog.filtering import event_atom_name
from tactful.collect import fields as collect_fields
from tactful.collect import links, proof, quarantine, store
from tactful.collect import purposes as collect_purposes
from tactful.collect.message import MessageType, canonical, for_catalog
from tactful.collect.models import Event, MessageId, Quarantine
from tactful.collect.plans import Plan, Subjects, suppress_unheard
from tactful.collect.schemas import CollectCatalog, EventResult, IngestStats, Refusal, Source, Status
from tactful.collect.validate import Reason, Rejection, validate
from tactful.config import Limits
from tactful.consent.gatekeeper import PolicyContext
from tactful.crypto import Keystore
from tactful.db import truncate_log_after_commit
from tactful.profiles import service as profiles_service
from tactful.types import new_row_id

ASSIGNED_PREFIX = "tf-"
"""Of the message id given to a message that has none (a random UUID), as Segment does: two identical
messages without ids are two real actions, never one deduplicated."""


@functools.cache
def _default_limits() -> Limits:
    # Built on first use, not at import (settings read the environment); then reused, because
    # building settings for every request costs more than a small batch's database work.
    return Limits()


def _message_id_of(message: object) -> str | None:
    value = message.get("messageId") if isinstance(message, Mapping) else None
    return value if isinstance(value, str) and 0 < len(value) <= 255 and value.isprintable() else None


def _take_proof(plans: list[Plan], *, source: Source, tokens: proof.TokenCheck | None, at: datetime) -> None:
    """Take the subject tokens out of every message before anything reads it, and note what they prove."""
    for plan in plans:
        plan.message, carried = proof.take_tokens(plan.message)
        plan.proven, failed = proof.proven_ids(
            plan.message, carried, header_token=source.subject_token, check=tokens, at=at
        )
        if failed:
            plan.refused.append(proof.INVALID_TOKEN)


def _check(plans: list[Plan], *, keystore: Keystore, source: Source, at: datetime, limits: Limits) -> None:
    scope = str(source.write_key_id or "")
    for plan in plans:
        checked = validate(plan.message, at=at, max_event_bytes=limits.max_event_bytes)
        if isinstance(checked, Rejection):
            plan.message_id = _message_id_of(plan.message)
            plan.quarantine(checked.reason, checked.detail)
            continue
        assert isinstance(plan.message, dict)
        plan.event = checked
        plan.fingerprint = keystore.digest("event_content", canonical(plan.message))
        plan.message_id = checked.message_id or f"{ASSIGNED_PREFIX}{uuid.uuid4()}"
        plan.digest = keystore.digest("message_id", f"{scope}\x00{plan.message_id}")


def _undeclared(policy: PolicyContext | None, plan: Plan) -> bool:
    """Whether the plan's event is one the catalog does not declare (by its name for a track call,
    by its type for page, screen and group). Identify and alias link identities and carry traits,
    which the catalog declares field by field. Without a policy (a stand-in catalog) nothing is."""
    event = plan.event
    if policy is None or event is None or event.type in (MessageType.IDENTIFY, MessageType.ALIAS):
        return False
    name = event_atom_name(event.type.value, event.name)
    return name is None or name not in policy.catalog.atoms


def _drop_undeclared(plans: list[Plan], policy: PolicyContext | None) -> None:
    """Events of strangers suppressed before anyone was created are dropped when undeclared: it is
    the catalog, not consent, that leaves them out."""
    for plan in plans:
        if plan.unlinked and plan.status is Status.SUPPRESSED and _undeclared(policy, plan):
            plan.status, plan.reason = Status.DROPPED, Reason.UNDECLARED_EVENT


def _classify(plans: list[Plan], seen: Mapping[str, store.SeenMessage], fresh: dict[str, str | None]) -> None:
    """Mark duplicates, conflicts and replays of erased subjects; collect first sightings in `fresh`."""
    for plan in plans:
        if plan.status is not None or plan.digest is None:
            continue
        if plan.digest in fresh:
            earlier: store.SeenMessage | None = store.SeenMessage(fresh[plan.digest], erased=False)
        else:
            earlier = seen.get(plan.digest)
        if earlier is None:
            fresh[plan.digest] = plan.fingerprint
        elif earlier.erased:
            plan.status, plan.reason = Status.SUPPRESSED, Reason.ERASED_SUBJECT
        elif earlier.fingerprint == plan.fingerprint:
            plan.status = Status.DUPLICATE
        else:
            plan.quarantine(
                Reason.DUPLICATE_CONFLICT, "this messageId was first received with another payload"
            )


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _without_identifiers(traits: dict[str, Any], catalog: CollectCatalog) -> dict[str, Any]:
    """Traits minus direct identifiers: those are kept only in the profile, encrypted under the
    subject's key (DESIGN §1), never in clear in the event store."""
    atoms = catalog.trait_atoms
    if not any((atom := atoms.get(name)) is not None and atom.identifier for name in traits):
        return traits
    return {name: value for name, value in traits.items() if not ((a := atoms.get(name)) and a.identifier)}


def _stored_context(context: dict[str, Any], catalog: CollectCatalog) -> dict[str, Any]:
    traits = context.get("traits")  # analytics.js repeats the user's traits here on every call
    if not isinstance(traits, dict):
        return context
    return {**context, "traits": _without_identifiers(traits, catalog)}


def _store(
    plan: Plan,
    *,
    catalog: CollectCatalog,
    source: Source,
    at: datetime,
    dropped: Counter[str],
    recorded: list[profiles_service.EventRecord],
    identified: list[profiles_service.TraitUpdate],
    decision: collect_purposes.Decision | None,
    fields: collect_fields.FieldPurposes | None = None,
    counts: Counter[str] | None = None,
) -> None:
    event, subject_id = plan.event, plan.subject_id
    assert event is not None
    assert subject_id is not None
    assert plan.message_id is not None
    assert isinstance(plan.message, dict)
    filtered = catalog.filter_message(for_catalog(plan.message))
    dropped.update(filtered.dropped)
    if counts is not None and filtered.redacted:
        # `<what>:<path>`: a long path loses its start, never what was removed.
        counts.update(
            store.counter_name(f"redacted:{what}:", path)
            for what, _, path in (entry.partition(":") for entry in filtered.redacted)
        )
    kept = filtered.kept
    traits = _object(kept.get("traits"))
    if decision is not None:
        # Only the user traits some allowed purpose keeps: the others are neither stored nor
        # profiled. They are an identify's own traits, and on every call the copy analytics.js
        # repeats in `context.traits`. (A group's traits describe the group: its event atom's
        # purposes cover them.)
        if event.type is MessageType.IDENTIFY and traits:
            traits = {k: v for k, v in traits.items() if k in decision.traits}
            kept = {**kept, "traits": traits}
        context = _object(kept.get("context"))
        carried = context.get("traits")
        if isinstance(carried, dict) and carried:
            atoms = catalog.trait_atoms
            allowed = {k: v for k, v in carried.items() if k in decision.traits or k not in atoms}
            kept = {**kept, "context": {**context, "traits": allowed}}
    if event.type is MessageType.IDENTIFY and traits:
        identified.append((subject_id, traits, event.timestamp))
    if decision is not None and fields is not None:
        # The profile has its traits; the event keeps only the fields its own purposes allow.
        kept, withheld = fields.keep(
            subject_id, decision, kept, user_traits=event.type is MessageType.IDENTIFY
        )
        if counts is not None and withheld:
            counts.update(store.counter_name("withheld:", path) for path in withheld)
        traits = _object(kept.get("traits"))
    stored = {
        **kept,
        "type": event.type.value,
        "messageId": plan.message_id,
        "timestamp": event.timestamp.isoformat(),
    }
    recorded.append((subject_id, stored, event.timestamp))
    plan.status = Status.STORED
    plan.row = {
        "id": new_row_id(),
        "subject_id": subject_id,
        "message_id": plan.message_id,
        "type": event.type.value,
        "event": event.name,
        "group_id": event.group_id,
        "timestamp": event.timestamp,
        "original_timestamp": event.original_timestamp,
        "received_at": at,
        "properties": _object(kept.get("properties")),
        "traits": _without_identifiers(traits, catalog),
        "context": _stored_context(_object(kept.get("context")), catalog),
        "consent": event.consent,
        "gpc": True if source.gpc else event.gpc,
        "purposes": None if decision is None else sorted(decision.purposes),
        "write_key_id": source.write_key_id,
        "request_id": source.request_id,
    }


def _decide(
    session: Session,
    plans: list[Plan],
    *,
    keystore: Keystore,
    policy: PolicyContext | None,
    source: Source,
    at: datetime,
    fresh: frozenset[uuid.UUID],
) -> tuple[dict[int, collect_purposes.Decision], collect_purposes.Decisions | None]:
    """Each new event's decision by plan index (empty without a policy), and the request's allowances."""
    if policy is None:
        return {}, None
    arriving = [p for p in plans if p.status is None]
    if not arriving:
        return {}, None
    may_grant, may_widen = _trust(session, arriving, keystore=keystore, source=source, at=at)
    items: dict[int, collect_purposes.Arriving] = {}
    for plan in arriving:
        assert plan.event is not None
        assert plan.subject_id is not None
        assert plan.message_id is not None
        message = plan.message if isinstance(plan.message, dict) else {}
        traits = _object(message.get("traits")) if plan.event.type is MessageType.IDENTIFY else {}
        carried = _object(_object(message.get("context")).get("traits"))
        items[plan.index] = collect_purposes.Arriving(
            plan.subject_id,
            plan.event,
            plan.message_id,
            {**carried, **traits},
            may_grant=plan.index in may_grant,
            may_widen=plan.index in may_widen,
        )
    under = collect_purposes.decide(
        session,
        keystore=keystore,
        policy=policy,
        items=list(items.values()),
        source=source,
        at=at,
        nothing_stored=fresh,
    )
    decided = {index: under.decide(item) for index, item in items.items()}
    for plan in arriving:
        plan.refused.extend(decided[plan.index].refused)
        if decided[plan.index].traits and under.age_declared(items[plan.index], decided[plan.index]):
            plan.age_method = _age_method(plan, source)
        if plan.message_id in under.refused_grants:
            plan.refused.append(Refusal.CONSENT_GRANT)
    return decided, under


def _age_method(plan: Plan, source: Source) -> str:
    """How an accepted age was vouched for: by the site's server key, by the user's subject token,
    or by the visitor alone (an anonymous age gate; it never carries over a pending link)."""
    assert plan.event is not None
    if source.trusted:
        return "server_key"
    return "subject_token" if plan.event.user_id is not None else "self_declared"


def _trust(
    session: Session, plans: list[Plan], *, keystore: Keystore, source: Source, at: datetime
) -> tuple[set[int], set[int]]:
    """Which plans may grant consent, and which may widen what is known of their person (write
    identifiers, lift an age protection), by plan index (DESIGN §4). A message that names a user id
    may, when the key is a server key or a token in it proves that user id. One that names only an
    anonymous id may, unless its subject is identified; and it may not grant while a pending link
    claims the anonymous id for a user."""
    if source.trusted:
        every = {p.index for p in plans}
        return every, set(every)
    anonymous = [p for p in plans if p.event is not None and p.event.user_id is None]
    identified, pending = links.speaks_for_identified(
        session,
        keystore=keystore,
        subject_ids=[p.subject_id for p in anonymous if p.subject_id is not None],
        anonymous_ids=[p.event.anonymous_id for p in anonymous if p.event and p.event.anonymous_id],
        at=at,
    )
    may_grant: set[int] = set()
    may_widen: set[int] = set()
    for plan in plans:
        event = plan.event
        assert event is not None
        if event.user_id is not None:
            if event.user_id in plan.proven:
                may_grant.add(plan.index)
                may_widen.add(plan.index)
        elif plan.subject_id not in identified:
            may_widen.add(plan.index)
            if event.anonymous_id not in pending:
                may_grant.add(plan.index)
    return may_grant, may_widen


def ingest(
    session: Session,
    *,
    keystore: Keystore,
    catalog: CollectCatalog,
    messages: Sequence[object],
    source: Source,
    at: datetime,
    limits: Limits | None = None,
    policy: PolicyContext | None = None,
    tokens: proof.TokenCheck | None = None,
) -> list[EventResult]:
    """Ingest `messages` received at `at`; one result per message, in order. The caller commits.

    With `policy` (or a real catalog, under the default policy), the consent the events carry is
    recorded first and each new event is stored with the purposes it may serve, dropped
    (`undeclared_event`) when the catalog does not declare it, or suppressed (`no_purpose`) when no
    purpose may; with a stand-in catalog and no policy, consent is not applied.

    What a message says about a user id is a claim unless the source is trusted (a server key) or a
    subject token in the message proves it (`tokens` checks them; without it none proves anything):
    see `links` and `_trust` for what a claim may not do."""
    limits = limits or _default_limits()
    policy = collect_purposes.policy_for(catalog, policy)
    # Subject keys unwrapped once for the whole request, and forgotten with it (an erasure on
    # another process must hold from its next request on).
    keystore = keystore.cached()
    plans = [
        Plan(i, dict(m) if isinstance(m, Mapping) and not isinstance(m, dict) else m)
        for i, m in enumerate(messages)
    ]
    _take_proof(plans, source=source, tokens=tokens, at=at)
    _check(plans, keystore=keystore, source=source, at=at, limits=limits)
    fresh: dict[str, str | None] = {}
    _classify(plans, store.seen_messages(session, (p.digest for p in plans if p.digest)), fresh)

    suppress_unheard(session, plans, keystore=keystore, policy=policy, source=source, at=at)
    _drop_undeclared(plans, policy)
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
        _classify(lost, store.seen_messages(session, (p.digest for p in lost if p.digest)), {})

    dropped: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    recorded: list[profiles_service.EventRecord] = []
    identified: list[profiles_service.TraitUpdate] = []
    for plan in plans:
        if plan.subject_id is not None:
            plan.subject_id = subjects.current(plan.subject_id)
    created = subjects.fresh()
    decisions, under = _decide(
        session, plans, keystore=keystore, policy=policy, source=source, at=at, fresh=created
    )
    fields = None if under is None else collect_fields.FieldPurposes(under.policy.catalog, under)
    for plan in plans:
        if plan.status is None:
            if _undeclared(policy, plan):
                # Still after its identities and the consent it carries were recorded: a choice
                # sent along with any event counts.
                plan.status, plan.reason = Status.DROPPED, Reason.UNDECLARED_EVENT
                continue
            decision = decisions.get(plan.index)
            if decision is not None and not decision.purposes:
                plan.status, plan.reason = Status.SUPPRESSED, Reason.NO_PURPOSE
                continue
            _store(
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
    profiles_service.apply_traits_many(session, keystore=keystore, catalog=catalog, updates=identified)
    # Every new key and index entry is known now: the keystore commits while the rest is done.
    keystore.write_held_soon()
    withheld = {} if under is None else collect_purposes.withheld_computed(under, [s for s, _, _ in recorded])
    profiles_service.record_events(session, catalog=catalog, events=recorded, withheld=withheld)
    # Subjects created by this request had nothing stored before: nothing to clear.
    collect_purposes.purge_computed(session, {s: a for s, a in withheld.items() if s not in created})
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
    )
    return [plan.result() for plan in plans]


_AUDITED_PER_SUBJECT = frozenset(
    {Refusal.CONSENT_GRANT, Refusal.MERGE_NEEDS_PROOF, Refusal.IDENTIFIER_TRAIT, Refusal.AGE_CLAIM}
)
"""Refused claims that tried to widen an identified person's rights: audited under the person."""


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
) -> None:
    """Insert the request's rows and add its counts (`counts`: redacted and withheld fields so far)."""
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
        )
        for p in plans
        if p.status is Status.QUARANTINED
    ]
    # Bulk inserts of plain dicts: the ORM's unit of work would add nothing but time.
    insert_rows(session, store.table_of(Event), events)
    insert_rows(session, store.table_of(Quarantine), quarantined)
    counts["received"] += len(plans)
    refused: dict[uuid.UUID, Counter[str]] = {}
    declared: dict[uuid.UUID, str] = {}
    for plan in plans:
        assert plan.status is not None
        if plan.age_method is not None and plan.status is Status.STORED and plan.subject_id is not None:
            declared[plan.subject_id] = plan.age_method
        for code in dict.fromkeys(plan.refused):
            counts[f"refused:{code}"] += 1
            if plan.subject_id is not None and code in _AUDITED_PER_SUBJECT:
                refused.setdefault(plan.subject_id, Counter())[code] += 1
        name = {Status.STORED: "stored", Status.DUPLICATE: "deduplicated"}.get(plan.status, str(plan.status))
        counts[name] += 1
        if plan.reason is not None:
            counts[f"{name}:{plan.reason}"] += 1
    store.add_counts(session, counts, dropped)
    unverified = counts[f"refused:{Refusal.LINK_UNVERIFIED}"]
    if refused or declared or unverified:
        actor = f"collect:key:{source.write_key_id}" if source.write_key_id else "collect"
        records = (
            [
                # Pending links, as browsers without tokens make them at every sign-in: one entry for
                # the request (the links themselves are kept, each under its user's subject).
                audit_service.AuditRecord(
                    action="collect.links_pending",
                    actor=actor,
                    at=at,
                    details={"count": unverified, "request_id": source.request_id or ""},
                )
            ]
            if unverified
            else []
        )
        records += [
            audit_service.AuditRecord(
                action="collect.claims_refused", actor=actor, at=at, subject_id=subject, details=dict(codes)
            )
            for subject, codes in refused.items()
        ]
        records += [
            audit_service.AuditRecord(
                action="profiles.age_declared",
                actor=actor,
                at=at,
                subject_id=subject,
                details={"method": method},
            )
            for subject, method in declared.items()
        ]
        audit_service.append_many(session, keystore=keystore, records=records)


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
    """Delete quarantined messages kept past their retention (`quarantine.RETENTION`) by `at`."""
    return quarantine.purge(session, at=at)
