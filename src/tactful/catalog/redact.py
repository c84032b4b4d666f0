"""What is kept of the text in the fields the catalog marks (`text: free` or `text: url`): no e-mail
address, phone or payment card number, and no URL query string or fragment beyond the parameters the
catalog names (DESIGN §3, invariant 15). Every other declared string that is not an identifier (the
profile seals those) loses e-mail addresses, phone and card numbers too: `traits.birthdate` is not
a place to keep an address in clear. Pure; the field filter calls it while it walks a message.

    free text ─▶ e-mail addresses, card numbers (Luhn), phone numbers ─▶ `[email]` `[card]` `[phone]`
               └ URLs inside it ─▶ as a URL field
    URL ─▶ fragment dropped, query kept only for the named parameters ─▶ then as free text
    any other string ─▶ an `@`, or a run of 7 digits and separators? ─no─▶ kept as it is
                                                                   └yes─▶ as free text, URLs
                                                                          left whole

Each replacement token is at most one character longer than the shortest text it can replace, holds
no digit and no character of an address, so that redacting twice changes nothing more.
Order ids and SKUs survive: a run of digits is a card number only when the Luhn check says so, and a
phone number needs an international `+`, a bracketed area code or a leading 0 set apart by a space.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum


class TextKind(StrEnum):
    """How the catalog says a field's text is kept."""

    FREE = "free"
    """Written by a person (a search query, a comment, a title): personal data inside is redacted."""
    URL = "url"
    """A URL, or a query string alone (`?q=...`): kept without fragment and unnamed parameters."""


class Found(StrEnum):
    """What redaction took out of a text (the counters name these)."""

    EMAIL = "email"
    PHONE = "phone"
    CARD = "card"
    URL_QUERY = "url_query"
    """A query string's unnamed parameters or a fragment."""


EMAIL_TOKEN = "[email]"  # noqa: S105 - a placeholder, not a secret
PHONE_TOKEN = "[phone]"  # noqa: S105
CARD_TOKEN = "[card]"  # noqa: S105

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CARD = re.compile(
    r"(?<![\w+-])(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2}[ -]\d{1,7}|\d{4}[ -]\d{6}[ -]\d{5})(?![\w-])"
)
_PHONE = re.compile(
    r"(?<![\w+])\+\d[\d .()/-]{5,22}\d(?![\w])"  # international: +49 30 1234567, +1 (555) 123-4567
    r"|(?<![\w(])\(0?\d{1,5}\)[ ]?\d[\d .-]{4,16}\d(?![\w])"  # bracketed area code: (030) 1234567
    r"|(?<![\w-])0\d{2,4}[ /]\d{3,}(?:[ -]\d{2,})*(?![\w-])"  # national: 030 1234567, 0176/1234567
)
_NUMBER_RUN = re.compile(r"\d[\d .()/-]{5,}\d")
"""Seven or more characters, first and last a digit, with nothing but the separators the phone and
card patterns allow between: every phone or card number above is one (an address holds `@`)."""
_SHORTEST = 6
"""No shorter text holds an address (`a@b.cd`), a phone or a card number."""
_SEPARATORS = re.compile(r"[&;]")
_DIGIT = re.compile(r"\d")
_FOUR_DIGITS = re.compile(r"\d{4}")
_URL_IN_TEXT = re.compile(r"(?i)\bhttps?://[^\s<>\"']+")
_MIN_PHONE_DIGITS, _MAX_PHONE_DIGITS = 7, 15


def luhn_valid(digits: str) -> bool:
    """The Luhn check that every payment card number passes (and most other digit runs fail)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


class Redactor:
    """Redaction under one catalog's named URL parameters (`utm_*`: a trailing `*` matches any end)."""

    __slots__ = ("_exact", "_prefixes")

    def __init__(self, parameters: Iterable[str] = ()) -> None:
        names = tuple(parameters)
        self._exact = frozenset(p for p in names if not p.endswith("*"))
        self._prefixes = tuple(p[:-1] for p in names if p.endswith("*"))

    def keeps_parameter(self, name: str) -> bool:
        return name in self._exact or name.startswith(self._prefixes)

    def __call__(self, kind: TextKind, text: str) -> tuple[str, list[Found]]:
        """The text as stored, and what was taken out of it (one entry per removal)."""
        found: list[Found] = []
        if kind is TextKind.URL:
            text = self._url(text, found)
        elif "://" in text:
            text = _URL_IN_TEXT.sub(lambda m: self._url(m.group(0), found), text)
        return _personal(text, found), found

    def _url(self, url: str, found: list[Found]) -> str:
        url, hash_sign, _fragment = url.partition("#")
        base, question, query = url.partition("?")
        if hash_sign:
            found.append(Found.URL_QUERY)
        if not question:
            return url
        given = [p for p in _SEPARATORS.split(query) if p]
        kept = [p for p in given if self.keeps_parameter(p.partition("=")[0])]
        if len(kept) < len(given):
            found.append(Found.URL_QUERY)
        return f"{base}?{'&'.join(kept)}" if kept else base


def may_hold_personal(text: str) -> bool:
    """Whether `text` could hold an e-mail address, phone or card number: the cheap look that spares
    most values (`running`, `SE`, `2026-01-01`, `SKU-1234`) the full search. Never False for a text
    that `personal` would change."""
    if len(text) < _SHORTEST:
        return False
    return "@" in text or "%40" in text or _NUMBER_RUN.search(text) is not None


def personal(text: str) -> tuple[str, list[Found]]:
    """A declared value that is neither free text nor a URL (a birthdate, a category, a SKU) as
    stored: e-mail addresses, card and phone numbers replaced as in free text, and what was taken
    out (one entry per removal)."""
    found: list[Found] = []
    if not may_hold_personal(text):
        return text, found
    return _personal(text, found), found


def _personal(text: str, found: list[Found]) -> str:
    """Text without e-mail addresses, card numbers and phone numbers (in that order)."""
    if "@" in text or "%40" in text:
        text, n = _EMAIL.subn(EMAIL_TOKEN, text)
        found.extend([Found.EMAIL] * n)
    if not _DIGIT.search(text):
        return text

    def card(match: re.Match[str]) -> str:
        if luhn_valid(_digits(match.group(0))):
            found.append(Found.CARD)
            return CARD_TOKEN
        return match.group(0)

    def phone(match: re.Match[str]) -> str:
        if _MIN_PHONE_DIGITS <= len(_digits(match.group(0))) <= _MAX_PHONE_DIGITS:
            found.append(Found.PHONE)
            return PHONE_TOKEN
        return match.group(0)

    if _FOUR_DIGITS.search(text):  # every card number starts with four digits
        text = _CARD.sub(card, text)
    return _PHONE.sub(phone, text)
