"""The privacy rights benchmark's database holds what it claims (subjects, events, decisions, ledgers
in the stated numbers, identifiers only sealed), its cache is reused and never written through, and
its measurement erases and exports what it says."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from bench import rights_scale, rights_seed
from bench.rights_seed import Size
from bench.stores import Stores, fresh_stores
from tactful.collect.models import Event, MessageId
from tactful.consent.models import ConsentEventRow
from tactful.decide.models import DecisionLog
from tactful.profiles.models import Identity, Subject, Trait
from tactful.rights.due import RequestType
from tactful.rights.steps import PLANS

SMALL = Size(subjects=30, events=305, chunk=10)


def _counts(stores: Stores) -> dict[str, int]:
    db, keystore = stores.open()
    try:
        with db.session() as session:
            return {
                model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (Subject, Identity, Trait, Event, MessageId, ConsentEventRow, DecisionLog)
            }
    finally:
        db.dispose()
        keystore.dispose()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Stores, dict[str, int]]:
    stores = fresh_stores(tmp_path_factory.mktemp("rights"))
    made = rights_seed.seed(stores, SMALL, log=lambda _: None)
    return stores, made


def test_the_seed_holds_the_stated_numbers(seeded: tuple[Stores, dict[str, int]]) -> None:
    stores, made = seeded
    counts = _counts(stores)
    identified = SMALL.subjects // 2
    assert counts["subjects"] == made["subjects"] == SMALL.subjects
    assert counts["events"] == counts["message_ids"] == made["events"] == SMALL.events
    assert counts["identities"] == SMALL.subjects + identified  # an anonymous id each, a user id for half
    assert counts["traits"] == 4 * identified
    assert counts["consent_events"] == len(rights_seed.GRANTED) * SMALL.subjects
    assert counts["decision_log"] == made["decisions"]
    assert made["decisions"] > rights_seed.DECISIONS_PER_SUBJECT * SMALL.subjects  # and the real ones


def test_identifiers_are_only_sealed_in_the_seeded_files(seeded: tuple[Stores, dict[str, int]]) -> None:
    stores, _ = seeded
    path = Path(stores.url.removeprefix("sqlite:///"))
    raw = b"".join(p.read_bytes() for p in path.parent.glob(f"{path.name}*"))
    for index in (0, 2, SMALL.subjects - 2):
        user = rights_seed.user_id(index)
        assert user is not None
        assert user.encode() not in raw
        assert f"person{index}@example.com".encode() not in raw
    assert rights_seed.anonymous_id(1).encode() not in raw


def test_the_cache_is_seeded_once_and_each_run_gets_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rights_seed, "CACHE", tmp_path / "cache")
    seeds: list[Size] = []
    real = rights_seed.seed

    def counted(stores: Stores, size: Size, **kw: object) -> dict[str, int]:
        seeds.append(size)
        return real(stores, size, log=lambda _: None)

    monkeypatch.setattr(rights_seed, "seed", counted)
    size = Size(subjects=8, events=40, chunk=8)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, key = rights_seed.cached_sqlite(tmp_path / "a", size, log=lambda _: None)
    second, again = rights_seed.cached_sqlite(tmp_path / "b", size, log=lambda _: None)
    assert seeds == [size]
    assert key == again
    assert first.url != second.url
    assert str(tmp_path / "cache") not in first.url + second.url  # runs never write the cache
    assert _counts(first) == _counts(second)


def test_measuring_erases_and_exports_whole_subjects(tmp_path: Path) -> None:
    stores = fresh_stores(tmp_path)
    rights_seed.seed(stores, SMALL, log=lambda _: None)
    section = rights_scale.measure(stores, SMALL, subjects=2, log=lambda _: None)
    assert len(section["erase_ms"]["runs"]) == len(section["export_ms"]["runs"]) == 2
    planned = {step.name for kind in (RequestType.ERASURE, RequestType.ACCESS) for step in PLANS[kind]}
    assert set(section["steps_ms"]) == planned
    held = section["export_held"]
    assert held["collection"]["events"] in (10, 11)
    assert held["decisions"]["decisions"] >= rights_seed.DECISIONS_PER_SUBJECT
    assert held["profiles"]["identities"] == 2
    assert held["consent"]["events"] == len(rights_seed.GRANTED)
    # Two subjects erased, with their events; the exported ones keep theirs.
    assert SMALL.events - 22 <= section["rows_after"]["events"] <= SMALL.events - 20
    assert section["rows_after"]["identities"] == SMALL.subjects + SMALL.subjects // 2 - 4
