"""One decision request: an answer per placement in the order asked, each with a fresh unguessable
id, and a log entry that holds names, codes and numbers but no atom's value."""

from __future__ import annotations

import uuid

from tactful.catalog.loader import load_catalog
from tactful.decide.engine import decide
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
        [hero, greeting], allowance=allowance(), view=view, at=NOW, steps=lambda _: Steps(), catalog=DEMO
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
