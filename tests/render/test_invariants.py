"""Invariant 9 (no unresolved placeholder in rendered content) and invariant 14 (user data is never
evaluated), for any view: atoms withheld, missing, or holding strings that look like templates."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import assume, given
from hypothesis import strategies as st

from tactful.policy.allowance import SubjectView
from tactful.render.lint import lint_variation
from tactful.render.placeholders import has_placeholder
from tactful.render.renderer import RenderReason
from tests.render.builders import catalog, renderer, view

ATOMS = (
    "traits.first_name",
    "traits.loyalty_tier",
    "context.locale",
    "context.location.country",
    "computed.favorite_category",
)
HOSTILE = (
    "{{x}}",
    "{{ 7 * 7 }}",
    "{% raw %}",
    "{% endraw %}",
    "[FIRSTNAME]",
    "*|FNAME|*",
    "%%name%%",
    "${name}",
    "{first_name}",
    "<%= name %>",
    "{# c #}",
    "{{ traits.first_name }}",
    "{{ ''.__class__ }}",
)
# Words without any character that can take part in template syntax or a placeholder.
SAFE = st.text(alphabet="abcdeéåXYZ 0123,.!-'\n", max_size=12)
SECRET = "zqwv-held-back:"
WORD = st.sampled_from(("there", "friend", "Hej", "books", "en", "gold"))
ATOM = st.sampled_from(ATOMS)


def _expression(atom: str, word: str, kind: int) -> str:
    return (
        f"{{{{ {atom} | default('{word}') }}}}",
        f"{{% if {atom} %}}{{{{ {atom} }}}}{{% else %}}{word}{{% endif %}}",
        f"{{% if {atom} and {atom} == '{word}' %}}{word}!{{% endif %}}",
        f"{{{{ {atom} if {atom} is defined else '{word}' }}}}",
        f"{{% if {atom} %}}{{{{ {atom} | string | upper }}}}{{% endif %}}",
        f"{{{{ {atom} }}}}",  # no fallback: the lint refuses it
        f"{{% if {atom} or context.locale %}}{{{{ {atom} }}}}{{% endif %}}",  # neither
    )[kind]


PIECE = st.one_of(
    SAFE,
    st.builds(_expression, ATOM, WORD, st.integers(0, 6)),
)
TEMPLATE = st.lists(PIECE, min_size=1, max_size=6).map("".join)
VALUE = st.one_of(
    st.sampled_from(HOSTILE),
    SAFE,
    st.text(max_size=12),
    st.integers(-5, 5),
    st.none(),
    st.builds(lambda a, b: a + b, st.sampled_from(HOSTILE), SAFE),
)
STATE = st.sampled_from(("present", "withheld", "missing", "undeclared"))
"""present: allowed with a value; withheld: the Allowance holds it back (its value exists but out of
reach); missing: allowed without a value; undeclared: neither."""


def _view(states: Mapping[str, str], values: Mapping[str, object]) -> SubjectView:
    present = {a: values[a] for a, s in states.items() if s in ("present", "withheld")}
    withheld = [a for a, s in states.items() if s == "withheld"]
    missing = [a for a, s in states.items() if s == "missing"]
    return view(present, withheld=withheld, allowed=missing)


def _strings(content: object) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, dict):
        return [s for key, value in content.items() for s in (key, *_strings(value))]
    if isinstance(content, list):
        return [s for value in content for s in _strings(value)]
    return []


@given(
    headline=TEMPLATE,
    body=TEMPLATE,
    states=st.fixed_dictionaries(dict.fromkeys(ATOMS, STATE)),
    values=st.fixed_dictionaries(dict.fromkeys(ATOMS, VALUE)),
)
def test_linted_templates_never_show_template_syntax_or_placeholders(
    headline: str, body: str, states: dict[str, str], values: dict[str, object]
) -> None:
    content = {"headline": "Hello", "body_html": "<p>Hello</p>"}
    templates = {"headline": headline, "body_html": f"<p>{body}</p>"}
    assume(lint_variation(content, templates, catalog=catalog()).ok)
    # A withheld atom's value exists behind the view; a marker no template text or value can spell.
    values = {a: SECRET + a if states[a] == "withheld" else v for a, v in values.items()}
    result = renderer().render(content, templates, _view(states, values))
    if result.rendered:
        for text in _strings(result.content):
            assert not has_placeholder(text), text
            assert SECRET not in text
        assert result.atoms_read <= {a for a, s in states.items() if s == "present"}
    else:
        # Two values printed side by side can make a placeholder ("{AB" + "C}"); it is then refused,
        # and that is the only way a linted template fails.
        assert result.reason is RenderReason.PLACEHOLDER


@given(
    headline=TEMPLATE,
    states=st.fixed_dictionaries(dict.fromkeys(ATOMS, STATE)),
    values=st.fixed_dictionaries({a: st.one_of(SAFE, st.integers(0, 9)) for a in ATOMS}),
)
def test_a_linted_template_renders_whatever_the_view_holds_back(
    headline: str, states: dict[str, str], values: dict[str, object]
) -> None:
    templates = {"headline": headline}
    assume(lint_variation({"headline": ""}, templates, catalog=catalog()).ok)
    result = renderer().render({"headline": ""}, templates, _view(states, values))
    assert result.rendered, result
    held = {a for a, s in states.items() if s != "present"}
    assert not result.atoms_read & held


@given(template=TEMPLATE, value=st.sampled_from(HOSTILE), atom=ATOM)
def test_a_value_is_data_never_a_template(template: str, value: str, atom: str) -> None:
    """Whatever a value says, rendering with it gives what rendering without it gives (the value
    looks like a placeholder, so the fallback applies), and nothing it says is run."""
    templates = {"headline": template}
    assume(lint_variation({"headline": ""}, templates, catalog=catalog()).ok)
    hostile = renderer().render({"headline": ""}, templates, view({atom: value}))
    absent = renderer().render({"headline": ""}, templates, view(allowed=[atom]))
    assert hostile == absent
    assert "49" not in str(hostile.content)


@given(template=TEMPLATE)
def test_templates_the_lint_refuses_for_a_missing_fallback_fail_without_placeholder_text(
    template: str,
) -> None:
    """The renderer does not rely on the lint: a template published despite it still never shows a
    gap or a placeholder; it reports that it could not render."""
    templates = {"headline": template}
    result = renderer().render({"headline": ""}, templates, view())
    if result.rendered:
        assert not any(has_placeholder(s) for s in _strings(result.content))
    else:
        assert result.reason in (RenderReason.ATOM_UNAVAILABLE, RenderReason.PLACEHOLDER)
