"""The placeholder detector: the tokens of the syntaxes copy is written in, and prose that is not one."""

from __future__ import annotations

import pytest

from tactful.render.placeholders import find_placeholder


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("Dear [FIRSTNAME],", "[FIRSTNAME]"),
        ("Dear [FIRST NAME],", "[FIRST NAME]"),
        ("Dear [[name]],", "[[name]]"),
        ("Hi *|FNAME|*", "*|FNAME|*"),
        ("Hi %%first_name%%", "%%first_name%%"),
        ("Hi %FIRSTNAME%", "%FIRSTNAME%"),
        ("Hi {{x}}", "{{"),
        ("Hi x}}", "}}"),
        ("{% raw %}", "{%"),
        ("{# note #}", "{#"),
        ("<%= name %>", "<%"),
        ("Hi ${name}", "{name}"),
        ("Hi #{user.name}", "{user.name}"),
        ("Hi { first_name }", "{ first_name }"),
    ],
)
def test_tokens_of_every_syntax_are_found(text: str, token: str) -> None:
    assert find_placeholder(text) == token


@pytest.mark.parametrize(
    "text",
    [
        "Hello there",
        "Save 50% off, 20% more",
        "See note [1] and [A]",
        "[see below]",
        "p {color: red}",
        "3 * 4 | 5",
        "email@example.com",
        "",
    ],
)
def test_prose_passes(text: str) -> None:
    assert find_placeholder(text) is None
