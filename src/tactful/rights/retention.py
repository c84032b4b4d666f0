"""The retention sweep (DESIGN invariant 12): every store drops what outlived its retention.

    events         each stored event past its event atom's retention, counted from the row's own
                   time or, for atoms anchored on the latest (`retention_anchor: latest`), from the
                   subject's latest row of that atom; deleted or anonymised as the catalog's
                   `expiry:` says for the atom's category (`anonymise.py`). Events of undeclared
                   types keep only system fields and expire with the shortest event retention.
    event fields   stored context fields past their own atom's retention, taken out of events that
                   are kept longer (a precise location kept 24 hours on an order kept for months)
    traits         traits and computed atoms past their atom's retention (their `expires_at`),
    computed       always deleted: a profile value without its person counts nothing
    pending links  unproven links past their retention
    quarantine     rows past the quarantine's own retention
    message ids    dedup entries older than `dedup_retention_days` (kept longer than events on
                   purpose: a late retry must still be recognised)
    decisions      served decisions older than `decision_log_retention_days` (their explanations
                   then answer 404, as for an unknown id)
    outcomes       linked outcomes as old as those decisions; pending ones that waited too long for
                   their decision are settled as unknown (`measure.outcomes.expire`)
    exports        access and portability packages past their expiry, rows and sealed files
                   (`exports.sweep`; the job worker also runs it between jobs)
    reviews        answered reviews of significant decisions past `privacy.review_record_days`
                   from their answer (`review_records.py`: an overturn binds while its record is
                   kept); open reviews never
    proof          what erasure keeps as proof, each for its own period: a closed request's record
                   (`privacy.request_record_days`, at least 24 months) and an erased person's
                   pseudonymised consent records (`privacy.consent_proof_days` after the erasure)

`run_retention` runs every step in the caller's transaction and returns a `SweepReport`: a count
per store, category and action. A dry run counts the same rows with the same conditions and
changes nothing; a real run also appends one `retention.swept` audit entry with the counts. The
server runs it on its own schedule (`schedule.py`); `tactful retention run` runs it by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Select, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from tactful.audit import service as audit_service
from tactful.catalog.model import Atom, Catalog
from tactful.catalog.retention import Anchor, Expiry
from tactful.collect import service as collect_service
from tactful.collect.models import Event, MessageId, Quarantine
from tactful.config import Settings
from tactful.consent.models import ConsentEventRow
from tactful.crypto import Keystore
from tactful.db import truncate_log_after_commit
from tactful.decide import log as decision_log
from tactful.decide.models import DecisionLog
from tactful.keys.models import ApiKey
from tactful.keys.schemas import Scope
from tactful.measure import outcomes as measure_outcomes
from tactful.measure.models import DecisionOutcome
from tactful.profiles import links as profile_links
from tactful.profiles.models import Computed, PendingLink, Trait
from tactful.rights import anonymise, exports, review_records
from tactful.rights.models import DecisionReview, PrivacyExport, PrivacyRequest, RecipientNotice

SWEPT = "retention.swept"
UNDECLARED = "undeclared"
"""The category named for rows no catalog atom declares (events of undeclared types)."""
BATCH = 1000

OnStep = Callable[[str, int, int], None]
"""(step name, steps done, steps in all): for a progress bar."""


@dataclass(frozen=True, slots=True)
class Expired:
    """What the sweep did (or would do) to one store's rows of one category."""

    store: str
    category: str
    action: Expiry
    count: int


@dataclass(frozen=True)
class SweepReport:
    at: datetime
    dry_run: bool
    rows: tuple[Expired, ...]

    def total(self, store: str | None = None, *, action: Expiry | None = None) -> int:
        """How many rows went (or would go): of one store, by one action, or in all."""
        return sum(
            r.count
            for r in self.rows
            if (store is None or r.store == store) and (action is None or r.action is action)
        )

    def details(self) -> dict[str, int]:
        """The counts as flat `store/category/action` keys, for the audit entry."""
        return {f"{r.store}/{r.category}/{r.action.value}": r.count for r in self.rows if r.count}


@dataclass(frozen=True)
class _Sweep:
    session: Session
    catalog: Catalog
    settings: Settings
    at: datetime
    dry_run: bool
    keystore: Keystore
    expiring: list[ColumnElement[bool]] = field(default_factory=list)
    """The events step's conditions: a dry run's later steps leave out the rows they name, which
    a real run has deleted or anonymised by then."""

    def count(self, query: Select[Any]) -> int:
        return int(self.session.scalar(select(func.count()).select_from(query.subquery())) or 0)

    def deleted(self, table: Any, where: ColumnElement[bool]) -> int:
        if self.dry_run:
            return self.count(select(table).where(where))
        result = self.session.execute(
            delete(table).where(where), execution_options={"synchronize_session": False}
        )
        return int(cast(CursorResult[Any], result).rowcount or 0)

    # -- events --------------------------------------------------------------------------------------

    def events(self) -> list[Expired]:
        stored = [a for a in self.catalog.atoms.values() if a.name.startswith("events.")]
        fallback = min((a.retention for a in stored), default=timedelta(0))
        kinds = self.session.execute(
            select(Event.type, Event.event).where(Event.subject_id != anonymise.ANONYMISED).distinct()
        ).all()
        found: dict[tuple[str, Expiry], int] = {}
        for kind, name in kinds:
            atom = self.catalog.event_atom({"type": kind, "event": name})
            where = self._expired_events(kind, name, atom, fallback)
            self.expiring.append(where)
            action = self.catalog.expiry_of_atom(atom) if atom is not None else Expiry.DELETE
            anonymised = action is Expiry.ANONYMISE
            count = self._anonymise(where, atom) if anonymised else self.deleted(Event, where)
            key = (atom.category if atom is not None else UNDECLARED, action)
            found[key] = found.get(key, 0) + count
        return [Expired("events", category, action, n) for (category, action), n in sorted(found.items())]

    def _expired_events(
        self, kind: str, name: str | None, atom: Atom | None, fallback: timedelta
    ) -> ColumnElement[bool]:
        cutoff = self.at - (atom.retention if atom is not None else fallback)
        expired = _of_kind(Event, kind, name) & (Event.timestamp < cutoff)
        if atom is None or atom.retention_anchor is Anchor.EACH:
            return expired
        # Anchored on the latest: a row goes unless the subject has a newer row of the same kind
        # within the period. Only rows sent with more than the public write key renew the others:
        # anyone can send an order for any user id from a web page, and a claim that keeps
        # someone's history longer widens what is done with their data (DESIGN §4, trust of keys).
        later = aliased(Event)
        public = select(ApiKey.id).where(ApiKey.scope == Scope.WRITE.value)
        renewing = select(later.id).where(
            _of_kind(later, kind, name),
            later.subject_id == Event.subject_id,
            later.timestamp >= cutoff,
            or_(later.write_key_id.is_(None), later.write_key_id.not_in(public)),
        )
        return expired & ~exists(renewing)

    def _anonymise(self, where: ColumnElement[bool], atom: Atom | None) -> int:
        if self.dry_run:
            return self.count(select(Event.id).where(where))
        properties = anonymise.kept_properties(atom)
        context = anonymise.kept_context(self.catalog)
        columns = (Event.id, Event.timestamp, Event.received_at, Event.properties, Event.context)
        done = 0
        for rows in self._batches(select(*columns).where(where)):
            changed = [anonymise.anonymised(row, properties=properties, context=context) for row in rows]
            self.session.execute(update(Event), changed)
            done += len(changed)
        return done

    def _batches(self, query: Select[Any]) -> Iterator[list[dict[str, Any]]]:
        """The rows of `query` a batch at a time, in id order (each batch starts past the last id
        seen, so rows a batch rewrites are never read again, whether they still match or not)."""
        last: object = None
        while True:
            page = query if last is None else query.where(Event.id > last)
            rows = [dict(r) for r in self.session.execute(page.order_by(Event.id).limit(BATCH)).mappings()]
            if not rows:
                return
            yield rows
            last = rows[-1]["id"]

    def event_fields(self) -> list[Expired]:
        """Context fields whose own retention ended, out of events kept longer."""
        found: dict[str, int] = {}
        for path, atom in self.catalog.stored_context:
            where = (
                (Event.subject_id != anonymise.ANONYMISED)
                & (Event.timestamp < self.at - atom.retention)
                & Event.context[path].as_string().is_not(None)
            )
            if self.dry_run and self.expiring:
                where = where & ~or_(*self.expiring)
            found[atom.category] = found.get(atom.category, 0) + self._clear(where, path)
        return [Expired("event fields", c, Expiry.DELETE, n) for c, n in sorted(found.items())]

    def _clear(self, where: ColumnElement[bool], path: tuple[str, ...]) -> int:
        if self.dry_run:
            return self.count(select(Event.id).where(where))
        done = 0
        for rows in self._batches(select(Event.id, Event.context).where(where)):
            changed = [{"id": row["id"], "context": _without(row["context"], path)} for row in rows]
            self.session.execute(update(Event), changed)
            done += len(changed)
        return done

    # -- profiles and the rest -----------------------------------------------------------------------

    def profiles(self) -> list[Expired]:
        found: list[Expired] = []
        for store, table in (("traits", Trait), ("computed", Computed)):
            where = table.expires_at <= self.at
            per_atom = self.session.execute(
                select(table.atom, func.count()).where(where).group_by(table.atom)
            )
            by_category: dict[str, int] = {}
            for atom, count in per_atom.all():
                declared = self.catalog.atoms.get(atom)
                category = declared.category if declared is not None else UNDECLARED
                by_category[category] = by_category.get(category, 0) + int(count)
            if not self.dry_run:
                self.deleted(table, where)
            found += [Expired(store, c, Expiry.DELETE, n) for c, n in sorted(by_category.items())]
        if self.dry_run:
            links = self.count(select(PendingLink).where(PendingLink.expires_at <= self.at))
        else:
            links = profile_links.expire(self.session, at=self.at)
        return [*found, Expired("pending links", "identity links", Expiry.DELETE, links)]

    def quarantine(self) -> list[Expired]:
        if self.dry_run:
            count = self.count(select(Quarantine.id).where(Quarantine.expires_at <= self.at))
        else:
            count = collect_service.purge_quarantine(self.session, at=self.at)
        return [Expired("quarantine", "quarantined messages", Expiry.DELETE, count)]

    def message_ids(self) -> list[Expired]:
        before = self.at - timedelta(days=self.settings.dedup_retention_days)
        if self.dry_run:
            count = self.count(select(MessageId.digest).where(MessageId.first_seen_at < before))
        else:
            count = collect_service.purge_message_ids(self.session, before=before)
        return [Expired("message ids", "message ids", Expiry.DELETE, count)]

    def decisions(self) -> list[Expired]:
        before = self.at - timedelta(days=self.settings.decision_log_retention_days)
        if self.dry_run:
            count = self.count(select(DecisionLog.decision_id).where(DecisionLog.decided_at < before))
        else:
            count = decision_log.expire(self.session, before=before)
        return [Expired("decisions", "decision log", Expiry.DELETE, count)]

    def reviews(self) -> list[Expired]:
        where = review_records.expired(self.at, days=self.settings.privacy.review_record_days)
        count = self.deleted(DecisionReview, where)
        return [Expired("decision reviews", "answered reviews", Expiry.DELETE, count)]

    def proof(self) -> list[Expired]:
        """What erasure keeps as proof, each for its own period: closed requests' records, and an
        erased person's pseudonymised consent records (counted from the erasure)."""
        privacy = self.settings.privacy
        closed = PrivacyRequest.closed_at < self.at - timedelta(days=privacy.request_record_days)
        erased = ConsentEventRow.erased_at < self.at - timedelta(days=privacy.consent_proof_days)
        # The tasks of telling recipients go with their request (they name it, and nothing else does).
        tasks = RecipientNotice.request_id.in_(select(PrivacyRequest.id).where(closed))
        return [
            Expired(
                "privacy requests", "recipient tasks", Expiry.DELETE, self.deleted(RecipientNotice, tasks)
            ),
            Expired(
                "privacy requests", "request records", Expiry.DELETE, self.deleted(PrivacyRequest, closed)
            ),
            Expired(
                "consent",
                "erased people's consent records",
                Expiry.DELETE,
                self.deleted(ConsentEventRow, erased),
            ),
        ]

    def exports(self) -> list[Expired]:
        if self.dry_run:
            count = self.count(select(PrivacyExport.id).where(PrivacyExport.expires_at <= self.at))
        else:
            count = exports.sweep(self.session, keystore=self.keystore, settings=self.settings, at=self.at)
        return [Expired("exports", "access and portability packages", Expiry.DELETE, count)]

    def outcomes(self) -> list[Expired]:
        before = self.at - timedelta(days=self.settings.decision_log_retention_days)
        if self.dry_run:
            linked = (DecisionOutcome.status == measure_outcomes.LINKED) & (
                DecisionOutcome.occurred_at < before
            )
            waited = (DecisionOutcome.status == measure_outcomes.PENDING) & (
                DecisionOutcome.received_at <= self.at - measure_outcomes.PENDING_FOR
            )
            count = self.count(select(DecisionOutcome.id).where(or_(linked, waited)))
        else:
            count = measure_outcomes.expire(self.session, at=self.at, before=before)
        return [Expired("outcomes", "decision outcomes", Expiry.DELETE, count)]


def _of_kind(table: type[Event], kind: str, name: str | None) -> ColumnElement[bool]:
    """Rows of one call type and event name that belong to a subject (not anonymised ones)."""
    named = table.event.is_(None) if name is None else table.event == name
    return (table.type == kind) & named & (table.subject_id != anonymise.ANONYMISED)


def _without(context: dict[str, Any] | None, path: tuple[str, ...]) -> dict[str, Any]:
    """A copy of `context` without the field at `path` (and without objects it leaves empty)."""
    copy = dict(context or {})
    head, *rest = path
    if not rest:
        copy.pop(head, None)
    elif isinstance(copy.get(head), dict):
        inner = _without(copy[head], tuple(rest))
        if inner:
            copy[head] = inner
        else:
            copy.pop(head)
    return copy


STEPS: tuple[tuple[str, Callable[[_Sweep], list[Expired]]], ...] = (
    ("events", _Sweep.events),
    ("event fields", _Sweep.event_fields),
    ("profiles", _Sweep.profiles),
    ("quarantine", _Sweep.quarantine),
    ("message ids", _Sweep.message_ids),
    ("decisions", _Sweep.decisions),
    ("outcomes", _Sweep.outcomes),
    ("exports", _Sweep.exports),
    ("reviews", _Sweep.reviews),
    ("proof", _Sweep.proof),
)
"""In order: whole events first, so that fields are not cleared from rows about to go."""


def run_retention(
    session: Session,
    *,
    catalog: Catalog,
    settings: Settings,
    at: datetime,
    keystore: Keystore,
    dry_run: bool = False,
    actor: str = "retention",
    on_step: OnStep | None = None,
) -> SweepReport:
    """Run every store's sweep at `at` in `session`'s transaction (or count what it would do, with
    `dry_run`); a real run appends the `retention.swept` audit entry, with the counts."""
    sweep = _Sweep(session, catalog, settings, at, dry_run, keystore)
    rows: list[Expired] = []
    for done, (name, step) in enumerate(STEPS, start=1):
        rows += step(sweep)
        if on_step is not None:
            on_step(name, done, len(STEPS))
    report = SweepReport(at=at, dry_run=dry_run, rows=tuple(rows))
    if not dry_run:
        truncate_log_after_commit(session)  # what went leaves no copy in SQLite's log
        details: dict[str, audit_service.Scalar] = {"total": report.total(), **report.details()}
        audit_service.append(session, keystore=keystore, action=SWEPT, actor=actor, at=at, details=details)
    return report
