"""The registry of every store that holds personal data: one explicit tuple, `STORES`.

Export and erasure walk this tuple and nothing else, so a store missing from it would be silently
left out of both. `tests/rights/test_registry.py` therefore fails for any table with a `subject_id`
column (in the main database or the keystore) that no store here names (invariant 11).

Order matters: collection comes before profiles, whose identities lead to the quarantined messages
that name the subject; the keystore comes last, because until then other stores may still need the
subject's key to decrypt what they export, and destroying it is what makes backups unreadable.

The audience sizes (`decide.audience_size`) are a store in two parts. The matches that wait in a
process's memory until the next flush are still subject ids: `audience_matches` exports how many
wait and erasure drops them. The sketches they are flushed into (`audience_sketches` or Redis) are
not a store here: HyperLogLog registers over keyed hashes of subjects, no row, key or value per
subject, so nothing in them can be exported as one person's, or removed without recounting
everyone else, and each day's sketch is gone after 30 days.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from redis import Redis
from sqlalchemy.orm import Session

from tactful.collect import service as collect_service
from tactful.config import Settings
from tactful.consent import service as consent_service
from tactful.crypto import Keystore
from tactful.decide import log as decision_log
from tactful.decide.audience_size import AudienceSizes
from tactful.decide.logbook import Logbook
from tactful.measure import outcomes as measure_outcomes
from tactful.profiles import service as profiles_service
from tactful.profiles.counters import RealtimeCounters, RedisCounters
from tactful.rights import exports as exports_service
from tactful.rights import requests as requests_service
from tactful.rights import reviews as reviews_service
from tactful.types import utcnow


class StoreKind(StrEnum):
    TABLE = "table"
    KEYSTORE = "keystore"
    REDIS = "redis"
    FILE = "file"
    MEMORY = "memory"
    """A buffer in the serving process's memory, reached through the job's context."""


@dataclass(frozen=True)
class RightsContext:
    """What a store's handlers may reach. `counters` overrides the Redis counters (single-process
    mode keeps them in memory, where only the running process can reach them)."""

    session: Session
    keystore: Keystore
    settings: Settings
    redis: Redis | None = None
    counters: RealtimeCounters | None = None
    logbook: Logbook | None = None
    """This process's decision log buffer (entries not yet written)."""
    audience_sizes: AudienceSizes | None = None
    """This process's audience matches not yet counted into the sketches."""

    def realtime(self) -> RealtimeCounters | None:
        if self.counters is not None:
            return self.counters
        if self.redis is not None:
            return RedisCounters(self.redis, prefix=self.settings.redis_prefix)
        return None


ExportHandler = Callable[[RightsContext, uuid.UUID], Mapping[str, object]]
EraseHandler = Callable[[RightsContext, uuid.UUID], int]


@dataclass(frozen=True)
class Store:
    """One store of personal data and its two handlers, both called once per subject id."""

    name: str
    kind: StoreKind
    tables: tuple[str, ...]
    export: ExportHandler
    erase: EraseHandler


# -- handlers -------------------------------------------------------------------------------------


def _export_decisions(ctx: RightsContext, subject_id: uuid.UUID) -> Mapping[str, object]:
    exported = decision_log.export_subject(ctx.session, subject_id=subject_id)
    buffered = ctx.logbook.entries_of(subject_id) if ctx.logbook is not None else []
    if buffered:
        exported["not_yet_written"] = [
            {
                "decision_id": e.decision_id,
                "placement": e.placement,
                "level": e.level,
                "explanation": e.explanation,
            }
            for e in buffered
        ]
    return exported


def _erase_decisions(ctx: RightsContext, subject_id: uuid.UUID) -> int:
    forgotten = ctx.logbook.forget(subject_id) if ctx.logbook is not None else 0
    return forgotten + decision_log.erase_subject(ctx.session, subject_id=subject_id)


def _export_outcomes(ctx: RightsContext, subject_id: uuid.UUID) -> Mapping[str, object]:
    return measure_outcomes.export_subject(ctx.session, subject_id=subject_id)


def _erase_outcomes(ctx: RightsContext, subject_id: uuid.UUID) -> int:
    return measure_outcomes.erase_subject(ctx.session, subject_id=subject_id)


def _export_profile(ctx: RightsContext, subject_id: uuid.UUID) -> Mapping[str, object]:
    return profiles_service.export_subject(ctx.session, keystore=ctx.keystore, subject_id=subject_id)


def _erase_profile(ctx: RightsContext, subject_id: uuid.UUID) -> int:
    return profiles_service.erase_subject(ctx.session, keystore=ctx.keystore, subject_id=subject_id)


def _export_counters(ctx: RightsContext, subject_id: uuid.UUID) -> Mapping[str, object]:
    counters = ctx.realtime()
    return {} if counters is None else counters.export(subject_id)


def _erase_counters(ctx: RightsContext, subject_id: uuid.UUID) -> int:
    counters = ctx.realtime()
    return 0 if counters is None else counters.erase(subject_id)


def _export_collection(ctx: RightsContext, subject_id: uuid.UUID) -> Mapping[str, object]:
    held = collect_service.export_subject(ctx.session, subject_id=subject_id, keystore=ctx.keystore)
    return held if any(held.values()) else {}  # like every store: nothing held, nothing exported


def _erase_collection(ctx: RightsContext, subject_id: uuid.UUID) -> int:
    return collect_service.erase_subject(ctx.session, subject_id=subject_id, keystore=ctx.keystore)


def _export_consent(ctx: RightsContext, subject_id: uuid.UUID) -> Mapping[str, object]:
    return consent_service.export_ledger(ctx.session, subject_id=subject_id)


def _erase_consent(ctx: RightsContext, subject_id: uuid.UUID) -> int:
    # Kept as proof and pseudonymised, never deleted (invariant 11); needs the key, so before it goes.
    return consent_service.erase_ledger(
        ctx.session, keystore=ctx.keystore, subject_id=subject_id, at=utcnow()
    )


def _export_requests(ctx: RightsContext, subject_id: uuid.UUID) -> Mapping[str, object]:
    return requests_service.export_subject(ctx.session, subject_id=subject_id)


def _erase_requests(ctx: RightsContext, subject_id: uuid.UUID) -> int:
    # Kept as the law's proof that the requests were answered, unlinked from the subject.
    return requests_service.erase_subject(ctx.session, subject_id=subject_id)


def _export_reviews(ctx: RightsContext, subject_id: uuid.UUID) -> Mapping[str, object]:
    return reviews_service.export_subject(ctx.session, keystore=ctx.keystore, subject_id=subject_id)


def _erase_reviews(ctx: RightsContext, subject_id: uuid.UUID) -> int:
    # Deleted: the sealed statement and reason are shredded with the key in any case.
    return reviews_service.erase_subject(ctx.session, subject_id=subject_id)


def _export_packages(ctx: RightsContext, subject_id: uuid.UUID) -> Mapping[str, object]:
    return exports_service.export_subject(ctx.session, subject_id=subject_id)


def _erase_packages(ctx: RightsContext, subject_id: uuid.UUID) -> int:
    # The sealed files go with their rows; their keys die with the subject's key in any case.
    return exports_service.erase_subject(ctx.session, settings=ctx.settings, subject_id=subject_id)


def _export_key(ctx: RightsContext, subject_id: uuid.UUID) -> Mapping[str, object]:
    # Only when the key was made: the key itself is never exported.
    created = ctx.keystore.created_at(subject_id)
    return {} if created is None else {"key_created_at": created.isoformat()}


def _erase_key(ctx: RightsContext, subject_id: uuid.UUID) -> int:
    # Anything the session failed to delete must fail now, before the key is irreversibly gone.
    ctx.session.flush()
    return int(ctx.keystore.destroy(subject_id))


def _export_audience_matches(ctx: RightsContext, subject_id: uuid.UUID) -> Mapping[str, object]:
    waiting = ctx.audience_sizes.held_for(subject_id) if ctx.audience_sizes is not None else 0
    return {"matches_not_yet_counted": waiting} if waiting else {}


def _erase_audience_matches(ctx: RightsContext, subject_id: uuid.UUID) -> int:
    return ctx.audience_sizes.forget(subject_id) if ctx.audience_sizes is not None else 0


def _export_nothing(ctx: RightsContext, subject_id: uuid.UUID) -> Mapping[str, object]:
    return {}


def _keep_erasure_record(ctx: RightsContext, subject_id: uuid.UUID) -> int:
    return 0


STORES: tuple[Store, ...] = (
    # Before profiles: quarantined messages that name the subject are found through its identities.
    Store(
        name="collection",
        kind=StoreKind.TABLE,
        tables=("events", "quarantine", "message_ids"),
        export=_export_collection,
        erase=_erase_collection,
    ),
    Store(
        name="decisions",
        kind=StoreKind.TABLE,
        tables=("decision_log",),
        export=_export_decisions,
        erase=_erase_decisions,
    ),
    Store(
        name="outcomes",
        kind=StoreKind.TABLE,
        tables=("decision_outcomes",),
        export=_export_outcomes,
        erase=_erase_outcomes,
    ),
    Store(
        name="profiles",
        kind=StoreKind.TABLE,
        tables=("subjects", "identities", "traits", "computed", "pending_links"),
        export=_export_profile,
        erase=_erase_profile,
    ),
    Store(
        name="audience_matches",
        kind=StoreKind.MEMORY,
        tables=(),
        export=_export_audience_matches,
        erase=_erase_audience_matches,
    ),
    Store(
        name="realtime_counters",
        kind=StoreKind.REDIS,
        tables=(),
        export=_export_counters,
        erase=_erase_counters,
    ),
    Store(
        name="consent",
        kind=StoreKind.TABLE,
        tables=("consent_events",),
        export=_export_consent,
        erase=_erase_consent,
    ),
    Store(
        name="privacy_requests",
        kind=StoreKind.TABLE,
        tables=("privacy_requests",),
        export=_export_requests,
        erase=_erase_requests,
    ),
    # Before the keystore: the statements and reasons are sealed under the subject's key.
    Store(
        name="decision_reviews",
        kind=StoreKind.TABLE,
        tables=("decision_reviews",),
        export=_export_reviews,
        erase=_erase_reviews,
    ),
    Store(
        name="exports",
        kind=StoreKind.FILE,
        tables=("privacy_exports",),
        export=_export_packages,
        erase=_erase_packages,
    ),
    # The erasure's own record (crypto/erasure_log.py): erased subject ids and keyed digests of
    # their identifiers, never an identifier. Nothing of a live subject is there (an identifier
    # that comes back starts someone new), and an erasure keeps it: it is what stops replays and
    # erases the person again from a restored backup.
    Store(
        name="erasure_log",
        kind=StoreKind.KEYSTORE,
        tables=("erased_subjects", "erased_identifiers"),
        export=_export_nothing,
        erase=_keep_erasure_record,
    ),
    # Last, always: see the module docstring.
    Store(
        name="keystore",
        kind=StoreKind.KEYSTORE,
        tables=("subject_keys", "blind_index"),
        export=_export_key,
        erase=_erase_key,
    ),
)


def subject_ids(ctx: RightsContext, subject_id: uuid.UUID) -> tuple[uuid.UUID, ...]:
    """The survivor and every profile merged into it: a merged profile's key and counters are the
    same person's data. An id without a profile still gets every store run (stray rows, keys)."""
    return profiles_service.family(ctx.session, subject_id) or (subject_id,)


def export_all(ctx: RightsContext, subject_id: uuid.UUID) -> dict[str, object]:
    """Everything every store holds about the subject, by store name; merged profiles under `merged`."""
    survivor, *merged = subject_ids(ctx, subject_id)
    exported: dict[str, object] = {store.name: dict(store.export(ctx, survivor)) for store in STORES}
    if merged:
        exported["merged"] = [
            {store.name: dict(store.export(ctx, sid)) for store in STORES} for sid in merged
        ]
    return exported


def erase_stores(ctx: RightsContext, ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """Erase the subjects `ids` (a family: `subject_ids`) from every store but the keystore, in
    order; what each store removed. A job commits this before `erase_keys`, so that a key is
    destroyed only once the rows it sealed are gone for good."""
    return {store.name: sum(store.erase(ctx, sid) for sid in ids) for store in STORES[:-1]}


def erase_keys(ctx: RightsContext, ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """The last store's erasure: the subjects' keys, salts and blind-index entries."""
    keystore = STORES[-1]
    return {keystore.name: sum(keystore.erase(ctx, sid) for sid in ids)}


def erase_all(ctx: RightsContext, subject_id: uuid.UUID) -> dict[str, int]:
    """Erase the subject from every store, in order; returns what each store removed."""
    ids = subject_ids(ctx, subject_id)
    return erase_stores(ctx, ids) | erase_keys(ctx, ids)
