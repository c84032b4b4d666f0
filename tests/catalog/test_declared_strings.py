"""Every declared string that is not an identifier loses e-mail addresses, phone and card numbers as
the filter keeps it, named as in free text (`email:traits.birthdate`); ordinary values pass
unchanged, and identifiers are kept as sent for the profile to seal (DESIGN §3, invariant 15)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tactful.catalog.model import Catalog
from tactful.catalog.redact import Redactor, TextKind, luhn_valid, may_hold_personal, personal
from tests.catalog.builders import demo

WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzÅÄÖ-_", max_size=10)


@st.composite
def emails(draw: st.DrawFn) -> str:
    local = draw(st.from_regex(r"[a-z][a-z0-9._]{0,11}", fullmatch=True))
    domain = draw(st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True))
    return f"{local}@{domain}.{draw(st.sampled_from(['com', 'se', 'de', 'info']))}"


@st.composite
def phones(draw: st.DrawFn) -> str:
    """An international number of 7 to 14 digits (more than 15 is no phone number)."""
    country = draw(st.integers(1, 99))
    groups = draw(st.lists(st.from_regex(r"[0-9]{2,4}", fullmatch=True), min_size=3, max_size=3))
    return f"+{country} " + draw(st.sampled_from([" ", "-", ""])).join(groups)


@st.composite
def cards(draw: st.DrawFn) -> str:
    body = draw(st.from_regex(r"[1-9][0-9]{14}", fullmatch=True))
    number = body + next(d for d in "0123456789" if luhn_valid(body + d))
    spaced = " ".join(number[i : i + 4] for i in range(0, 16, 4))
    return draw(st.sampled_from([number, spaced]))


PERSONAL = st.one_of(emails(), phones(), cards())

# (message, path as named, where the value sits in the kept message): one of each kind of leaf.
LEAVES: dict[str, tuple[dict[str, Any], tuple[str | int, ...]]] = {
    "traits.birthdate": ({"type": "identify", "traits": {"birthdate": None}}, ("traits", "birthdate")),
    "traits.country": ({"type": "identify", "traits": {"country": None}}, ("traits", "country")),
    "properties.category": (
        {"type": "track", "event": "Product Viewed", "properties": {"category": None}},
        ("properties", "category"),
    ),
    "properties.products[].sku": (
        {"type": "track", "event": "Cart Viewed", "properties": {"products": [{"sku": None}]}},
        ("properties", "products", 0, "sku"),
    ),
    "context.campaign.source": (
        {"type": "track", "event": "Product Viewed", "context": {"campaign": {"source": None}}},
        ("context", "campaign", "source"),
    ),
    "name": ({"type": "page", "name": None, "properties": {}}, ("name",)),
}


def sent(template: dict[str, Any], where: tuple[str | int, ...], value: object) -> dict[str, Any]:
    """`template` with `value` at `where` (a fresh copy)."""

    def put(node: Any, path: tuple[str | int, ...]) -> Any:
        if not path:
            return value
        copy = list(node) if isinstance(node, list) else dict(node)
        copy[path[0]] = put(node[path[0]], path[1:])  # type: ignore[index]
        return copy

    return put(template, where)  # type: ignore[no-any-return]


def at(message: dict[str, Any], where: tuple[str | int, ...]) -> Any:
    node: Any = message
    for step in where:
        node = node[step]
    return node


def filtered(catalog: Catalog, path: str, value: object) -> tuple[object, tuple[str, ...]]:
    template, where = LEAVES[path]
    result = catalog.filter_message(sent(template, where, value))
    return at(result.kept, where), result.redacted


@given(path=st.sampled_from(sorted(LEAVES)), item=PERSONAL, before=WORDS, after=WORDS)
def test_no_declared_string_keeps_an_address_phone_or_card_number(
    path: str, item: str, before: str, after: str
) -> None:
    kept, redacted = filtered(demo(), path, f"{before} {item} {after}")
    assert isinstance(kept, str)
    assert item not in kept
    assert kept.startswith(f"{before} [")
    assert kept.endswith(f"] {after}")
    assert [entry.partition(":")[2] for entry in redacted] == [path]


@given(path=st.sampled_from(sorted(LEAVES)), item=emails())
def test_an_address_is_named_as_in_free_text(path: str, item: str) -> None:
    kept, redacted = filtered(demo(), path, item)
    assert (kept, redacted) == ("[email]", (f"email:{path}",))


@given(
    path=st.sampled_from(sorted(LEAVES)),
    value=st.sampled_from(["running", "SE", "2026-01-01", "SKU-1234", "sv-SE", "OUT-74314-064", "42.50"]),
)
def test_ordinary_values_are_kept_unchanged(path: str, value: str) -> None:
    assert filtered(demo(), path, value) == (value, ())


@given(item=st.one_of(emails(), phones(), cards()))
def test_identifier_traits_are_kept_as_sent_for_the_profile_to_seal(item: str) -> None:
    result = demo().filter_message({"type": "identify", "traits": {"email": item, "phone": item}})
    assert result.kept["traits"] == {"email": item, "phone": item}
    assert result.redacted == ()


def test_numbers_and_other_scalars_are_kept_as_sent() -> None:
    for value in (46701234567, 4111111111111111, 19.5, True, None):
        assert filtered(demo(), "properties.category", value) == (value, ())


@given(st.text(alphabet="0123456789 .()/-+@%4aZ:\n", max_size=40) | st.text(max_size=40))
def test_the_cheap_look_misses_nothing_the_redactor_would_take(text: str) -> None:
    if not may_hold_personal(text):
        assert Redactor()(TextKind.FREE, text.replace("://", ""))[1] == []
        assert personal(text) == (text, [])


@given(st.text(max_size=40), PERSONAL)
def test_personal_takes_out_what_free_text_loses(text: str, item: str) -> None:
    value = f"{text} {item}"
    if "://" not in value:
        assert personal(value) == Redactor()(TextKind.FREE, value)
