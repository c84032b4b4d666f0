"""The renderer: fallbacks, results with reasons, escaping, the sandbox, the cache."""

from __future__ import annotations

import pytest
from markupsafe import Markup

from tactful.policy.allowance import SubjectView
from tactful.render.renderer import Renderer, RenderReason
from tests.render.builders import catalog, renderer, view

GREETING = {"headline": "Hello"}
HI = {"headline": "Hi {{ traits.first_name | default('there') }}!"}


def test_a_permitted_atom_is_rendered_and_recorded() -> None:
    result = renderer().render(GREETING, HI, view({"traits.first_name": "Ada", "traits.email": "a@x"}))
    assert result.rendered
    assert result.content == {"headline": "Hi Ada!"}
    assert result.atoms_read == {"traits.first_name"}
    assert result.fallbacks == frozenset()


@pytest.mark.parametrize(
    "subject",
    [
        view({"traits.first_name": "Ada"}, withheld=["traits.first_name"]),  # the Allowance holds it back
        view(allowed=["traits.first_name"]),  # permitted, but no value
        view({"traits.first_name": None}),
        view({"traits.first_name": "*|FNAME|*"}),  # a stored placeholder is no name
        view({"traits.first_name": "{{ traits.email }}"}),
    ],
)
def test_the_fallback_applies_when_an_atom_is_withheld_missing_or_a_placeholder(subject: SubjectView) -> None:
    result = renderer().render(GREETING, HI, subject)
    assert result.rendered
    assert result.content == {"headline": "Hi there!"}
    assert result.atoms_read == frozenset()
    assert result.fallbacks == {"traits.first_name"}


def test_an_if_guard_falls_back_to_its_else_branch() -> None:
    source = "{% if traits.first_name %}Welcome back, {{ traits.first_name }}{% else %}Welcome{% endif %}"
    templates = {"headline": source}
    withheld = view({"traits.first_name": "Ada"}, withheld=["traits.first_name"])
    assert renderer().render(GREETING, templates, withheld).content == {"headline": "Welcome"}
    shown = renderer().render(GREETING, templates, view({"traits.first_name": "Ada"}))
    assert shown.content == {"headline": "Welcome back, Ada"}


def test_without_a_fallback_it_says_it_could_not_render_instead_of_showing_a_gap() -> None:
    templates = {"headline": "Dear {{ traits.first_name }},"}
    withheld = view({"traits.first_name": "Ada"}, withheld=["traits.first_name"])
    result = renderer().render(GREETING, templates, withheld)
    assert not result.rendered
    assert result.reason is RenderReason.ATOM_UNAVAILABLE
    assert result.content is None
    assert result.field == "headline"
    assert result.fallbacks == {"traits.first_name"}


def test_comparing_or_computing_with_a_missing_atom_is_not_rendered() -> None:
    for source in (
        "{% if context.locale == 'sv' %}Hej{% endif %}",
        "{{ computed.lifetime_value + 1 }}",
        "{% for c in computed.favorite_category %}{{ c }}{% endfor %}",
    ):
        result = renderer().render(GREETING, {"headline": source}, view())
        assert result.reason is RenderReason.ATOM_UNAVAILABLE, source


def test_a_value_of_the_wrong_type_is_a_template_error_not_an_exception() -> None:
    subject = view({"computed.lifetime_value": "a lot"})
    result = renderer().render(GREETING, {"headline": "{{ computed.lifetime_value + 1 }}"}, subject)
    assert result.reason is RenderReason.TEMPLATE_ERROR


def test_nested_context_atoms_resolve_through_their_namespaces() -> None:
    source = "{{ context.location.country | default('?') }}/{{ context.locale | default('?') }}"
    subject = view({"context.location.country": "SE", "context.locale": "sv-SE"})
    result = renderer().render(GREETING, {"headline": source}, subject)
    assert result.content == {"headline": "SE/sv-SE"}
    assert result.atoms_read == {"context.location.country", "context.locale"}


def test_html_fields_are_escaped_and_text_fields_are_not() -> None:
    content = {"headline": "x", "body_html": "<p>x</p>", "blocks": [{"html": ""}]}
    templates = {
        "headline": "{{ traits.first_name | default('you') }} & co",
        "body_html": "<p>Hi {{ traits.first_name | default('you') }}</p>",
        "blocks.0.html": "<b>{{ traits.first_name | default('you') }}</b>",
    }
    result = renderer().render(content, templates, view({"traits.first_name": "<script>alert(1)</script>"}))
    assert result.content == {
        "headline": "<script>alert(1)</script> & co",
        "body_html": "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;</p>",
        "blocks": [{"html": "<b>&lt;script&gt;alert(1)&lt;/script&gt;</b>"}],
    }


def test_content_is_copied_and_left_unchanged() -> None:
    content = {"headline": "Hello", "items": [{"text": "a"}, 3, True]}
    result = renderer().render(content, {"items.0.text": "{{ context.locale | default('en') }}"}, view())
    assert result.content == {"headline": "Hello", "items": [{"text": "en"}, 3, True]}
    assert content == {"headline": "Hello", "items": [{"text": "a"}, 3, True]}


@pytest.mark.parametrize("path", ["missing", "headline.x", "items.5", "items.1"])
def test_a_template_at_no_string_field_is_a_bad_field(path: str) -> None:
    result = renderer().render({"headline": "Hello", "items": ["a", 3]}, {path: "x"}, view())
    assert (result.reason, result.field) == (RenderReason.BAD_FIELD, path)


def test_plain_content_with_a_placeholder_is_never_returned() -> None:
    result = renderer().render({"headline": "Dear [FIRSTNAME]"}, {}, view())
    assert (result.reason, result.field) == (RenderReason.PLACEHOLDER, "headline")


def test_a_placeholder_beside_a_templated_field_is_never_returned_however_often_rendered() -> None:
    # What templates leave of a content is checked once per content object and templated fields:
    # the same object rendered again, or with another field templated, is judged on what it shows.
    content = {"headline": "Hello", "body": "Dear [FIRSTNAME]", "footer": "Bye"}
    one = renderer()
    for _ in range(2):
        result = one.render(content, {"headline": "{{ traits.first_name | default('there') }}"}, view())
        assert (result.reason, result.field) == (RenderReason.PLACEHOLDER, "body")
    result = one.render(content, {"body": "{{ traits.first_name | default('there') }}"}, view())
    assert result.content == {"headline": "Hello", "body": "there", "footer": "Bye"}


def test_values_next_to_each_other_cannot_make_a_placeholder_that_is_shown() -> None:
    source = "{{ traits.first_name | default('x') }}{{ traits.last_name | default('y') }}"
    subject = view({"traits.first_name": "{AB", "traits.last_name": "C}"})
    result = renderer().render(GREETING, {"headline": source}, subject)
    assert result.reason is RenderReason.PLACEHOLDER


def test_a_syntax_error_at_render_time_is_a_result() -> None:
    result = renderer().render(GREETING, {"headline": "{{ traits.first_name"}, view())
    assert result.reason is RenderReason.TEMPLATE_ERROR


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ traits.__class__ }}",
        "{{ traits._reading }}",
        "{{ traits['_paths'] }}",
        "{{ traits.first_name.__class__.__init__.__globals__ }}",
        "{{ (traits.first_name | default('x')).__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ lipsum.__globals__ }}",
        "{{ self.__init__.__globals__ }}",
        "{{ namespace }}",
        "{{ range(10) | list }}",
        "{{ 'a'.format.__self__ }}",
        "{{ '{0.__class__}'.format(traits.first_name) }}",
    ],
)
def test_the_sandbox_refuses_internals_and_holds_no_globals(source: str) -> None:
    result = renderer().render(GREETING, {"headline": source}, view({"traits.first_name": "Ada"}))
    assert not result.rendered, result.content
    assert result.reason in (RenderReason.UNSAFE, RenderReason.ATOM_UNAVAILABLE, RenderReason.TEMPLATE_ERROR)


def test_a_value_is_never_evaluated_as_a_template() -> None:
    subject = view(
        {"traits.first_name": "{{ 7 * 7 }}", "computed.favorite_category": "{% if 1 %}49{% endif %}"}
    )
    source = "{{ traits.first_name | default('there') }} {{ computed.favorite_category | default('books') }}"
    result = renderer().render(GREETING, {"headline": source}, subject)
    assert result.content == {"headline": "there books"}


def test_templates_are_compiled_once_per_renderer() -> None:
    one = Renderer(catalog().atoms.keys(), cache_size=2)
    two = Renderer(catalog().atoms.keys(), cache_size=2)
    for _ in range(3):
        one.render(GREETING, HI, view())
    assert one.cache_info() == (2, 1, 1)
    assert two.cache_info() == (0, 0, 0)  # each renderer has its own cache
    assert one.compile(HI["headline"], html=False) is one.compile(HI["headline"], html=False)
    assert one.compile(HI["headline"], html=True) is not one.compile(HI["headline"], html=False)
    one.compile("a", html=False)
    one.compile("b", html=False)
    assert one.cache_info()[2] == 2  # least recently used out


def test_a_namespace_cannot_be_changed_or_iterated() -> None:
    result = renderer().render(GREETING, {"headline": "{% for a in traits %}{{ a }}{% endfor %}"}, view())
    assert result.reason is RenderReason.TEMPLATE_ERROR


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x' * 1000000000 }}",
        "{{ ['x'] * 1000000000 }}",
        "{{ 1000000000 * 'x' }}",
        "{{ 9 ** 99999999 }}",
        "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    ],
)
def test_a_template_cannot_exhaust_the_process(source: str) -> None:
    result = renderer().render(GREETING, {"headline": source}, view())
    assert result.reason in (RenderReason.UNSAFE, RenderReason.TEMPLATE_ERROR)


def test_a_value_that_claims_to_be_safe_markup_is_still_escaped() -> None:
    subject = view({"traits.first_name": Markup("<script>x</script>")})
    result = renderer().render(
        {"body_html": ""}, {"body_html": "{{ traits.first_name | d('you') }}"}, subject
    )
    assert result.content == {"body_html": "&lt;script&gt;x&lt;/script&gt;"}


def test_plain_content_is_checked_once_and_a_placeholder_in_it_is_refused_every_time() -> None:
    renderer = Renderer(["traits.first_name"])
    plain = {"headline": "Spring sale", "items": ["boots", {"label": "tents"}]}
    first = renderer.render(plain, {}, {})
    again = renderer.render(plain, {}, {"traits.first_name": "Ada"})  # nothing of the view is read
    assert first.rendered
    assert again is first
    assert first.content == plain
    assert first.content is not plain  # a copy: what was published is never handed out
    leaking = {"headline": "Hi {{ traits.first_name }}"}
    for _ in range(2):
        refused = renderer.render(leaking, {}, {})
        assert refused.reason is RenderReason.PLACEHOLDER
