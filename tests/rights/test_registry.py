"""The registry of personal-data stores is complete, ordered, and its export and erasure reach
every store (DESIGN invariant 11)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import date

import pytest
from redis import Redis
from sqlalchemy import Table
from sqlalchemy.orm import Session

from tactful.config import Settings
from tactful.crypto import Keystore, keystore_metadata
from tactful.db import Base
from tactful.decide.audience_size import AudienceSizes
from tactful.errors import KeyDestroyed
from tactful.profiles import service as profiles_service
from tactful.profiles.counters import InProcessCounters, make_counters
from tactful.profiles.models import Identity
from tactful.rights.registry import STORES, RightsContext, StoreKind, erase_all, export_all
from tactful.tables import import_all_models
from tests.backends import REDIS_URL, redis_prefix
from tests.profiles.builders import T0
from tests.rights.builders import person

COLLECTION = "tactful.collect"


def _every_table() -> dict[str, Table]:
    import_all_models()
    tables = {table.name: table for table in Base.metadata.tables.values()}
    tables |= {table.name: table for table in keystore_metadata.tables.values()}
    return tables


def _subject_tables() -> set[str]:
    return {name for name, table in _every_table().items() if "subject_id" in table.c}


def _defined_in(package: str) -> set[str]:
    import_all_models()
    return {
        mapper.local_table.name
        for mapper in Base.registry.mappers
        if mapper.class_.__module__.startswith(package) and isinstance(mapper.local_table, Table)
    }


def _registered() -> set[str]:
    return {name for store in STORES for name in store.tables}


def test_every_table_with_subject_data_is_registered() -> None:
    subject_tables = _subject_tables()
    assert {"subjects", "identities", "traits", "computed", "subject_keys", "blind_index"} <= subject_tables
    missing = subject_tables - _registered()
    assert not missing, (
        f"tables with a subject_id column that no store in tactful.rights.registry.STORES names: "
        f"{sorted(missing)}; register them there with an export and an erase handler"
    )


def test_collection_tables_are_registered() -> None:
    collection = _defined_in(COLLECTION) & _subject_tables()
    assert collection, "collection defines no table with subject data: this test has nothing to check"
    missing = collection - _registered()
    assert not missing, f"collection's tables missing from STORES: {sorted(missing)}"


def test_every_registered_table_exists() -> None:
    unknown = _registered() - set(_every_table())
    assert not unknown, f"STORES names tables that do not exist: {sorted(unknown)}"


def test_stores_are_named_once_and_the_keystore_comes_last() -> None:
    names = [store.name for store in STORES]
    assert len(names) == len(set(names))
    tables = [name for store in STORES for name in store.tables]
    assert len(tables) == len(set(tables)), "a table belongs to exactly one store"
    assert STORES[-1].kind == StoreKind.KEYSTORE
    assert "subject_keys" in STORES[-1].tables
    # Besides the keys, the keystore holds only the erasure log, which an erasure keeps.
    assert [store.name for store in STORES if store.kind == StoreKind.KEYSTORE] == ["erasure_log", "keystore"]


def _context(session: Session, keystore: Keystore, counters: InProcessCounters) -> RightsContext:
    return RightsContext(session=session, keystore=keystore, settings=Settings(), counters=counters)


def test_export_all_gathers_every_store(session: Session, keystore: Keystore) -> None:
    counters = InProcessCounters()
    ada = person(session, keystore, counters)
    ctx = _context(session, keystore, counters)
    exported = export_all(ctx, ada.merged)  # any id of the person leads to the whole family
    assert set(exported) == {store.name for store in STORES} | {"merged"}
    profile = exported["profiles"]
    assert isinstance(profile, dict)
    assert profile["subject_id"] == str(ada.survivor)
    assert profile["traits"] == {
        "traits.email": ada.email,
        "traits.first_name": "Ada",
        "traits.age_range": "25-34",
    }
    assert {i["value"] for i in profile["identities"]} == {ada.user_id, ada.anonymous_id}
    assert profile["computed"]["computed.favorite_category"] == "books"
    assert exported["realtime_counters"]["counts"] == [  # type: ignore[index]
        {"event": "events.page_viewed", "count": 1},
        {"event": "events.product_viewed", "count": 1},
        {"event": "events.product_viewed", "count": 1, "property": "category", "value": "books"},
    ]
    assert "key_created_at" in exported["keystore"]  # type: ignore[operator]
    assert exported["merged"] == [
        {
            "profiles": {
                "subject_id": str(ada.merged),
                "created_at": T0.isoformat(),
                "last_seen_at": T0.isoformat(),
                "merged_into": str(ada.survivor),
            },
            "collection": {},
            "outcomes": {},
            "decisions": {},
            "audience_matches": {},
            "realtime_counters": {},
            "consent": {},
            "privacy_requests": {},
            "decision_reviews": {},
            "erasure_log": {},
            "exports": {},
            "keystore": exported["merged"][0]["keystore"],  # type: ignore[index]
        }
    ]


def test_erase_all_leaves_nothing_and_shreds_every_key_of_the_family(
    session: Session, keystore: Keystore
) -> None:
    counters = InProcessCounters()
    ada = person(session, keystore, counters)
    sealed = [row.value_enc for row in session.query(Identity).filter(Identity.subject_id == ada.survivor)]
    ctx = _context(session, keystore, counters)
    removed = erase_all(ctx, ada.merged)  # any id of the person erases the whole family
    assert removed["profiles"] >= 2 + 3 + 3 + 2  # identities, traits, computed atoms, two subjects
    assert removed["keystore"] == 2  # the survivor's key and the merged profile's
    assert removed["realtime_counters"] == 1
    for subject_id in (ada.survivor, ada.merged):
        assert not keystore.has_subject(subject_id)
        assert export_all(ctx, subject_id) == {store.name: {} for store in STORES}
    assert profiles_service.find_subject(session, keystore=keystore, user_id=ada.user_id) is None
    assert profiles_service.find_subject(session, keystore=keystore, email=ada.email) is None
    with pytest.raises(KeyDestroyed):
        keystore.decrypt(ada.survivor, sealed[0], context="identity.user_id")
    assert erase_all(ctx, ada.survivor) == {store.name: 0 for store in STORES}


@pytest.mark.redis
def test_with_redis_export_and_erasure_reach_the_counters_every_process_shares(
    session: Session, keystore: Keystore
) -> None:
    """The server's counters live under its prefix in Redis: a rights context given only Redis and
    the same settings (a job on any process) exports and erases them."""
    if not REDIS_URL:
        pytest.skip("needs TACTFUL_TEST_REDIS_URL")
    client = Redis.from_url(REDIS_URL)
    settings = Settings(redis_prefix=redis_prefix())
    served = make_counters(redis=client, prefix=settings.redis_prefix)
    ada = person(session, keystore, served)
    ctx = RightsContext(session=session, keystore=keystore, settings=settings, redis=client)
    try:
        exported = export_all(ctx, ada.survivor)
        assert exported["realtime_counters"] != {}
        removed = erase_all(ctx, ada.survivor)
        assert removed["realtime_counters"] == 3  # the survivor's three keys
        assert list(client.scan_iter(match=f"{settings.redis_prefix}*")) == []
    finally:
        for key in client.scan_iter(match=f"{settings.redis_prefix}*"):
            client.delete(key)
        client.close()


def test_export_and_erasure_reach_the_audience_matches_waiting_in_memory(
    session: Session, keystore: Keystore
) -> None:
    # Until the next flush a match is the subject's id in this process's memory, not yet a register.
    ada, bob = person(session, keystore, InProcessCounters()), uuid.uuid4()
    sizes = AudienceSizes(_Recorded(), k=50, secret=lambda: b"k" * 32)
    day = T0.date()
    sizes.record(["sweden:1", "mobile:2"], ada.survivor, day=day)
    sizes.record(["sweden:1"], bob, day=day)
    ctx = replace(_context(session, keystore, InProcessCounters()), audience_sizes=sizes)
    assert export_all(ctx, ada.survivor)["audience_matches"] == {"matches_not_yet_counted": 2}
    assert erase_all(ctx, ada.survivor)["audience_matches"] == 2
    assert export_all(ctx, ada.survivor)["audience_matches"] == {}
    store = sizes.store
    assert isinstance(store, _Recorded)
    sizes.flush(session)
    assert store.added == [{("sweden:1", day): {sizes.digest(bob)}}]  # only bob is counted


class _Recorded:
    def __init__(self) -> None:
        self.added: list[dict[tuple[str, date], set[bytes]]] = []

    def add(self, session: Session, batch: Mapping[tuple[str, date], Collection[bytes]]) -> None:
        self.added.append({key: set(digests) for key, digests in batch.items() if digests})

    def count(self, session: Session, keys: Collection[str], *, today: date) -> dict[str, float]:
        return {}
