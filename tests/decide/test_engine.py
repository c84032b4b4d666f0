"""One decision request: an answer per placement in the order asked, each with a fresh unguessable
id, and a log entry that holds names, codes and numbers but no atom's value."""

from __future__ import annotations

import base64
import uuid

from tactful.catalog.loader import load_catalog
from tactful.decide.engine import DECISION_ID_BYTES, decide, new_decision_ids
from tactful.decide.explain import AtomUses
from tactful.decide.logbook import UNNUMBERED
from tactful.decide.walk import Placement, Variation
from tactful.main import default_catalog_path
from tactful.types import Level
from tests.decide.walking import DEFAULT, NOW, Steps, allowance, experience, web

DEMO = load_catalog(default_catalog_path())


def test_each_placement_gets_an_id_an_answer_and_an_entry() -> None:
    hero = web(experience("sweden", Level.MANY))
    greeting = Placement("greeting", hero.channel, Variation("default", {"text": "Hello"}))
    view = {"context.location.country": "SE", "traits.first_name": "Anna"}
    subject = uuid.uuid4()

    served = decide(
        [hero, greeting],
        allowance=allowance(),
        view=view,
        at=NOW,
        steps=lambda _: Steps(),
        uses=AtomUses(DEMO),
    )

    assert [s.answer.placement for s in served] == ["home_hero", "greeting"]
    ids = [s.decision_id for s in served]
    assert len(set(ids)) == 2
    assert all(i.startswith("dc_") and len(i) >= 3 + 22 for i in ids)  # 128 random bits, url-safe
    entry = served[0].entry(subject_id=subject, at=NOW)
    assert (entry.subject_id, entry.placement, entry.level, entry.strategy) == (
        subject,
        "home_hero",
        "1:many",
        "rule",
    )
    assert entry.atoms_read == ("context.location.country",)
    assert entry.purposes == ("personalization.segments",)
    assert entry.legal_basis == {"personalization.segments": "consent"}
    assert "SE" not in repr(entry)
    assert "Anna" not in repr(entry)
    assert served[1].answer.content == {"text": "Hello"}
    assert served[1].answer.variation == DEFAULT.key


def test_an_entry_is_unnumbered_and_keeps_the_language_of_its_explanation() -> None:
    served = decide(
        [web(experience("sweden", Level.MANY))],
        allowance=allowance(),
        view={"context.location.country": "SE"},
        at=NOW,
        steps=lambda _: Steps(),
        uses=AtomUses(DEMO),
    )
    made = served[0].entry(subject_id=uuid.uuid4(), at=NOW, model_version="m1", language="sv")
    assert (made.process, made.sequence, made.model_version) == (UNNUMBERED, 0, "m1")
    assert made.explanation == {**served[0].explanation.to_json(), "language": "sv"}
    assert "language" not in served[0].explained  # the response's form is the entry's own copy


def test_decision_ids_are_128_random_bits_each_from_one_draw() -> None:
    ids = new_decision_ids(5)
    assert len(set(ids)) == 5
    for made in ids:
        assert made.startswith("dc_")
        raw = base64.urlsafe_b64decode(made[3:] + "==")
        assert len(raw) == DECISION_ID_BYTES == 16
    assert new_decision_ids(0) == []
