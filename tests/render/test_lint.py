"""The publish-time lint: what it refuses, with which line and fix, and what it lets through."""

from __future__ import annotations

from pathlib import Path

import pytest

from tactful.render.lint import LintCode, lint_template, lint_variation, template_level
from tactful.types import Level
from tests.catalog.builders import atom, build
from tests.render.builders import catalog


def codes(source: str) -> list[tuple[LintCode, int | None]]:
    return [(p.code, p.line) for p in lint_template(source, catalog=catalog()).problems]


@pytest.mark.parametrize(
    "source",
    [
        "Hello!",
        "Hi {{ traits.first_name | default('there') }}!",
        "Hi {{ traits.first_name | d('there', true) }}!",
        "Hi {{ traits.first_name | default(default_value='there') }}!",
        "{% if traits.first_name %}Hi {{ traits.first_name | title }}{% else %}Hello{% endif %}",
        "{% if traits.first_name %}Hi {{ traits.first_name.upper() }}{% endif %}",
        "{% if traits.first_name is defined %}Hi {{ traits.first_name }}{% endif %}",
        "{% if context.location.country and context.location.country == 'SE' %}Hej{% endif %}",
        "{% if context.locale and traits.first_name %}{{ context.locale }}{{ traits.first_name }}{% endif %}",
        "{% if not traits.first_name %}Hi{% elif traits.loyalty_tier %}{{ traits.loyalty_tier }}{% endif %}",
        "{{ traits.first_name if traits.first_name else 'there' }}",
        "{{ traits['first_name'] | default('there') }}",
        "{% if traits.first_name is undefined %}Hello{% endif %}",
        "{% for word in ['a', 'b'] %}{{ word }}{{ loop.index }}{% endfor %}",
        "{% set greeting = traits.first_name | default('there') %}Hi {{ greeting }}",
        "Save {{ 15 }}% on {{ computed.favorite_category | default('everything') }}",
    ],
)
def test_templates_with_a_fallback_for_every_atom_pass(source: str) -> None:
    check = lint_template(source, catalog=catalog())
    assert check.ok, [str(p) for p in check.problems]


def test_a_read_without_fallback_is_refused_with_its_line_and_the_fix() -> None:
    check = lint_template("Hello,\n\nDear {{ traits.first_name }}!", catalog=catalog())
    (problem,) = check.problems
    assert problem.code is LintCode.NO_FALLBACK
    assert (problem.line, problem.atom) == (3, "traits.first_name")
    assert str(problem) == (
        "line 3: traits.first_name has no fallback; write {{ traits.first_name | default('…') }} "
        "with the words to show instead, or wrap it in {% if traits.first_name %}…{% endif %}"
    )


@pytest.mark.parametrize(
    "source",
    [
        "{{ traits.first_name }}",
        "{{ traits.first_name | upper | default('x') }}",  # the filter runs on the missing value first
        "{{ traits.first_name | default('') }}",  # an empty fallback shows nothing
        "{{ traits.first_name | default('  ') }}",
        "{{ traits.first_name | default(true) }}",
        "{{ traits.first_name | default(traits.last_name) }}",  # not a literal
        "{{ traits.first_name.upper() | default('x') }}",  # a default of the value's attribute
        "{% if traits.first_name or context.locale %}{{ traits.first_name }}{% endif %}",
        "{% if traits.first_name %}{% else %}{{ traits.first_name }}{% endif %}",
        "{% if not traits.first_name %}{{ traits.first_name }}{% endif %}",
        "{% if context.location.country == 'SE' %}Hej{% endif %}",
        "{% for c in computed.favorite_category %}{{ c }}{% endfor %}",
        "{% set name = traits.first_name %}{{ name | default('x') }}",
        "{{ 'x' if context.locale else traits.first_name }}",
    ],
)
def test_reads_that_are_not_fallbacks_are_refused(source: str) -> None:
    assert LintCode.NO_FALLBACK in {code for code, _ in codes(source)}


def test_a_test_gets_a_test_shaped_fix() -> None:
    (problem,) = lint_template("{% if context.locale == 'sv' %}Hej{% endif %}", catalog=catalog()).problems
    assert problem.fix == "test it first: {% if context.locale and <the test> %}"


def test_syntax_errors_name_the_line_and_the_message() -> None:
    (problem,) = lint_template("Hello\n\n{{ traits.first_name | default('x') }", catalog=catalog()).problems
    assert problem.code is LintCode.SYNTAX_ERROR
    assert problem.line == 3
    assert "unexpected '}'" in problem.message
    (unclosed,) = lint_template("Hello\n{% if traits.first_name %}\nno end", catalog=catalog()).problems
    assert unclosed.line == 2  # where the block that needs closing opens
    assert "endif" in unclosed.message
    (unknown,) = lint_template("{{ traits.first_name | shout }}", catalog=catalog()).problems
    assert unknown.code is LintCode.SYNTAX_ERROR
    assert "shout" in unknown.message


def test_an_undeclared_atom_is_refused_with_the_closest_declared_one() -> None:
    (problem,) = lint_template("{{ traits.fist_name | default('you') }}", catalog=catalog()).problems
    assert problem.code is LintCode.UNDECLARED_ATOM
    assert problem.atom == "traits.fist_name"
    assert problem.fix == "did you mean traits.first_name?"


@pytest.mark.parametrize(
    ("source", "atom", "rule"),
    [
        ("{{ traits.email | default('x') }}", "traits.email", "copy_forbidden"),
        ("{{ traits.birthdate | default('x') }}", "traits.birthdate", "copy_forbidden"),
        ("{{ context.location.latitude | default('x') }}", "context.location.latitude",
         "never_in_copy: user.location.precise"),
        ("{% if traits.health_interest %}Feel better{% endif %}", "traits.health_interest", "copy_forbidden"),
    ],
)  # fmt: skip
def test_copy_rules_are_refused_naming_the_rule(source: str, atom: str, rule: str) -> None:
    (problem,) = lint_template(source, catalog=catalog()).problems
    assert problem.code is LintCode.COPY_FORBIDDEN
    assert problem.atom == atom
    assert rule in problem.message


def test_a_category_rule_reaches_an_event_property_of_that_category(tmp_path: Path) -> None:
    built = build(
        tmp_path,
        {
            "events.product_viewed": atom(
                properties={"name": None, "symptom": {"category": "user.sensitive.health"}}
            )
        },
    )
    symptom = lint_template("{{ events.product_viewed.symptom if events.product_viewed else 'x' }}",
                            catalog=built)  # fmt: skip
    assert [p.code for p in symptom.problems] == [LintCode.COPY_FORBIDDEN]
    assert "user.sensitive.health" in symptom.problems[0].message
    # A test of the event itself shows none of its properties; printing one shows that one only.
    name = lint_template("{{ events.product_viewed.name if events.product_viewed else 'x' }}", catalog=built)
    assert name.ok, [str(p) for p in name.problems]
    whole = lint_template("{{ events.product_viewed | default('x') }}", catalog=built)
    assert [p.code for p in whole.problems] == [LintCode.COPY_FORBIDDEN]


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("Dear [FIRSTNAME],", LintCode.PLACEHOLDER_TEXT),
        ("Hi *|FNAME|*", LintCode.PLACEHOLDER_TEXT),
        ("Hi %%first_name%%", LintCode.PLACEHOLDER_TEXT),
        ("{% raw %}{{ traits.first_name }}{% endraw %}", LintCode.PLACEHOLDER_TEXT),
        ("{{ traits.first_name | default('[NAME]') }}", LintCode.PLACEHOLDER_TEXT),
        ("{{ ''.__class__ }}", LintCode.UNSAFE_ATTRIBUTE),
        ("{{ traits.first_name.__class__ if traits.first_name else 'x' }}", LintCode.UNSAFE_ATTRIBUTE),
        ("{{ ()['__class__'] }}", LintCode.UNSAFE_ATTRIBUTE),
        ("{{ first_name }}", LintCode.UNKNOWN_NAME),
        ("{{ traits }}", LintCode.NOT_AN_ATOM),
        ("{% for t in traits %}{% endfor %}", LintCode.NOT_AN_ATOM),
        ("{% set traits = 'x' %}", LintCode.SHADOWED),
        ("{% for context in ['x'] %}{% endfor %}", LintCode.SHADOWED),
        ("{% include 'header.html' %}", LintCode.TAG_NOT_ALLOWED),
        ("{% extends 'base.html' %}", LintCode.TAG_NOT_ALLOWED),
        ("{% import 'macros.html' as m %}", LintCode.TAG_NOT_ALLOWED),
        ("{{ 'Hej' if context.locale }}", LintCode.NO_ELSE),
        ("{{ lipsum() }}", LintCode.UNKNOWN_NAME),
        ("{{ range(3) }}", LintCode.UNKNOWN_NAME),
    ],
)
def test_everything_else_a_template_may_not_do(source: str, code: LintCode) -> None:
    assert code in {c for c, _ in codes(source)}, codes(source)


def test_the_level_is_the_highest_among_the_atoms_read() -> None:
    many = lint_template("{{ context.locale | default('en') }}", catalog=catalog())
    assert (many.atoms, many.level) == ({"context.locale"}, Level.MANY)
    both = lint_template(
        "{{ context.locale | default('en') }} {{ traits.first_name | default('you') }}", catalog=catalog()
    )
    assert both.level is Level.ONE
    assert lint_template("Hello", catalog=catalog()).level is Level.ALL
    assert template_level(["computed.favorite_category"], catalog()) is Level.FEW


def test_nested_context_atoms_are_read_whole() -> None:
    check = lint_template("{{ context.location.country | default('') }}", catalog=catalog())
    assert check.atoms == {"context.location.country"}


def test_a_variation_names_the_field_of_each_problem() -> None:
    content = {"headline": "Welcome", "cta": {"text": "Shop"}, "blocks": [{"text": "Dear [NAME]"}]}
    templates = {
        "headline": "Hi {{ traits.first_name }}",
        "cta.text": "Shop {{ computed.favorite_category | default('now') }}",
        "cta.url": "{{ 'x' }}",
        "blocks.3.text": "x",
    }
    check = lint_variation(content, templates, catalog=catalog())
    found = {(p.field, p.code) for p in check.problems}
    assert found == {
        ("headline", LintCode.NO_FALLBACK),
        ("cta.url", LintCode.BAD_FIELD),
        ("blocks.3.text", LintCode.BAD_FIELD),
        ("blocks.0.text", LintCode.PLACEHOLDER_TEXT),
    }
    assert check.atoms == {"traits.first_name", "computed.favorite_category"}
    assert check.level is Level.ONE
    assert str(check.problems[0]).startswith("field 'headline', line 1: traits.first_name has no fallback")


def test_a_templated_fields_plain_text_is_not_linted_as_copy() -> None:
    content = {"headline": "Hi [FIRSTNAME]"}
    check = lint_variation(content, {"headline": "Hi {{ traits.first_name | default('there') }}"},
                           catalog=catalog())  # fmt: skip
    assert check.ok
