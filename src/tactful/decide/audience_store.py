"""Where audience sketches are kept (`audience_size.SizeStore`): Redis when configured, else a table.

    RedisSizes   PFADD {prefix}audience-size:{sketch key}:{day} hashes…   (expires after the window)
                 PFCOUNT over the window's day keys (Redis merges them)
    TableSizes   audience_sketches (sketch key, day) ──▶ compressed registers, merged on each flush;
                 days past the window deleted as it goes

Neither holds a row, a key or a value per subject: only sketch registers over keyed hashes.
Failures count low, never high: a flush that fails is dropped; a count that fails reads as nothing,
so an audience in shadow stays there.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection
from datetime import date, timedelta

from redis import Redis, RedisError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from tactful.decide.audience_size import WINDOW_DAYS, Batch
from tactful.decide.models import AudienceSketch
from tactful.decide.sketch import Sketch

log = logging.getLogger(__name__)


def window(today: date) -> list[date]:
    """The days whose sketches make up today's count: the last `WINDOW_DAYS`, today included."""
    return [today - timedelta(days=back) for back in range(WINDOW_DAYS)]


class RedisSizes:
    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis, self._prefix = redis, prefix

    def _key(self, sketch_key: str, day: date) -> str:
        return f"{self._prefix}audience-size:{sketch_key}:{day.isoformat()}"

    def add(self, session: Session, batch: Batch) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for (sketch_key, day), digests in batch.items():
            key = self._key(sketch_key, day)
            pipe.pfadd(key, *digests)
            pipe.expire(key, timedelta(days=WINDOW_DAYS + 1))
        try:
            pipe.execute()
        except RedisError as exc:
            log.warning("audience matches not counted (%s)", type(exc).__name__)

    def count(self, session: Session, keys: Collection[str], *, today: date) -> dict[str, float]:
        ordered = sorted(keys)
        days = window(today)
        pipe = self._redis.pipeline(transaction=False)
        for sketch_key in ordered:
            pipe.pfcount(*(self._key(sketch_key, day) for day in days))
        try:
            counted = pipe.execute()
        except RedisError as exc:
            log.warning("audience sizes not read (%s)", type(exc).__name__)
            return {}
        return {key: float(n) for key, n in zip(ordered, counted, strict=True)}


class TableSizes:
    def add(self, session: Session, batch: Batch) -> None:
        # In a savepoint: a failure (a lock held too long) drops this batch, counted low, and leaves
        # the caller's transaction (the lineup's settle, a decision waiting on it) to go on.
        try:
            with session.begin_nested():
                for (sketch_key, day), digests in sorted(batch.items()):
                    self._merge(session, sketch_key, day, Sketch().update(digests))
                oldest = min(day for _, day in batch) - timedelta(days=WINDOW_DAYS)
                session.execute(delete(AudienceSketch).where(AudienceSketch.day < oldest))
        except SQLAlchemyError as exc:
            log.warning("audience sketches not stored (%s); those matches are dropped", type(exc).__name__)

    @staticmethod
    def _merge(session: Session, sketch_key: str, day: date, sketch: Sketch) -> None:
        row = session.get(AudienceSketch, (sketch_key, day), with_for_update=True)
        if row is None:
            try:
                with session.begin_nested():
                    session.add(AudienceSketch(sketch_key=sketch_key, day=day, registers=sketch.to_bytes()))
                return
            except IntegrityError:  # another process made it first: merge into theirs
                row = session.get(
                    AudienceSketch, (sketch_key, day), with_for_update=True, populate_existing=True
                )
                if row is None:
                    return
        row.registers = Sketch.from_bytes(row.registers).merge(sketch).to_bytes()

    def count(self, session: Session, keys: Collection[str], *, today: date) -> dict[str, float]:
        rows = session.execute(
            select(AudienceSketch.sketch_key, AudienceSketch.registers).where(
                AudienceSketch.sketch_key.in_(sorted(keys)),
                AudienceSketch.day > today - timedelta(days=WINDOW_DAYS),
                AudienceSketch.day <= today,
            )
        ).all()
        merged: dict[str, Sketch] = defaultdict(Sketch)
        for sketch_key, registers in rows:
            merged[sketch_key].merge(Sketch.from_bytes(registers))
        return {key: sketch.estimate() for key, sketch in merged.items()}
