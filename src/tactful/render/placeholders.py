"""What a placeholder looks like: the tokens that must never reach a person ("Dear [FIRSTNAME]").

One detector serves three places: the lint refuses template text that holds one (a `{% raw %}`
block, a merge tag pasted from another system), the renderer treats a subject's value that holds
one as missing (an import that stored "*|FNAME|*" as a first name), and the renderer checks its
own output before it answers (invariant 9). The list covers the syntaxes copy is written in:

| token                        | written by                                          |
|------------------------------|-----------------------------------------------------|
| `{{ }}` `{% %}` `{# #}`      | Jinja, Django, Liquid, Mustache, Handlebars         |
| `<% %>`                      | ERB, EJS                                            |
| `${name}` `#{name}` `{name}` | JavaScript, Ruby, Python and ICU interpolation       |
| `*\\|FNAME\\|*`              | Mailchimp merge tags                                |
| `%%name%%` `%NAME%`          | Salesforce Marketing Cloud, SendGrid legacy, others |
| `[FIRSTNAME]` `[[name]]`     | hand-written mail merges, Campaign Monitor          |

Ordinary prose keeps passing: "[1]", "50% off", "[see below]" and CSS such as `{color: red}` do
not match (a bracket token is upper case or doubled, a brace token is a bare identifier).
"""

from __future__ import annotations

import re

_PATTERNS = (
    r"\{\{|\}\}|\{%|%\}|\{#|#\}",  # Jinja, Django, Liquid, Mustache, Handlebars
    r"<%|%>",  # ERB, EJS
    r"\{\s*[A-Za-z_][\w.]*\s*\}",  # ${name}, #{name}, {name}, {user.name}
    r"\*\|[^|\n]{0,60}\|\*",  # Mailchimp
    r"%%[^%\s]{1,60}%%",  # %%name%%
    r"%[A-Z][A-Z0-9_]{1,60}%",  # %FIRSTNAME%
    r"\[\s*[A-Z][A-Z0-9_]*(?:[ _][A-Z0-9_]+)*\s*\]",  # [FIRSTNAME], [FIRST NAME]
    r"\[\[[^\[\]\n]{1,60}\]\]",  # [[name]]
)
PLACEHOLDER = re.compile("|".join(f"(?:{p})" for p in _PATTERNS))
"""Any template syntax or placeholder token, in any of the syntaxes above."""

_SHORT_UPPER = re.compile(r"\[[A-Z]\]")


def find_placeholder(text: str) -> str | None:
    """The first placeholder token in `text`, or None."""
    for match in PLACEHOLDER.finditer(text):
        token = match.group(0)
        # A single capital letter in brackets is a list marker or a footnote ("[A]"), not a name.
        if not _SHORT_UPPER.fullmatch(token):
            return token
    return None


def has_placeholder(text: str) -> bool:
    return find_placeholder(text) is not None
