"""The simulated visitors and what they prefer: deterministic from the seed, and preferences that
depend on who they are and on what they were shown, so that there is something real to learn."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tactful.demo import behaviour
from tactful.demo.shop import CATEGORIES
from tactful.demo.visitors import PURPOSES, Choice, Visitor, make_visitor, make_visitors

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
START = NOW - timedelta(days=7)

visitors = st.builds(
    make_visitor,
    seed=st.integers(0, 10_000),
    run=st.integers(0, 50),
    index=st.integers(0, 100_000),
    start=st.just(START),
    end=st.just(NOW),
)


@given(st.integers(0, 10_000), st.integers(0, 50), st.integers(0, 100_000))
def test_a_visitor_is_the_same_for_the_same_seed_run_and_index_and_new_in_another_run(
    seed: int, run: int, index: int
) -> None:
    visitor = make_visitor(seed, run, index, start=START, end=NOW)
    assert visitor == make_visitor(seed, run, index, start=START, end=NOW)
    later = make_visitor(seed, run + 1, index, start=START, end=NOW)
    assert later.anonymous_id != visitor.anonymous_id
    assert later.user_id is None or later.user_id != visitor.user_id


@given(st.integers(0, 1000), st.integers(0, 20), st.integers(1, 30))
def test_visitors_do_not_depend_on_how_many_there_are(seed: int, run: int, count: int) -> None:
    few = make_visitors(seed, run, count, start=START, end=NOW)
    more = make_visitors(seed, run, count + 5, start=START, end=NOW)
    assert more[:count] == few
    assert few == make_visitors(seed, run, count, start=START, end=NOW)
    assert len({v.anonymous_id for v in more}) == len(more)


@given(visitors)
def test_visits_fall_in_the_window_in_order_and_accounts_open_on_one_of_them(visitor: Visitor) -> None:
    assert visitor.visits
    assert list(visitor.visits) == sorted(visitor.visits)
    assert visitor.visits[0] >= START
    assert visitor.visits[-1] < NOW
    assert (visitor.user_id is None) == (visitor.signs_up_on is None)
    if visitor.signs_up_on is not None:
        assert 0 <= visitor.signs_up_on < len(visitor.visits)
        assert not visitor.signed_up_by(visitor.signs_up_on)
        assert all(visitor.signed_up_by(n) for n in range(visitor.signs_up_on + 1, len(visitor.visits)))
    assert visitor.favourite in CATEGORIES
    assert visitor.age_range == ("13-17" if visitor.minor else "25-34")


def test_a_population_mixes_every_consent_choice_minors_and_gpc() -> None:
    population = make_visitors(7, 0, 3000, start=START, end=NOW)
    choices = Counter(v.choice for v in population)
    assert set(choices) == set(Choice)
    assert all(count > 150 for count in choices.values()), choices
    assert 0.03 < sum(v.minor for v in population) / len(population) < 0.07
    californians = [v for v in population if v.region == "California"]
    others = [v for v in population if v.region != "California"]
    assert sum(v.gpc for v in californians) / len(californians) > 3 * sum(v.gpc for v in others) / len(others)
    assert sum(len(v.visits) > 1 for v in population) > 0.2 * len(population), "people come back"
    assert sum(v.country == "SE" and v.device == "mobile" for v in population) > 0.05 * len(population)


def test_each_answer_records_its_purposes_and_no_answer_records_none() -> None:
    assert PURPOSES[Choice.NO_ANSWER] == {}
    assert set(PURPOSES[Choice.ACCEPT_ALL].values()) == {True}
    assert set(PURPOSES[Choice.NECESSARY_ONLY].values()) == {False}
    assert PURPOSES[Choice.PARTIAL]["personalization.behavioral"] is True
    assert PURPOSES[Choice.PARTIAL]["personalization.predictive"] is False


placements = st.sampled_from(("home_hero", "greeting", "picks", "unknown"))
variations = st.sampled_from(("default", "fri_frakt", "trail", "grid", "carousel", "favorite", "by_name"))
contents = st.fixed_dictionaries(
    {},
    optional={
        "layout": st.sampled_from(("grid", "carousel")),
        "category": st.sampled_from((*CATEGORIES, "bestsellers")),
        "headline": st.text(max_size=10),
    },
)


@given(visitors, placements, variations, st.one_of(contents, st.none(), st.text(max_size=5)))
def test_a_click_chance_is_a_probability_and_only_clickable_placements_have_one(
    visitor: Visitor, placement: str, variation: str, content: object
) -> None:
    chance = behaviour.click_chance(visitor, placement=placement, variation=variation, content=content)
    assert 0.0 <= chance <= 0.9
    assert (chance > 0) == (placement in behaviour.CLICKABLE)


def _as(visitor: Visitor, **changes: object) -> Visitor:
    return dataclasses.replace(visitor, **changes)  # type: ignore[arg-type]


@given(visitors)
def test_what_works_depends_on_who_sees_it(visitor: Visitor) -> None:
    def picks(who: Visitor, layout: str, category: str = "bestsellers") -> float:
        content = {"layout": layout, "category": category}
        return behaviour.click_chance(who, placement="picks", variation=layout, content=content)

    def hero(who: Visitor, variation: str) -> float:
        return behaviour.click_chance(who, placement="home_hero", variation=variation, content={})

    phone, desktop = _as(visitor, device="mobile"), _as(visitor, device="desktop")
    assert picks(phone, "carousel") > picks(phone, "grid")
    assert picks(desktop, "grid") > picks(desktop, "carousel")
    swede, german = _as(visitor, country="SE"), _as(visitor, country="DE")
    assert hero(swede, "fri_frakt") > hero(swede, "default") > hero(german, "fri_frakt")
    fan = _as(visitor, favourite="outdoor")
    assert hero(fan, "trail") > hero(_as(visitor, favourite="books"), "trail") > hero(fan, "default") * 0.99
    other = next(c for c in CATEGORIES if c != visitor.favourite)
    assert picks(visitor, "grid", visitor.favourite) > picks(visitor, "grid", other)


@given(st.booleans(), st.booleans(), st.booleans())
def test_an_order_is_likelier_after_a_click_a_greeting_by_name_and_a_favourite(
    clicked: bool, by_name: bool, favourite: bool
) -> None:
    chance = behaviour.order_chance(clicked=clicked, greeted_by_name=by_name, clicked_favourite=favourite)
    assert 0.0 < chance <= 0.9
    if not clicked:
        assert chance < behaviour.order_chance(
            clicked=True, greeted_by_name=by_name, clicked_favourite=favourite
        )
    if not by_name:
        assert chance < behaviour.order_chance(
            clicked=clicked, greeted_by_name=True, clicked_favourite=favourite
        )
