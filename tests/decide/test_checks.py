"""Structural checks: each fault names its field and says how to fix it; valid definitions pass."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from tactful.decide.checks import (
    MAX_CONTENT_BYTES,
    MAX_DEPTH,
    Code,
    ExperienceData,
    Problem,
    VariationData,
    content_problems,
    experience_problems,
    json_problems,
)


def _codes(problems: list[Problem]) -> list[tuple[str, Code]]:
    return [(p.field, p.code) for p in problems]


def _experience(strategy: str, *keys: str, **fields: object) -> ExperienceData:
    variations = [VariationData(k, {"headline": k}, {}, 1.0) for k in keys]
    return ExperienceData(
        strategy=strategy,
        starts_at=fields.get("starts_at"),  # type: ignore[arg-type]
        ends_at=fields.get("ends_at"),  # type: ignore[arg-type]
        variations=variations,
    )


def test_a_null_anywhere_is_refused_with_its_path() -> None:
    problems = content_problems({"hero": {"items": ["a", None]}}, {}, ("default",), channel="web")
    assert _codes(problems) == [("default.content.hero.items[1]", Code.CONTENT_NULL)]
    assert problems[0].message.startswith("default.content.hero.items[1] is null")


@pytest.mark.parametrize("content", [{}, [], "", "   "])
def test_empty_content_is_refused(content: object) -> None:
    assert _codes(content_problems(content, {}, ("default",), channel="app")) == [
        ("default.content", Code.CONTENT_EMPTY)
    ]


@pytest.mark.parametrize("content", [{"a": 1}, ["x"], "Welcome", 3, 2.5, True, False, 0])
def test_typed_json_without_nulls_is_content(content: object) -> None:
    assert content_problems(content, {}, ("default",), channel="web") == []


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ({"a": "nul\x00"}, Code.CONTENT_TEXT),
        ({"a": "\ud800"}, Code.CONTENT_TEXT),
        ({"a": math.inf}, Code.CONTENT_NUMBER),
        ({"a": math.nan}, Code.CONTENT_NUMBER),
        ({"a": 2**60}, Code.CONTENT_NUMBER),
        ({"\x00": 1}, Code.CONTENT_TEXT),
    ],
)
def test_what_no_database_or_browser_keeps_exactly_is_refused(content: object, code: Code) -> None:
    assert [p.code for p in content_problems(content, {}, ("c",), channel="web")] == [code]


def test_content_is_capped_in_size_and_depth() -> None:
    large = {"text": "x" * 4000, "more": ["y" * 4000] * 4}
    assert [p.code for p in json_problems(large, ("c",), max_bytes=MAX_CONTENT_BYTES)] == [
        Code.CONTENT_TOO_LARGE
    ]
    deep: object = "leaf"
    for _ in range(MAX_DEPTH + 2):
        deep = {"d": deep}
    assert Code.CONTENT_TOO_DEEP in [p.code for p in json_problems(deep, ("c",), max_bytes=10**6)]


def test_conditions_may_compare_with_null() -> None:
    assert json_problems({"traits.x": {"$eq": None}}, ("condition",), max_bytes=8192, nulls=True) == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"subject": "Hi", "body": [{"text": "x"}]}, []),
        ({"body": [{"text": "x"}]}, [("v.content.subject", Code.EMAIL_SUBJECT)]),
        ({"subject": " ", "body": ["x"]}, [("v.content.subject", Code.EMAIL_SUBJECT)]),
        ({"subject": "Hi"}, [("v.content.body", Code.EMAIL_BODY)]),
        ({"subject": "Hi", "body": []}, [("v.content.body", Code.EMAIL_BODY)]),
        ({"subject": "Hi", "body": [{}]}, [("v.content.body", Code.EMAIL_BODY)]),
        ("Hello", [("v.content", Code.EMAIL_SUBJECT)]),
    ],
)
def test_an_email_needs_a_subject_line_and_body_blocks(content: object, expected: list[object]) -> None:
    assert _codes(content_problems(content, {}, ("v",), channel="email")) == expected


def test_the_web_needs_no_subject_line() -> None:
    assert content_problems({"headline": "Hi"}, {}, ("v",), channel="web") == []


def test_empty_or_outsized_templates_are_refused() -> None:
    problems = content_problems({"a": 1}, {"greeting": " ", "long": "x" * 9000}, ("v",), channel="web")
    assert [p.field for p in problems] == ["v.templates.greeting", "v.templates.long"]


@pytest.mark.parametrize(
    ("strategy", "keys", "code"),
    [
        ("rule", ("a", "b"), Code.RULE_VARIATIONS),
        ("split", ("a",), Code.SPLIT_VARIATIONS),
        ("bandit", ("a",), Code.BANDIT_VARIATIONS),
    ],
)
def test_variations_fit_the_strategy(strategy: str, keys: tuple[str, ...], code: Code) -> None:
    assert _codes(experience_problems(_experience(strategy, *keys), channel="web")) == [("variations", code)]


@pytest.mark.parametrize(("strategy", "keys"), [("rule", ("a",)), ("split", ("a", "b")), ("bandit", "abc")])
def test_fitting_variations_pass(strategy: str, keys: tuple[str, ...]) -> None:
    assert experience_problems(_experience(strategy, *keys), channel="web") == []


def test_variation_keys_are_unique() -> None:
    problems = experience_problems(_experience("split", "a", "b", "a"), channel="web")
    assert _codes(problems) == [("variations[2].key", Code.VARIATION_KEY_REPEATED)]
    assert "variations[0]" in problems[0].message


def test_a_schedule_ends_after_it_starts() -> None:
    start = datetime(2026, 5, 1, tzinfo=UTC)
    for end in (start, datetime(2026, 4, 1, tzinfo=UTC)):
        data = _experience("rule", "a", starts_at=start, ends_at=end)
        assert _codes(experience_problems(data, channel="web")) == [("ends_at", Code.SCHEDULE_ORDER)]
    later = _experience("rule", "a", starts_at=start, ends_at=datetime(2026, 6, 1, tzinfo=UTC))
    assert experience_problems(later, channel="web") == []


def test_an_email_experience_needs_email_content() -> None:
    problems = experience_problems(_experience("rule", "a"), channel="email")
    assert _codes(problems) == [
        ("variations[0].content.subject", Code.EMAIL_SUBJECT),
        ("variations[0].content.body", Code.EMAIL_BODY),
    ]
