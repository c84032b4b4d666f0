"""Real-time behaviour within the current session: counters per event and per declared property value.

These feed the `1:some` session atoms (`catalog.session`, DESIGN §2). Collection records what each
request stored for `personalization.behavioral` after its commit (`record`: one call per subject and
request); a decision takes one `snapshot` when a condition first reads a session atom
(`profiles.session`). A session ends after `window` without an event (30 minutes by default), and its
counters go with it. One process keeps them in memory; several share Redis, where every key of a
subject lives under `<prefix>rt:<subject_id>:` and expires with the session.

Counters carry the version of the subject's consent refusals they were counted under (the seam's
`GateInputs.version`): a refusal, withdrawal, objection or erasure changes it, so that counts made
under the earlier state are dropped, on every process, the moment the new state is read, even if
a request that read the old state records after the withdrawal hook purged them.

    fields of `counts`:  "<event atom>"                          events this session
                         "<event atom>␟<property>␟<value JSON>"   events per value of a property
    fields of `lasts`:   "<event atom>"                          when the latest arrived (ms)
                         "<event atom>␟<property>"               its value (JSON)
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from redis import Redis
from redis.typing import EncodableT, FieldT

from tactful.catalog.model import SESSION_TIMEOUT

DEFAULT_WINDOW = SESSION_TIMEOUT
SEP = "\x1f"
MAX_FIELDS = 256
"""Distinct counts one session keeps: values are chosen by clients, so a session must not grow
without bound. Past the cap new values are not counted; events and known values still are."""
MAX_VALUE_CHARS = 100
"""Longer property values are not counted (a category is short; a long value is something else)."""


@dataclass(frozen=True, slots=True)
class Observation:
    """One stored event as the counters take it: its event atom and the values of the properties
    session atoms count by, each as JSON text (`"outdoor"`, `42`)."""

    event: str
    values: tuple[tuple[str, str], ...] = ()


def value_text(value: object) -> str | None:
    """A property value as the counters keep it (JSON text), or None when it is not counted: only
    short strings, whole numbers and booleans are values to count."""
    if isinstance(value, str):
        text = value.strip()
        return json.dumps(text, ensure_ascii=False) if 0 < len(text) <= MAX_VALUE_CHARS else None
    if isinstance(value, bool | int):
        return json.dumps(value)
    return None


@dataclass(frozen=True)
class SessionCounters:
    counts: Mapping[str, int] = field(default_factory=dict)
    lasts: Mapping[str, str] = field(default_factory=dict)
    version: str | None = None
    started_at: datetime | None = None
    last_at: datetime | None = None

    @property
    def empty(self) -> bool:
        return self.last_at is None

    def as_dict(self) -> dict[str, object]:
        """For an export: every count and last value, decoded; nothing when there is no session."""
        if self.empty:
            return {}
        counts: list[dict[str, object]] = []
        for name, count in sorted(self.counts.items()):
            event, _, rest = name.partition(SEP)
            prop, _, value = rest.partition(SEP)
            item: dict[str, object] = {"event": event, "count": count}
            if prop:
                item |= {"property": prop, "value": json.loads(value)}
            counts.append(item)
        last: list[dict[str, object]] = []
        for name, raw in sorted(self.lasts.items()):
            event, _, prop = name.partition(SEP)
            if prop:
                last.append({"event": event, "property": prop, "value": json.loads(raw)})
            else:
                last.append({"event": event, "at": _moment(raw).isoformat()})
        return {
            "counts": counts,
            "last": last,
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "last_at": None if self.last_at is None else self.last_at.isoformat(),
        }


class RealtimeCounters(Protocol):
    """The in-session counters of every subject."""

    def record(
        self, subject_id: uuid.UUID, observations: Sequence[Observation], *, at: datetime, version: str
    ) -> None:
        """Count `observations`, received at `at` under the refusals' `version`."""

    def snapshot(self, subject_id: uuid.UUID, *, at: datetime, version: str | None = None) -> SessionCounters:
        """The session at `at` (empty when it ended, or, given `version`, when counted under another)."""

    def merge(self, *, source: uuid.UUID, target: uuid.UUID, at: datetime) -> None:
        """Two profiles became one: `source`'s session joins `target`'s, and `source` keeps none."""

    def export(self, subject_id: uuid.UUID) -> dict[str, object]: ...

    def erase(self, subject_id: uuid.UUID) -> int: ...


def tally(observations: Sequence[Observation]) -> tuple[dict[str, int], dict[str, str]]:
    """What `observations` add: counts by field, and the last value of each property (latest wins)."""
    counts: dict[str, int] = {}
    lasts: dict[str, str] = {}
    for seen in observations:
        counts[seen.event] = counts.get(seen.event, 0) + 1
        for prop, value in seen.values:
            name = f"{seen.event}{SEP}{prop}{SEP}{value}"
            counts[name] = counts.get(name, 0) + 1
            lasts[f"{seen.event}{SEP}{prop}"] = value
    return counts, lasts


def _add(counts: dict[str, int], more: Mapping[str, int]) -> None:
    # Event totals first and always; a new value only while the session is under the cap.
    for name, n in sorted(more.items(), key=lambda item: SEP in item[0]):
        if name in counts or SEP not in name or len(counts) < MAX_FIELDS:
            counts[name] = counts.get(name, 0) + n


def combine(newer: SessionCounters, older: SessionCounters) -> SessionCounters:
    """Two sessions of one person as one (a merge): counts add, the newer session's last values win."""
    if older.empty:
        return newer
    if newer.empty:
        return older
    if (older.last_at or _EPOCH) > (newer.last_at or _EPOCH):
        newer, older = older, newer
    counts = dict(older.counts)
    _add(counts, newer.counts)
    starts = [s for s in (newer.started_at, older.started_at) if s is not None]
    return SessionCounters(
        counts=counts,
        lasts={**older.lasts, **newer.lasts},
        version=newer.version,
        started_at=min(starts) if starts else None,
        last_at=newer.last_at,
    )


_EPOCH = datetime.min.replace(tzinfo=UTC)


def live(counters: SessionCounters, at: datetime, window: timedelta, version: str | None) -> SessionCounters:
    """`counters` if their session is still going at `at` under `version` (None: any), else empty."""
    if counters.last_at is None or at - counters.last_at > window:
        return SessionCounters()
    if version is not None and counters.version != version:
        return SessionCounters()
    return counters


class InProcessCounters:
    """Counters in this process's memory: for single-process mode only (DESIGN §5)."""

    _SWEEP_EVERY = 1024

    def __init__(self, *, window: timedelta = DEFAULT_WINDOW) -> None:
        self.window = window
        self._sessions: dict[uuid.UUID, SessionCounters] = {}
        self._lock = threading.Lock()
        self._writes = 0

    def record(
        self, subject_id: uuid.UUID, observations: Sequence[Observation], *, at: datetime, version: str
    ) -> None:
        if not observations:
            return
        more, lasts = tally(observations)
        with self._lock:
            current = live(self._sessions.get(subject_id, SessionCounters()), at, self.window, version)
            counts = dict(current.counts)
            _add(counts, more)
            stamp = str(_ms(at))
            self._sessions[subject_id] = SessionCounters(
                counts=counts,
                lasts={**current.lasts, **lasts, **{seen.event: stamp for seen in observations}},
                version=version,
                started_at=current.started_at or at,
                last_at=at if current.last_at is None else max(current.last_at, at),
            )
            self._writes += 1
            if self._writes % self._SWEEP_EVERY == 0:
                self._sweep(at)

    def _sweep(self, at: datetime) -> None:
        for subject_id in [s for s, c in self._sessions.items() if live(c, at, self.window, None).empty]:
            del self._sessions[subject_id]

    def snapshot(self, subject_id: uuid.UUID, *, at: datetime, version: str | None = None) -> SessionCounters:
        with self._lock:
            return live(self._sessions.get(subject_id, SessionCounters()), at, self.window, version)

    def merge(self, *, source: uuid.UUID, target: uuid.UUID, at: datetime) -> None:
        if source == target:
            return
        with self._lock:
            older = live(self._sessions.pop(source, SessionCounters()), at, self.window, None)
            newer = live(self._sessions.get(target, SessionCounters()), at, self.window, None)
            merged = combine(newer, older)
            if not merged.empty:
                self._sessions[target] = merged

    def export(self, subject_id: uuid.UUID) -> dict[str, object]:
        with self._lock:
            return self._sessions.get(subject_id, SessionCounters()).as_dict()

    def erase(self, subject_id: uuid.UUID) -> int:
        with self._lock:
            return 0 if self._sessions.pop(subject_id, None) is None else 1


# One round trip, atomic: start a new session when the last one went quiet or was counted under
# another version, add the counts (new value fields only under the cap), set the last values,
# re-arm the TTLs. ARGV: now, window, version, cap, number of count fields, then field/count pairs,
# then last-value field/value pairs.
_RECORD = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local meta = redis.call('HMGET', KEYS[3], 'last', 'version')
local last = tonumber(meta[1] or '0')
if last > 0 and (now - last > window or meta[2] ~= ARGV[3]) then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  last = 0
end
if last == 0 then redis.call('HSET', KEYS[3], 'started', ARGV[1], 'version', ARGV[3]) end
if now > last then redis.call('HSET', KEYS[3], 'last', ARGV[1]) end
local cap = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local size = redis.call('HLEN', KEYS[1])
for i = 0, n - 1 do
  local name = ARGV[6 + 2 * i]
  local by = tonumber(ARGV[7 + 2 * i])
  local known = redis.call('HEXISTS', KEYS[1], name) == 1
  if known or size < cap or not string.find(name, '\\31', 1, true) then
    redis.call('HINCRBY', KEYS[1], name, by)
    if not known then size = size + 1 end
  end
end
for i = 6 + 2 * n, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], window) end
return 1
"""


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _moment(raw: object) -> datetime:
    return datetime.fromtimestamp(int(_text(raw)) / 1000, UTC)


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class RedisCounters:
    """Counters in Redis, shared by every process; keys expire with the session."""

    def __init__(self, redis: Redis, *, prefix: str, window: timedelta = DEFAULT_WINDOW) -> None:
        self.redis, self.prefix, self.window = redis, prefix, window
        self._record = redis.register_script(_RECORD)

    def keys(self, subject_id: uuid.UUID) -> tuple[str, str, str]:
        base = f"{self.prefix}rt:{subject_id}:"
        return base + "counts", base + "lasts", base + "meta"

    def record(
        self, subject_id: uuid.UUID, observations: Sequence[Observation], *, at: datetime, version: str
    ) -> None:
        if not observations:
            return
        counts, lasts = tally(observations)
        stamp = str(_ms(at))
        lasts |= {seen.event: stamp for seen in observations}
        window_ms = int(self.window.total_seconds() * 1000)
        args: list[EncodableT] = [_ms(at), window_ms, version, MAX_FIELDS, len(counts)]
        for name, n in sorted(counts.items(), key=lambda item: SEP in item[0]):
            args += [name, n]
        for name, value in lasts.items():
            args += [name, value]
        self._record(keys=list(self.keys(subject_id)), args=args)

    def _read(self, subject_id: uuid.UUID) -> SessionCounters:
        counts_key, lasts_key, meta_key = self.keys(subject_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(counts_key)
            pipe.hgetall(lasts_key)
            pipe.hgetall(meta_key)
            counts, lasts, meta = pipe.execute()
        meta = {_text(k): _text(v) for k, v in meta.items()}
        if "last" not in meta:
            return SessionCounters()
        return SessionCounters(
            counts={_text(k): int(_text(v)) for k, v in counts.items()},
            lasts={_text(k): _text(v) for k, v in lasts.items()},
            version=meta.get("version"),
            started_at=_moment(meta["started"]) if "started" in meta else None,
            last_at=_moment(meta["last"]),
        )

    def snapshot(self, subject_id: uuid.UUID, *, at: datetime, version: str | None = None) -> SessionCounters:
        return live(self._read(subject_id), at, self.window, version)

    def merge(self, *, source: uuid.UUID, target: uuid.UUID, at: datetime) -> None:
        if source == target:
            return
        older = self.snapshot(source, at=at)
        merged = combine(self.snapshot(target, at=at), older)
        counts_key, lasts_key, meta_key = self.keys(target)
        ttl = int(self.window.total_seconds() * 1000)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(*self.keys(source))
            if not older.empty and merged.last_at is not None:
                pipe.delete(counts_key, lasts_key, meta_key)
                counts: dict[FieldT, EncodableT] = dict(merged.counts.items())
                if counts:
                    pipe.hset(counts_key, mapping=counts)
                lasts: dict[FieldT, EncodableT] = dict(merged.lasts.items())
                if lasts:
                    pipe.hset(lasts_key, mapping=lasts)
                started = merged.started_at or merged.last_at
                meta: dict[FieldT, EncodableT] = {"started": _ms(started), "last": _ms(merged.last_at)}
                if merged.version is not None:
                    meta["version"] = merged.version
                pipe.hset(meta_key, mapping=meta)
                for key in (counts_key, lasts_key, meta_key):
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
