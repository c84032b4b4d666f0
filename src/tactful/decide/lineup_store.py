"""Where the lineup comes from: read from the model's tables, and held by each process until
something changes.

    placements, experiences (published snapshots), audiences ──load──▶ lineup.build ──▶ Lineup
    LineupHolder.current(): reloaded when the model's mark (number and time of its versions) or the
    catalog changed; the mark is read at most once per `interval`, and at once after a change here;
    at the same times the audience matches counted since are stored (`audience_size`) and
        the audiences in shadow are counted: those that reached k subjects serve
        once a day (UTC), and after a reload, every audience held to k is counted: one that fell
        below k in the last 30 days goes back to shadow
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from tactful.catalog.model import Catalog
from tactful.decide.audience_size import AudienceSizes
from tactful.decide.lineup import Lineup, Mark, Published, build, with_shadow
from tactful.decide.models import Audience, DecideVersion
from tactful.decide.models import Experience as ExperienceRow
from tactful.decide.models import Placement as PlacementRow
from tactful.decide.walk import Channel, Placement, Variation
from tactful.types import utcnow


def mark(session: Session) -> Mark:
    count, latest = session.execute(select(func.count(), func.max(DecideVersion.at))).one()
    return int(count), None if latest is None else str(latest)


def load(session: Session, *, catalog: Catalog, catalog_version: str) -> Lineup:
    """Read and build what serves now."""
    seen = mark(session)
    audiences = {row.key: row.condition for row in session.scalars(select(Audience))}
    published = session.execute(
        select(ExperienceRow, DecideVersion.snapshot).join(
            DecideVersion,
            and_(
                DecideVersion.kind == "experience",
                DecideVersion.key == ExperienceRow.key,
                DecideVersion.version == ExperienceRow.published_version,
            ),
        )
    ).all()
    experiences = [
        Published(row.key, row.created_at, int(row.published_version or 0), snapshot)
        for row, snapshot in published
    ]
    placements = {
        row.key: Placement(
            row.key,
            Channel(row.channel),
            Variation("default", row.default_content, 1.0, dict(row.default_templates or {})),
        )
        for row in session.scalars(select(PlacementRow))
    }
    return build(
        placements,
        experiences,
        audiences,
        catalog=catalog,
        catalog_version=catalog_version,
        mark=seen,
    )


def _today() -> date:
    return utcnow().date()


class LineupHolder:
    """One process's lineup, built again when the model or the catalog changed. `session` opens a
    unit of work; `clock` is monotonic seconds, `today` the UTC date. Without `sizes`, audiences
    held to k never serve."""

    def __init__(
        self,
        *,
        session: Callable[[], Any],
        clock: Callable[[], float],
        interval: float = 1.0,
        sizes: AudienceSizes | None = None,
        today: Callable[[], date] = _today,
        reading: Callable[[], Any] | None = None,
    ) -> None:
        self._session, self._clock, self._interval = session, clock, interval
        self._reading = reading or session
        self.sizes = sizes
        self._today = today
        self._lineup: Lineup | None = None
        self._next = 0.0
        self._checked: date | None = None
        """The day every audience held to k was last counted (serving ones included)."""
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Something changed in this process: read the mark on the next call."""
        self._next = 0.0

    def current(self, *, catalog: Catalog, catalog_version: str) -> Lineup:
        with self._lock:
            lineup, now = self._lineup, self._clock()
            if lineup is not None and lineup.catalog_version == catalog_version and now < self._next:
                return lineup
            if self.sizes is not None and self.sizes.waiting:
                # A write only when matches wait to be stored: the rest of a refresh reads, so that
                # the decision that happens to refresh the lineup waits for no writer.
                with self._session() as session:
                    self.sizes.flush(session)
            with self._reading() as session:
                if (
                    lineup is None
                    or lineup.catalog_version != catalog_version
                    or mark(session) != lineup.mark
                ):
                    lineup = load(session, catalog=catalog, catalog_version=catalog_version)
                if self.sizes is not None:
                    lineup = self._settle(session, lineup)
            self._lineup, self._next = lineup, now + self._interval
            return lineup

    def _settle(self, session: Session, lineup: Lineup) -> Lineup:
        """Serve the shadow audiences now at k (the matches counted since the last time were stored
        just before); once a day (and after a reload) count the serving ones too, and send those
        below k to shadow."""
        assert self.sizes is not None
        today, held = self._today(), frozenset(lineup.sketches.values())
        every = self._checked != today or lineup.shadow == held
        counting = held if every else lineup.shadow
        if not counting:
            self._checked = today
            return lineup
        counted = self.sizes.counts(session, counting, today=today)
        below = frozenset(key for key in counting if counted.get(key, 0.0) < self.sizes.k)
        if every:
            self._checked = today
        return with_shadow(lineup, below)
