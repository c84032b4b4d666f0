"""Session atoms in decisions: a withheld one never influences a decision, whatever its counters
hold and however a condition tests it (`$ne`, `$nin`, `$not`, `$exists: false` included), and the
counters are not even read; a permitted one decides, from one read of the counters.

Everything on the way is the serving code over the demo catalog: the gate's Allowance over a folded
ledger, the view with the session atoms (`profiles.session`), the lineup from `lineup.build`, and
`decisions.serve`."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tactful.catalog.loader import load_catalog
from tactful.consent.fold import ConsentAction, ConsentEvent, fold
from tactful.decide import decisions, lineup
from tactful.decide.walk import Channel, Placement, Variation
from tactful.main import default_catalog_path
from tactful.policy import (
    GDPR,
    ConsentSource,
    ProfileSnapshot,
    RequestSignals,
    SubjectFacts,
    build_view,
    evaluate,
)
from tactful.profiles.counters import InProcessCounters, Observation, SessionCounters, value_text
from tactful.profiles.session import SessionAtoms
from tactful.types import Purpose
from tests.policy.strategies import AT, T0

CATALOG = load_catalog(default_catalog_path())
SESSION = tuple(sorted(a.name for a in CATALOG.session_atoms))
CATEGORIES = ("outdoor", "books", "running")
DEFAULT = Variation("default", {"headline": "Welcome"}, 1.0, {})


class Reading(InProcessCounters):
    """Counters that count their reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def snapshot(self, subject_id: uuid.UUID, **kwargs: Any) -> SessionCounters:
        self.reads += 1
        return super().snapshot(subject_id, **kwargs)


values = st.one_of(st.sampled_from(CATEGORIES), st.integers(0, 5), st.booleans())
element = st.fixed_dictionaries({"value": st.sampled_from(CATEGORIES), "count": st.integers(0, 4)})


@st.composite
def probes(draw: st.DrawFn) -> dict[str, Any] | str | int | bool:
    """How a condition may test a session atom, the negations most of all."""
    operand = draw(values)
    return draw(
        st.sampled_from(
            [
                {"$ne": operand},
                {"$nin": [operand, "outdoor"]},
                {"$not": {"$gte": 3}},
                {"$not": {"$elemMatch": {"value": "running", "count": {"$gte": 1}}}},
                {"$exists": False},
                {"$exists": True},
                {"$elemMatch": {"value": "running", "count": {"$gte": 1}}},
                {"$size": 0},
                {"$lt": 1},
                operand,
            ]
        )
    )


@st.composite
def session_conditions(draw: st.DrawFn) -> dict[str, Any]:
    """A condition over one or two session atoms, possibly negated whole, possibly beside a request
    atom the Allowance does permit (`$or`: the request atom alone would match)."""
    tested = {
        name: draw(probes()) for name in draw(st.lists(st.sampled_from(SESSION), min_size=1, max_size=2))
    }
    shape = draw(st.integers(0, 2))
    if shape == 1:
        return {"$not": tested}
    if shape == 2:
        return {"$or": [tested, {"context.device.type": "mobile"}]}
    return tested


def published(key: str, priority: int) -> lineup.Published:
    snapshot = {
        "placement": "hero",
        "priority": priority,
        "status": "live",
        "starts_at": None,
        "ends_at": None,
        "holdout": 0.0,
        "strategy": "rule",
        "significant_effect": False,
        "namespace": None,
        "audience": key,
        "variations": [{"key": key, "content": {"headline": key}, "templates": {}, "weight": 1.0}],
        "seed": f"seed-{key}",
    }
    return lineup.Published(key, AT - timedelta(days=1, minutes=priority), 1, snapshot)


def grants(*purposes: Purpose, denied: tuple[Purpose, ...] = ()) -> list[ConsentEvent]:
    given = [ConsentEvent(ConsentAction.GRANTED, T0, ConsentSource.BANNER, purpose=p) for p in purposes]
    later = T0 + timedelta(hours=1)
    return given + [
        ConsentEvent(ConsentAction.WITHDRAWN, later, ConsentSource.BANNER, purpose=p) for p in denied
    ]


EVERY = tuple(p for p in Purpose if p is not Purpose.SALE_OR_SHARE)
WITHHELD = st.sampled_from(
    [
        # (ledger, facts, signals): behaviour is withheld by each of these
        (grants(Purpose.SEGMENTS, Purpose.ANALYTICS), SubjectFacts(age=30), RequestSignals()),
        (grants(*EVERY, denied=(Purpose.BEHAVIORAL,)), SubjectFacts(age=30), RequestSignals()),
        (grants(*EVERY), SubjectFacts(age=30), RequestSignals(gpc=True)),
        (grants(*EVERY), SubjectFacts(age=15), RequestSignals()),
        (grants(*EVERY), SubjectFacts(age=30, restriction=True), RequestSignals()),
        ([], SubjectFacts(), RequestSignals()),
    ]
)
sessions = st.lists(st.lists(st.sampled_from(CATEGORIES), max_size=4), max_size=3)


def counters_of(batches: list[list[str]], subject: uuid.UUID) -> Reading:
    counters = Reading()
    for minute, batch in enumerate(batches):
        seen = [Observation("events.product_viewed", (("category", value_text(c) or ""),)) for c in batch]
        counters.record(subject, seen, at=AT - timedelta(minutes=10 - minute), version="0")
    return counters


def serve(conditions: list[dict[str, Any]], allowance: Any, session: Any) -> tuple[Any, Any]:
    placements = {"hero": Placement("hero", Channel.WEB, DEFAULT)}
    experiences = [published(f"e{i}", i) for i in range(len(conditions))]
    audiences = {e.key: c for e, c in zip(experiences, conditions, strict=True)}
    served = lineup.build(
        placements, experiences, audiences, catalog=CATALOG, catalog_version="t", mark=(0, None)
    )
    profile = ProfileSnapshot(request={"context.device.type": "mobile"}, session=session)
    view = build_view(allowance, profile)
    decided = decisions.serve(
        lineup=served,
        placements=decisions.placements_of(served, ("hero",)),
        allowance=allowance,
        view=view,
        ask=decisions.Ask(("hero",), anonymous_id="anon-1"),
        at=AT,
        subject_id=uuid.uuid4(),
    )
    return decided.served[0].answer, view


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    withheld=WITHHELD,
    conditions=st.lists(session_conditions(), min_size=1, max_size=4),
    first=sessions,
    second=sessions,
)
def test_a_withheld_session_atom_never_influences_a_decision(
    withheld: tuple[list[ConsentEvent], SubjectFacts, RequestSignals],
    conditions: list[dict[str, Any]],
    first: list[list[str]],
    second: list[list[str]],
) -> None:
    events, facts, signals = withheld
    allowance = evaluate(
        catalog=CATALOG, consent=fold(events), regimes=[GDPR], facts=facts, signals=signals, at=AT
    )
    assert not allowance.decide_atoms & set(SESSION)
    subject = uuid.uuid4()
    answers = []
    for batches in (first, second, None):
        if batches is None:
            session: Any = {}  # no counters at all
            counters = None
        else:
            counters = counters_of(batches, subject)
            session = SessionAtoms(counters, subject_id=subject, at=AT, version="0", catalog=CATALOG)
        answer, view = serve(conditions, allowance, session)
        answers.append((answer.experience, answer.variation, answer.content, answer.level, answer.atoms_read))
        assert not view.atoms_read & set(SESSION)
        assert counters is None or counters.reads == 0  # withheld: the counters are never even read
        # Every experience here reads a session atom: none of them may answer.
        assert answer.experience is None
    assert answers[0] == answers[1] == answers[2]


def test_a_permitted_session_atom_decides_from_one_read_of_the_counters() -> None:
    allowance = evaluate(
        catalog=CATALOG,
        consent=fold(grants(Purpose.SEGMENTS, Purpose.BEHAVIORAL)),
        regimes=[GDPR],
        facts=SubjectFacts(age=30),
        signals=RequestSignals(),
        at=AT,
    )
    assert set(SESSION) <= allowance.decide_atoms
    runners = {
        "session.product_views_by_category": {"$elemMatch": {"value": "running", "count": {"$gte": 3}}}
    }
    recent = {"session.since_product_viewed": {"$lte": 600}, "session.last_viewed_category": "running"}
    subject = uuid.uuid4()
    for batches, expected in (([["running"] * 3], "e0"), ([["books", "running"]], "e1"), ([], None)):
        counters = counters_of(batches, subject)
        session = SessionAtoms(counters, subject_id=subject, at=AT, version="0", catalog=CATALOG)
        answer, _view = serve([runners, recent], allowance, session)
        assert answer.experience == expected
        assert counters.reads == 1
        if expected is not None:
            assert str(answer.level) == "1:some"
            assert answer.atoms_read <= set(SESSION)
