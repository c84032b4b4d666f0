"""E-mail content: a subject line and body blocks, linted and rendered as any content is."""

from __future__ import annotations

from typing import Any

from tactful.render.email import check_email, render_email
from tactful.render.lint import LintCode
from tactful.render.renderer import RenderReason
from tests.render.builders import catalog, renderer, view


def email() -> dict[str, Any]:
    return {
        "subject": "New trail shoes are in",
        "preheader": "Light and grippy",
        "blocks": [
            {"type": "text", "text": "Hello"},
            {"type": "html", "html": "<p>Our picks</p>"},
            {"type": "image", "src": "https://shop.example.com/shoe.jpg", "alt": "A shoe"},
            {"type": "button", "text": "Shop now", "url": "https://shop.example.com/trail"},
        ],
    }


TEMPLATES = {
    "subject": "{{ traits.first_name | default('Hello') }}, new trail shoes are in",
    "blocks.0.text": "{% if traits.first_name %}Hi {{ traits.first_name }},{% else %}Hello,{% endif %}",
    "blocks.1.html": "<p>Picked for {{ traits.first_name | default('you') }}</p>",
}


def test_an_email_variation_passes_the_lint_and_renders() -> None:
    check = check_email(email(), TEMPLATES, catalog=catalog())
    assert check.ok, [str(p) for p in check.problems]
    assert check.atoms == {"traits.first_name"}
    result = render_email(renderer(), email(), TEMPLATES, view({"traits.first_name": "Ada & <Bo>"}))
    assert result.rendered
    assert isinstance(result.content, dict)
    assert result.content["subject"] == "Ada & <Bo>, new trail shoes are in"
    assert result.content["blocks"][0]["text"] == "Hi Ada & <Bo>,"
    assert result.content["blocks"][1]["html"] == "<p>Picked for Ada &amp; &lt;Bo&gt;</p>"
    assert result.content["blocks"][3] == email()["blocks"][3]


def test_the_shape_is_checked_and_links_take_no_template() -> None:
    content = email()
    del content["subject"]
    content["blocks"].append({"type": "video", "src": "x"})
    templates = {"blocks.3.url": "https://shop.example.com/{{ traits.first_name | default('x') }}"}
    check = check_email(content, templates, catalog=catalog())
    found = {(p.code, p.field) for p in check.problems}
    assert (LintCode.EMAIL_SHAPE, "subject") in found
    assert (LintCode.NOT_TEMPLATABLE, "blocks.3.url") in found
    assert any(code is LintCode.EMAIL_SHAPE and (field or "").startswith("blocks.4") for code, field in found)


def test_a_subject_that_a_value_breaks_onto_two_lines_is_not_rendered() -> None:
    subject = view({"traits.first_name": "Ada\nBcc: everyone@example.com"})
    result = render_email(renderer(), email(), TEMPLATES, subject)
    assert (result.reason, result.field) == (RenderReason.BAD_SHAPE, "subject")
    assert result.content is None


def test_an_email_without_the_atom_falls_back_like_any_content() -> None:
    result = render_email(renderer(), email(), TEMPLATES, view(withheld=["traits.first_name"]))
    assert result.rendered
    assert isinstance(result.content, dict)
    assert result.content["subject"] == "Hello, new trail shoes are in"
    assert result.fallbacks == {"traits.first_name"}
