"""The session atoms of one subject at one moment, read from the counters on first use.

    SessionAtoms(counters, subject, at, version, catalog)      names: the catalog's session atoms
        [atom] ──first read──▶ counters.snapshot (one read per decision, whatever it reads after)
               ──▶ the atom's value (`catalog.session`: count, per-value counts, last, since)

A decision's SubjectView holds this mapping beside the stored profile: a view raises for an atom
its Allowance withholds before any value is asked for, so the counters are read only when a
permitted session atom is, and at most once.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Collection, Mapping
from datetime import datetime

from redis import RedisError

from tactful.catalog.model import Atom, Catalog, Measure
from tactful.policy.allowance import Lazy
from tactful.profiles.counters import SEP, RealtimeCounters, SessionCounters

log = logging.getLogger("tactful.profiles")


def session_value(atom: Atom, counters: SessionCounters, *, at: datetime) -> object:
    """The value of the session atom `atom` in `counters` at `at` (None: nothing to say)."""
    spec = atom.session
    assert spec is not None  # only session atoms are asked for
    if spec.measure is Measure.SINCE:
        stamp = counters.lasts.get(spec.event)
        if stamp is None:
            return None
        return max(0, int(at.timestamp() - int(stamp) / 1000))
    if spec.measure is Measure.LAST:
        raw = counters.lasts.get(f"{spec.event}{SEP}{spec.by}")
        return None if raw is None else json.loads(raw)
    if spec.by is None:
        return counters.counts.get(spec.event, 0)
    head = f"{spec.event}{SEP}{spec.by}{SEP}"
    found = [
        (json.loads(name[len(head) :]), n) for name, n in counters.counts.items() if name.startswith(head)
    ]
    found.sort(key=lambda item: (-item[1], json.dumps(item[0])))
    return [{"value": value, "count": n} for value, n in found]


class SessionAtoms(Lazy[str, object]):
    """The catalog's session atoms for one subject at `at`, from one snapshot taken on first use and
    only if counted under `version` (the subject's refusals now)."""

    __slots__ = ("_at", "_atoms", "_counters", "_snapshot", "_subject", "_version")

    def __init__(
        self,
        counters: RealtimeCounters,
        *,
        subject_id: uuid.UUID,
        at: datetime,
        version: str,
        catalog: Catalog,
    ) -> None:
        self._counters, self._subject, self._at, self._version = counters, subject_id, at, version
        self._atoms: Mapping[str, Atom] = {a.name: a for a in catalog.session_atoms}
        self._snapshot: SessionCounters | None = None
        self._keys = self._done = None

    def _work_keys(self) -> Collection[str]:
        return self._atoms.keys()

    def _work(self, key: str) -> object:
        snapshot = self._snapshot
        if snapshot is None:
            try:
                snapshot = self._counters.snapshot(self._subject, at=self._at, version=self._version)
            except RedisError as exc:
                # A decision never fails for want of behaviour: it reads an empty session and falls
                # back. Only the type: logs never carry personal data.
                log.warning("session counters not read (%s); deciding without them", type(exc).__name__)
                snapshot = SessionCounters()
            self._snapshot = snapshot
        return session_value(self._atoms[key], snapshot, at=self._at)
