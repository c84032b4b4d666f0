"""Audience size from stored profile atoms (`decide.audience_count`): which audiences it counts, and
that a pass over every stored subject, in batches and through the seam, counts exactly those whose
Allowance permits every atom the condition reads and whose stored profile matches it, once each
(also when a decision matched them too), opening no sealed atom the condition does not read."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tactful.consent import service as consent_service
from tactful.consent.schemas import ConsentAction, ConsentChange, ConsentSource, TargetKind
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.decide import decisions
from tactful.decide.audience_count import Left, StoredCount, plan
from tactful.decide.audience_size import AudienceSizes
from tactful.decide.conditions import Compiled
from tactful.decide.lineup import with_shadow
from tactful.decide.sketch import sketch_key
from tactful.profiles import atoms as profile_atoms
from tactful.profiles import service as profiles_service
from tactful.types import Purpose
from tests.backends import migrated_database
from tests.decide.sizing import AT, DEMO, LIVES_IN_SWEDEN, PLACEMENT, STORED_KEY, Kept, built, policy, sizes
from tests.profiles.builders import unique

POLICY = policy()
NOT_NORWAY = {"traits.country": {"$ne": "NO"}}


def test_only_audiences_held_to_k_that_read_stored_atoms_alone_are_counted() -> None:
    counted, left = plan(
        DEMO,
        {
            "lives_in_sweden": LIVES_IN_SWEDEN,
            "computed_and_trait": {"traits.city": "Lund", "computed.last_seen": {"$exists": True}},
            "from_sweden": {"context.location.country": "SE"},
            "swedes_on_phones": {"traits.country": "SE", "context.device.type": "mobile"},
            "first_names": {"traits.first_name": "Astrid"},
            "everyone": {},
            "broken": {"traits.country": {"$nope": 1}},
        },
    )
    assert [p.key for p in counted] == ["lives_in_sweden"]
    assert counted[0].sketch == STORED_KEY
    assert left == {
        "computed_and_trait": Left.NOT_HELD_TO_K,  # computed.last_seen is 1:few
        "from_sweden": Left.READS_MORE_THAN_STORED,
        "swedes_on_phones": Left.READS_MORE_THAN_STORED,  # the request part has no stored value
        "first_names": Left.NOT_HELD_TO_K,
        "everyone": Left.NOT_HELD_TO_K,
        "broken": Left.DOES_NOT_COMPILE,
    }


# -- a pass over stored profiles --------------------------------------------------------------------


@dataclass
class Shop:
    database: Database
    keystore: Keystore
    people: dict[str, uuid.UUID]
    users: dict[str, str]
    store: Kept
    sizes: AudienceSizes

    def count(self, audiences: dict[str, Any], *, limit: int | None = None, batch: int = 2) -> Any:
        counter = StoredCount(keystore=self.keystore, policy=lambda: POLICY, sizes=self.sizes, batch=batch)
        return counter.run_apart(self.database.session, audiences, at=AT, limit=limit)

    def counted(self, audience: str, condition: dict[str, Any]) -> set[uuid.UUID]:
        """The people whose digests the store holds under this audience."""
        held = self.store.digests(sketch_key(audience, condition))
        return {subject for subject in self.people.values() if self.sizes.digest(subject) in held}


def _person(
    session: Session, keystore: Keystore, *, consent: bool, **traits: object
) -> tuple[str, uuid.UUID]:
    user = unique("user")
    subject = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=None, user_id=user, at=AT
    ).subject_id
    if traits:
        profiles_service.apply_traits(
            session, keystore=keystore, catalog=DEMO, subject_id=subject, traits=traits, at=AT
        )
    if consent:
        grant = ConsentChange.for_purpose(Purpose.SEGMENTS, ConsentAction.GRANTED, ConsentSource.API)
        consent_service.record(
            session, keystore=keystore, subject_id=subject, changes=[grant], at=AT, actor="t"
        )
    return user, subject


@pytest.fixture
def shop(backend: str, tmp_path: Path, keystore: Keystore) -> Iterator[Shop]:
    with migrated_database(backend, tmp_path) as db:
        with db.session() as session:
            made = {
                "swede": _person(session, keystore, consent=True, country="SE", first_name="Astrid"),
                "swede_unasked": _person(session, keystore, consent=False, country="SE"),
                "norwegian": _person(session, keystore, consent=True, country="NO"),
                "nowhere": _person(session, keystore, consent=True),
                "restricted": _person(session, keystore, consent=True, country="SE"),
            }
            people = {name: subject for name, (_, subject) in made.items()}
            restrict = ConsentChange(TargetKind.RESTRICTION, ConsentAction.DENIED, ConsentSource.API)
            consent_service.record(
                session, keystore=keystore, subject_id=people["restricted"], changes=[restrict], at=AT,
                actor="t",
            )  # fmt: skip
        store = Kept()
        yield Shop(
            db, keystore, people, {name: user for name, (user, _) in made.items()}, store, sizes(store)
        )


def test_a_pass_counts_the_permitted_matches_and_a_withheld_atom_never(shop: Shop) -> None:
    report = shop.count({"lives_in_sweden": LIVES_IN_SWEDEN, "not_norway": NOT_NORWAY})
    assert (report.subjects, report.complete) == (5, True)
    assert report.matched == {"lives_in_sweden": 1, "not_norway": 2}
    assert shop.counted("lives_in_sweden", LIVES_IN_SWEDEN) == {shop.people["swede"]}
    # `$ne` holds for a permitted atom with no value; for one the Allowance withholds (no consent to
    # read the stored country; a restriction), it is never a match.
    assert shop.counted("not_norway", NOT_NORWAY) == {shop.people["swede"], shop.people["nowhere"]}


def test_a_limited_pass_reads_no_more_than_its_limit_and_the_rest_adds_no_one_twice(shop: Shop) -> None:
    first = shop.count({"not_norway": NOT_NORWAY}, limit=3)
    assert (first.subjects, first.complete) == (3, False)
    whole = shop.count({"not_norway": NOT_NORWAY})
    assert (whole.subjects, whole.complete) == (5, True)
    assert shop.store.count(None, [sketch_key("not_norway", NOT_NORWAY)], today=AT.date()) == {  # type: ignore[arg-type]
        sketch_key("not_norway", NOT_NORWAY): pytest.approx(2, abs=0.01)
    }
    assert shop.count({"not_norway": NOT_NORWAY}, limit=0).subjects == 0


def test_an_audience_reading_the_request_is_left_to_decisions(shop: Shop) -> None:
    report = shop.count({"from_sweden": {"context.location.country": "SE"}})
    assert (report.subjects, report.matched, report.left) == (
        0,
        {},
        {"from_sweden": Left.READS_MORE_THAN_STORED},
    )
    assert not shop.store.added


def test_no_sealed_atom_is_opened_that_the_condition_does_not_read(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real = profile_atoms.unseal

    def unseal(keystore: Keystore, subject_id: uuid.UUID, atom: str, token: bytes) -> object:
        opened.append(atom)
        return real(keystore, subject_id, atom, token)

    monkeypatch.setattr(profile_atoms, "unseal", unseal)
    shop.count({"lives_in_sweden": LIVES_IN_SWEDEN})
    assert opened == []  # the swede's first name is sealed, and never read


def test_a_person_counted_by_the_pass_and_by_a_decision_counts_once(shop: Shop) -> None:
    shop.count({"lives_in_sweden": LIVES_IN_SWEDEN})
    ask = decisions.Ask(placements=(PLACEMENT,), user_id=shop.users["swede"])
    with shop.database.session() as session:
        decided = decisions.decide(
            session, keystore=shop.keystore, policy=POLICY, lineup=built(), ask=ask, at=AT,
            sizes=shop.sizes,
        )  # fmt: skip
        assert decided.subject_id == shop.people["swede"]
        shop.sizes.flush(session)
    assert shop.counted("lives_in_sweden", LIVES_IN_SWEDEN) == {shop.people["swede"]}
    assert len(shop.store.digests(STORED_KEY)) == 1


def test_an_erased_person_is_not_counted_by_the_next_pass(shop: Shop) -> None:
    with shop.database.session() as session:
        profiles_service.erase_subject(session, keystore=shop.keystore, subject_id=shop.people["swede"])
    report = shop.count({"lives_in_sweden": LIVES_IN_SWEDEN})
    assert (report.subjects, report.matched) == (4, {"lives_in_sweden": 0})


def test_a_decision_evaluates_each_audience_once_when_it_also_counts_it(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both audiences serve: the walk evaluates them, and counting reads what they answered.
    serving = with_shadow(built(), frozenset())
    evaluated: list[int] = []
    evaluate = Compiled.evaluate

    def counting(self: Compiled, view: Any) -> Any:
        evaluated.append(1)
        return evaluate(self, view)

    monkeypatch.setattr(Compiled, "evaluate", counting)
    ask = decisions.Ask(placements=(PLACEMENT,), user_id=shop.users["swede"])
    with shop.database.reading() as session:
        decided = decisions.decide(
            session, keystore=shop.keystore, policy=POLICY, lineup=serving, ask=ask, at=AT, sizes=shop.sizes
        )
    assert decided.served[0].answer.experience == "swedish_customers"
    assert len(evaluated) == 2  # the walk's two; counting evaluated none again
    with shop.database.session() as session:
        shop.sizes.flush(session)
    assert shop.counted("lives_in_sweden", LIVES_IN_SWEDEN) == {shop.people["swede"]}
