"""Redaction of free text and URLs (`catalog.redact`): card numbers that pass the Luhn check, e-mail
addresses and phone numbers go, order ids and SKUs stay; URLs keep only the named parameters.
Property tests for the invariants, examples for the formats."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.catalog.redact import (
    CARD_TOKEN,
    EMAIL_TOKEN,
    PHONE_TOKEN,
    Found,
    Redactor,
    TextKind,
    luhn_valid,
)

REDACT = Redactor(["utm_*", "lang"])
FREE, URL = TextKind.FREE, TextKind.URL


def free(text: str) -> str:
    return REDACT(FREE, text)[0]


def luhn_digit(body: str) -> str:
    """The check digit that makes `body + digit` pass the Luhn check."""
    return next(d for d in "0123456789" if luhn_valid(body + d))


DIGITS = st.text(alphabet="0123456789", min_size=12, max_size=18)
CARDS = DIGITS.map(lambda body: body + luhn_digit(body))
NOT_CARDS = DIGITS.map(lambda body: body + str((int(luhn_digit(body)) + 1) % 10))
WORDS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
SEPARATED = st.sampled_from(["", " ", "\n", ", ", ": ", "(", ") "])

LOCAL = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._+-]{0,15}\Z")
DOMAIN = st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,10}(\.[a-z0-9][a-z0-9-]{0,10}){0,2}\.[a-z]{2,6}\Z")
EMAILS = st.builds(lambda local, domain: f"{local}@{domain}", LOCAL, DOMAIN)


def test_luhn_check_on_known_numbers() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("378282246310005")  # an American Express test number
    assert not luhn_valid("4111111111111112")


@given(card=CARDS, before=SEPARATED, after=SEPARATED, words=WORDS)
def test_card_numbers_that_pass_luhn_are_redacted(card: str, before: str, after: str, words: str) -> None:
    text = f"{words}{' ' if words else ''}{before}{card}{after}"
    kept, found = REDACT(FREE, text)
    assert card not in kept
    assert CARD_TOKEN in kept
    assert Found.CARD in found


@given(body=st.text(alphabet="0123456789", min_size=15, max_size=15))
def test_grouped_card_numbers_are_redacted(body: str) -> None:
    card = body + luhn_digit(body)
    for separator in (" ", "-"):
        grouped = separator.join(card[i : i + 4] for i in range(0, 16, 4))
        assert free(f"paid with {grouped}.") == f"paid with {CARD_TOKEN}."


@given(number=NOT_CARDS, prefix=st.sampled_from(["", "SKU-", "ORD-", "order ", "#"]))
def test_order_ids_and_skus_that_fail_luhn_survive(number: str, prefix: str) -> None:
    text = f"{prefix}{number}"
    assert REDACT(FREE, text) == (text, [])


@pytest.mark.parametrize(
    "text",
    [
        "SKU-4711-B",
        "ORD-2026-000123",
        "order 100234567",
        "2026-12-06",
        "size 42, 3 items",
        "v1.2.3",
        "12.50 EUR",
    ],
)
def test_everyday_identifiers_and_numbers_survive(text: str) -> None:
    assert REDACT(FREE, text) == (text, [])


@given(email=EMAILS, before=WORDS, after=WORDS, glue=SEPARATED)
def test_emails_in_any_position_are_redacted(email: str, before: str, after: str, glue: str) -> None:
    text = f"{before}{glue}{email}{glue}{after}"
    kept, found = REDACT(FREE, text)
    assert email not in kept
    assert found.count(Found.EMAIL) >= 1
    assert EMAIL_TOKEN in kept


@pytest.mark.parametrize(
    "phone",
    [
        "+49 30 1234567",
        "+1 (555) 123-4567",
        "+4915112345678",
        "(030) 1234567",
        "030 1234567",
        "0176/12345678",
    ],
)
def test_phone_numbers_are_redacted(phone: str) -> None:
    assert free(f"call me on {phone} please") == f"call me on {PHONE_TOKEN} please"


@given(text=st.one_of(WORDS, st.builds(lambda *parts: " ".join(parts), WORDS, EMAILS, CARDS, WORDS)))
def test_redaction_is_idempotent_and_bounded(text: str) -> None:
    for kind in (FREE, URL):
        once, _ = REDACT(kind, text)
        assert REDACT(kind, once) == (once, [])
        # Each token is at most one character longer than the shortest text it replaces (an address
        # of six characters, `a@b.co`).
        assert len(once) <= len(text) + len(text) // 6


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://shop.example/p/1?email=ada%40example.com&utm_source=nl#reviews",
         "https://shop.example/p/1?utm_source=nl"),
        ("https://shop.example/search?q=back+pain&lang=de", "https://shop.example/search?lang=de"),
        ("https://shop.example/p/1", "https://shop.example/p/1"),
        ("?q=running+shoes&utm_campaign=winter", "?utm_campaign=winter"),
        ("?q=running+shoes", ""),
        ("https://shop.example/u/ada@example.com/orders", f"https://shop.example/u/{EMAIL_TOKEN}/orders"),
    ],
)  # fmt: skip
def test_urls_keep_only_the_named_parameters(url: str, kept: str) -> None:
    assert REDACT(URL, url)[0] == kept


def test_removals_are_named() -> None:
    assert REDACT(URL, "https://s.example/?token=abc#x")[1] == [Found.URL_QUERY, Found.URL_QUERY]
    assert REDACT(URL, "https://s.example/?utm_medium=mail")[1] == []


def test_urls_inside_free_text_lose_their_query() -> None:
    text = "see https://shop.example/cart?session=abc123&utm_source=x for ada@example.com"
    assert free(text) == f"see https://shop.example/cart?utm_source=x for {EMAIL_TOKEN}"


def test_no_parameter_is_kept_unless_named() -> None:
    assert Redactor()(URL, "https://s.example/?utm_source=x")[0] == "https://s.example/"
    assert Redactor(["utm_source"]).keeps_parameter("utm_source")
    assert not Redactor(["utm_source"]).keeps_parameter("utm_sourcex")
