"""Audience size from stored profile atoms (DESIGN §3, invariant 7): every audience held to k whose
condition reads only stored atoms is evaluated over every stored subject, and each subject it
matches is counted into the same sketches that decisions count into (`audience_size`).

    audiences ──plan (catalog in force)──▶ counted here: held to k, every atom a trait or computed
                                           left to decisions: reads the request, events or session
                                           nothing to count: not held to k, or no longer compiles
    surviving subjects, `batch` at a time (profiles.subjects, in id order)
        ──consent.gatekeeper.stored_allowances (the one seam; only the atoms the plan reads)──▶
          per subject, per audience: is every atom it reads permitted from the store?
            no ──▶ not counted (a withheld atom is never a match, whatever `$ne` or `$exists` say)
            yes ──condition over the SubjectView──▶ match ──▶ keyed hash of the subject id
        ──▶ SizeStore.add: today's sketch of each audience (one call per batch)

Run when an audience is created or changed (up to a number of subjects inline, in the request of the
management API; the scheduled pass reads the rest), once a day by the server's schedule
(`rights.schedule`), and by `tactful audiences count`.

**Why only stored atoms.** A request-context atom (`context.location.country`, the device) has no
value outside a request: it is this visit's country and device, read for this request and never
stored with the profile. An audience that reads one cannot be evaluated here, even when it also
reads stored atoms: evaluating its stored part alone would count everyone whose profile matches as if
each of their visits matched the rest (counting people it may never match: high, the unsafe side),
and taking the request part as unmet would count nobody. Such an audience is counted from decisions
alone, where the whole condition meets a real request (in shadow until it has matched k people), as
are audiences over events or the session, which the stored profile does not hold either. An audience
that reads stored atoms only is counted here as well as by decisions, and reaches k from this
estimate alone: the lineup serves it at the next settle.

**Who counts.** Only a subject whose Allowance permits, from the store, every atom the condition
reads: the person's consent and situation as the gate says now (consent, objection, restriction,
age, regime). Each is hashed as decisions hash it (`AudienceSizes.digest`, the subject id), so a
person found both here and by a decision counts once. No row per subject is written: a match is a
keyed hash folded into a sketch. A match stays in the day's sketch for the 30-day window as a
decision's does: the count is of the distinct people matched in the last 30 days, and a person who
withdraws or is erased is no longer matched from the next pass on.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tactful.catalog.model import Catalog, Source
from tactful.consent.gatekeeper import PolicyContext, SubjectAllowance, stored_allowances
from tactful.crypto import Keystore
from tactful.decide import conditions
from tactful.decide.audience_size import AudienceSizes
from tactful.decide.conditions import Match
from tactful.decide.levels import held_to_k, reach
from tactful.decide.models import Audience, DecideVersion
from tactful.decide.schemas import Kind
from tactful.decide.sketch import sketch_key
from tactful.profiles import subjects as profiles_subjects

log = logging.getLogger(__name__)

STORED = frozenset({Source.TRAIT, Source.COMPUTED})
"""Where the atoms of a stored profile come from."""
BATCH = 500

OnBatch = Callable[[int, int], None]
"""Told after each batch: subjects read so far, and how many there are to read."""
Sessions = Callable[[], AbstractContextManager[Session]]
"""Opens a unit of work (`Database.session`)."""


class Left(StrEnum):
    """Why an audience is not counted from stored profiles."""

    NOT_HELD_TO_K = "not_held_to_k"
    """Its level is not `1:many` (it reads nothing about anyone, or something that needs the
    person's consent to a higher level): it serves whatever its size."""
    READS_MORE_THAN_STORED = "reads_more_than_stored"
    """It reads the request, events or the session: counted from decisions only."""
    DOES_NOT_COMPILE = "does_not_compile"
    """Its condition no longer compiles (new caps): it serves nobody."""


@dataclass(frozen=True)
class Planned:
    """An audience counted here: its key, its sketch key and its condition."""

    key: str
    sketch: str
    condition: conditions.Compiled


def plan(
    catalog: Catalog, audiences: Mapping[str, Mapping[str, Any]]
) -> tuple[list[Planned], dict[str, Left]]:
    """Which of `audiences` (conditions by key) are counted from stored profiles, and why the others
    are not."""
    counted: list[Planned] = []
    left: dict[str, Left] = {}
    for key, condition in sorted(audiences.items()):
        made = conditions.compile(condition)
        if isinstance(made, conditions.Problems):
            left[key] = Left.DOES_NOT_COMPILE
        elif not held_to_k(reach(catalog, made.atoms).level):
            left[key] = Left.NOT_HELD_TO_K
        elif any(a not in catalog.atoms or catalog.atoms[a].source not in STORED for a in made.atoms):
            left[key] = Left.READS_MORE_THAN_STORED
        else:
            counted.append(Planned(key, sketch_key(key, condition), made))
    return counted, left


@dataclass(frozen=True)
class Counted:
    """What one pass did: subjects read, the audiences counted and how many matched each (exact,
    for this pass), and those left to decisions, with why."""

    at: datetime
    subjects: int
    complete: bool
    """Every surviving subject was read (the pass was not cut short by its `limit`)."""
    matched: Mapping[str, int] = field(default_factory=dict)
    left: Mapping[str, Left] = field(default_factory=dict)


class Recount(Protocol):
    """Estimate these audiences' sizes from stored profiles now, within a bound, each batch in a unit
    of work of its own (the management API calls it once an audience it created, or whose condition
    it changed, is committed; the scheduled pass reads the rest). None when a busy database stopped
    it: what its batches stored stays counted, and the scheduled pass counts the rest."""

    def __call__(self, audiences: Mapping[str, Mapping[str, Any]]) -> Counted | None: ...


def _matches(found: SubjectAllowance, planned: list[Planned]) -> list[Planned]:
    allowance = found.allowance
    readable = allowance.decide_atoms - allowance.request_only
    view = None
    matched = []
    for audience in planned:
        if not audience.condition.atoms <= readable:
            continue  # a withheld atom: not counted, whatever the condition would say of its absence
        if view is None:
            view = found.view()
        if audience.condition.evaluate(view).match is Match.MATCH:
            matched.append(audience)
    return matched


class StoredCount:
    """Counts audiences from stored profiles into `sizes`'s store. `policy` gives the gate's inputs
    in force (the catalog may change while the process runs)."""

    def __init__(
        self,
        *,
        keystore: Keystore,
        policy: Callable[[], PolicyContext],
        sizes: AudienceSizes,
        batch: int = BATCH,
    ) -> None:
        self.keystore, self.policy, self.sizes, self.batch = keystore, policy, sizes, max(1, batch)

    def bounded(self, sessions: Sessions, *, limit: int, at: datetime) -> Recount:
        """A `Recount` that reads at most `limit` subjects, at `at`, each batch in a unit of work
        that `sessions` opens: no lock is held across the count."""

        def recount(audiences: Mapping[str, Mapping[str, Any]]) -> Counted | None:
            try:
                return self.run_apart(sessions, audiences, at=at, limit=limit)
            except OperationalError:
                # The audience is committed already: its count is an estimate made early, not a
                # condition of the change, so a lock held too long leaves it to the schedule.
                log.warning(
                    "an audience count stopped on a busy database; the scheduled pass counts the rest"
                )
                return None

        return recount

    def run_apart(
        self,
        sessions: Sessions,
        audiences: Mapping[str, Mapping[str, Any]],
        *,
        at: datetime,
        limit: int | None = None,
        on_batch: OnBatch | None = None,
    ) -> Counted:
        """Count `audiences` (conditions by key) over the stored profiles at `at`: every surviving
        subject, or the first `limit` of them, each batch in a unit of work of its own (`sessions`
        opens one, committed as it ends): a pass over a large store holds no lock for long, and what
        it counted stays counted should it stop half way."""
        context = self.policy()
        planned, left = plan(context.catalog, audiences)
        if not planned or limit == 0:
            return Counted(at, 0, not planned, {p.key: 0 for p in planned}, left)
        total = 0
        if on_batch is not None:
            with sessions() as session:
                total = profiles_subjects.count_survivors(session)
        names = frozenset().union(*(p.condition.atoms for p in planned))
        matched: Counter[str] = Counter({p.key: 0 for p in planned})
        read, after, complete = 0, None, False
        while limit is None or read < limit:
            size = self.batch if limit is None else min(self.batch, limit - read)
            with sessions() as session:
                page = profiles_subjects.survivors(session, after=after, limit=size)
                if page:
                    matched.update(self._batch(session, context, page, planned, names, at))
            read, after = read + len(page), (page[-1] if page else after)
            if on_batch is not None:
                on_batch(read, max(total, read))
            if len(page) < size:
                complete = True
                break
        return Counted(at, read, complete, dict(matched), left)

    def _batch(
        self,
        session: Session,
        context: PolicyContext,
        page: list[uuid.UUID],
        planned: list[Planned],
        names: Collection[str],
        at: datetime,
    ) -> Counter[str]:
        found = stored_allowances(
            session, keystore=self.keystore, context=context, subject_ids=page, at=at, names=names
        )
        day: date = at.date()
        digests: dict[tuple[str, date], set[bytes]] = defaultdict(set)
        counted: Counter[str] = Counter()
        for subject in page:
            for audience in _matches(found[subject], planned):
                digests[(audience.sketch, day)].add(self.sizes.digest(subject))
                counted[audience.key] += 1
        if digests:
            self.sizes.store.add(session, digests)
        return counted


def audiences(session: Session, *, changed_since: datetime | None = None) -> dict[str, Mapping[str, Any]]:
    """Every audience's condition by key; with `changed_since`, only those given a version since."""
    statement = select(Audience.key, Audience.condition)
    if changed_since is not None:
        changed = select(DecideVersion.key).where(
            DecideVersion.kind == Kind.AUDIENCE.value, DecideVersion.at >= changed_since
        )
        statement = statement.where(Audience.key.in_(changed))
    return {row.key: row.condition for row in session.execute(statement)}
