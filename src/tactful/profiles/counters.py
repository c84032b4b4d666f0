"""Real-time behaviour within the current session: events per type and the last product categories.

These feed `1:some` decisions (DESIGN §2). A session ends after `window` without events (30 minutes
by default), and its counters go with it. One process keeps them in memory; several share Redis,
where every key of a subject lives under `<prefix>rt:<subject_id>:` and expires with the session.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from redis import Redis
from redis.typing import EncodableT, FieldT

from tactful.profiles.computed import read_signal

DEFAULT_WINDOW = timedelta(minutes=30)
RECENT_CATEGORIES = 10


@dataclass(frozen=True)
class SessionCounters:
    events: Mapping[str, int] = field(default_factory=dict)
    recent_categories: tuple[str, ...] = ()
    """Newest first."""
    started_at: datetime | None = None
    last_at: datetime | None = None

    @property
    def empty(self) -> bool:
        return self.last_at is None

    def as_dict(self) -> dict[str, object]:
        if self.empty:
            return {}
        return {
            "events": dict(self.events),
            "recent_categories": list(self.recent_categories),
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "last_at": None if self.last_at is None else self.last_at.isoformat(),
        }


class RealtimeCounters(Protocol):
    """The in-session counters of every subject."""

    def increment(
        self, subject_id: uuid.UUID, *, event: str, categories: Sequence[str] = (), at: datetime
    ) -> None: ...

    def snapshot(self, subject_id: uuid.UUID, *, at: datetime) -> SessionCounters: ...

    def merge(self, *, source: uuid.UUID, target: uuid.UUID, at: datetime) -> None: ...

    def export(self, subject_id: uuid.UUID) -> dict[str, object]: ...

    def erase(self, subject_id: uuid.UUID) -> int: ...


def observe(
    counters: RealtimeCounters, subject_id: uuid.UUID, message: Mapping[str, object], at: datetime
) -> None:
    """Count one stored Segment message (the same reading as the computed atoms)."""
    signal = read_signal(message, at)
    if signal.key is not None:
        counters.increment(subject_id, event=signal.key, categories=signal.categories, at=at)


def combine(
    newer: SessionCounters, older: SessionCounters, *, limit: int = RECENT_CATEGORIES
) -> SessionCounters:
    """Two sessions of one person as one (a merge): counts add, recent categories newest first."""
    if older.empty:
        return newer
    if newer.empty:
        return older
    events = dict(newer.events)
    for name, count in older.events.items():
        events[name] = events.get(name, 0) + count
    starts = [s for s in (newer.started_at, older.started_at) if s is not None]
    lasts = [s for s in (newer.last_at, older.last_at) if s is not None]
    return SessionCounters(
        events=events,
        recent_categories=(newer.recent_categories + older.recent_categories)[:limit],
        started_at=min(starts) if starts else None,
        last_at=max(lasts) if lasts else None,
    )


def _live(counters: SessionCounters, at: datetime, window: timedelta) -> SessionCounters:
    if counters.last_at is None or at - counters.last_at > window:
        return SessionCounters()
    return counters


class InProcessCounters:
    """Counters in this process's memory: for single-process mode only (DESIGN §5)."""

    _SWEEP_EVERY = 1024

    def __init__(self, *, window: timedelta = DEFAULT_WINDOW, recent: int = RECENT_CATEGORIES) -> None:
        self.window, self.recent = window, recent
        self._sessions: dict[uuid.UUID, SessionCounters] = {}
        self._lock = threading.Lock()
        self._writes = 0

    def increment(
        self, subject_id: uuid.UUID, *, event: str, categories: Sequence[str] = (), at: datetime
    ) -> None:
        with self._lock:
            current = _live(self._sessions.get(subject_id, SessionCounters()), at, self.window)
            events = dict(current.events)
            events[event] = events.get(event, 0) + 1
            self._sessions[subject_id] = SessionCounters(
                events=events,
                recent_categories=(tuple(reversed(categories)) + current.recent_categories)[: self.recent],
                started_at=current.started_at or at,
                last_at=at if current.last_at is None else max(current.last_at, at),
            )
            self._writes += 1
            if self._writes % self._SWEEP_EVERY == 0:
                self._sweep(at)

    def _sweep(self, at: datetime) -> None:
        for subject_id in [s for s, c in self._sessions.items() if _live(c, at, self.window).empty]:
            del self._sessions[subject_id]

    def snapshot(self, subject_id: uuid.UUID, *, at: datetime) -> SessionCounters:
        with self._lock:
            return _live(self._sessions.get(subject_id, SessionCounters()), at, self.window)

    def merge(self, *, source: uuid.UUID, target: uuid.UUID, at: datetime) -> None:
        with self._lock:
            older = _live(self._sessions.pop(source, SessionCounters()), at, self.window)
            newer = _live(self._sessions.get(target, SessionCounters()), at, self.window)
            merged = combine(newer, older, limit=self.recent)
            if not merged.empty:
                self._sessions[target] = merged

    def export(self, subject_id: uuid.UUID) -> dict[str, object]:
        with self._lock:
            return self._sessions.get(subject_id, SessionCounters()).as_dict()

    def erase(self, subject_id: uuid.UUID) -> int:
        with self._lock:
            return 0 if self._sessions.pop(subject_id, None) is None else 1


# One round trip, atomic: start a new session when the last one went quiet, count, push, re-arm TTLs.
_INCREMENT = """
local now = tonumber(ARGV[1])
local last = tonumber(redis.call('HGET', KEYS[3], 'last') or '0')
if last > 0 and now - last > tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  last = 0
end
if last == 0 then redis.call('HSET', KEYS[3], 'started', ARGV[1]) end
if now > last then redis.call('HSET', KEYS[3], 'last', ARGV[1]) end
redis.call('HINCRBY', KEYS[1], ARGV[4], 1)
for i = 5, #ARGV do redis.call('LPUSH', KEYS[2], ARGV[i]) end
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
"""


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _moment(raw: object) -> datetime | None:
    if raw is None:
        return None
    return datetime.fromtimestamp(int(_text(raw)) / 1000, UTC)


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class RedisCounters:
    """Counters in Redis, shared by every process; keys expire with the session."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        window: timedelta = DEFAULT_WINDOW,
        recent: int = RECENT_CATEGORIES,
    ) -> None:
        self.redis, self.prefix, self.window, self.recent = redis, prefix, window, recent
        self._increment = redis.register_script(_INCREMENT)

    def keys(self, subject_id: uuid.UUID) -> tuple[str, str, str]:
        base = f"{self.prefix}rt:{subject_id}:"
        return base + "events", base + "categories", base + "meta"

    def increment(
        self, subject_id: uuid.UUID, *, event: str, categories: Sequence[str] = (), at: datetime
    ) -> None:
        window_ms = int(self.window.total_seconds() * 1000)
        self._increment(
            keys=list(self.keys(subject_id)), args=[_ms(at), window_ms, self.recent, event, *categories]
        )

    def _read(self, subject_id: uuid.UUID) -> SessionCounters:
        events_key, categories_key, meta_key = self.keys(subject_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(events_key)
            pipe.lrange(categories_key, 0, self.recent - 1)
            pipe.hgetall(meta_key)
            events, categories, meta = pipe.execute()
        meta = {_text(k): v for k, v in meta.items()}
        if "last" not in meta:
            return SessionCounters()
        return SessionCounters(
            events={_text(k): int(_text(v)) for k, v in events.items()},
            recent_categories=tuple(_text(c) for c in categories),
            started_at=_moment(meta.get("started")),
            last_at=_moment(meta["last"]),
        )

    def snapshot(self, subject_id: uuid.UUID, *, at: datetime) -> SessionCounters:
        return _live(self._read(subject_id), at, self.window)

    def merge(self, *, source: uuid.UUID, target: uuid.UUID, at: datetime) -> None:
        older = self.snapshot(source, at=at)
        merged = combine(self.snapshot(target, at=at), older, limit=self.recent)
        events_key, categories_key, meta_key = self.keys(target)
        ttl = int(self.window.total_seconds() * 1000)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(*self.keys(source))
            if not older.empty and merged.last_at is not None:
                pipe.delete(events_key, categories_key, meta_key)
                counts: dict[FieldT, EncodableT] = dict(merged.events.items())
                pipe.hset(events_key, mapping=counts)
                if merged.recent_categories:
                    pipe.rpush(categories_key, *merged.recent_categories)
                started = merged.started_at or merged.last_at
                pipe.hset(meta_key, mapping={"started": _ms(started), "last": _ms(merged.last_at)})
                for key in (events_key, categories_key, meta_key):
                    pipe.pexpire(key, ttl)
            pipe.execute()

    def export(self, subject_id: uuid.UUID) -> dict[str, object]:
        return self._read(subject_id).as_dict()

    def erase(self, subject_id: uuid.UUID) -> int:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(*self.keys(subject_id))
            (removed,) = pipe.execute()
        return int(removed)


def make_counters(
    *, redis: Redis | None, prefix: str, window: timedelta = DEFAULT_WINDOW
) -> InProcessCounters | RedisCounters:
    """Redis when the deployment has it (several processes), else this process's memory."""
    if redis is None:
        return InProcessCounters(window=window)
    return RedisCounters(redis, prefix=prefix, window=window)
