"""Text fields in the catalog (`text: free | url`, `url_parameters`): the filter redacts them as it
keeps them and names each removal; the catalog rejects `text` where it means nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tactful.catalog.loader import check_catalog_file
from tactful.catalog.redact import TextKind
from tactful.errors import CatalogError
from tests.catalog.builders import atom, build, demo, write_catalog


def test_demo_catalog_marks_its_free_text_and_urls() -> None:
    catalog = demo()
    assert catalog.atom("context.page.url").text is TextKind.URL
    assert catalog.atom("context.page.title").text is TextKind.FREE
    searched = catalog.atom("events.products_searched").find_property("query")
    assert searched is not None
    assert searched.text is TextKind.FREE
    assert catalog.url_parameters == ("utm_*",)


def test_text_fields_are_redacted_everywhere_they_are_kept(tmp_path: Path) -> None:
    catalog = build(
        tmp_path,
        {
            "context.page.url": atom(text="url"),
            "traits.bio": atom("user.account", text="free"),
            "events.reviewed": atom(
                properties={"comment": {"text": "free"}, "items[].note": {"text": "free"}, "sku": None}
            ),
        },
        url_parameters=["utm_*"],
    )
    result = catalog.filter_message(
        {
            "type": "track",
            "event": "Reviewed",
            "properties": {
                "comment": "mail me at ada@example.com",
                "items": [{"note": "card 4111 1111 1111 1111"}, {"note": "fine"}],
                "sku": "ada@example.com",  # not text, but no place for an address either
            },
            "context": {"page": {"url": "https://s.example/?utm_source=a&token=x"}},
        }
    )
    assert result.kept["properties"] == {
        "comment": "mail me at [email]",
        "items": [{"note": "card [card]"}, {"note": "fine"}],
        "sku": "[email]",
    }
    assert result.kept["context"] == {"page": {"url": "https://s.example/?utm_source=a"}}
    assert sorted(result.redacted) == [
        "card:properties.items[].note", "email:properties.comment", "email:properties.sku",
        "url_query:context.page.url",
    ]  # fmt: skip
    identify = catalog.filter_message({"type": "identify", "traits": {"bio": "call +49 30 1234567"}})
    assert identify.kept["traits"] == {"bio": "call [phone]"}
    assert identify.redacted == ("phone:traits.bio",)


def test_values_that_are_not_text_pass_unchanged(tmp_path: Path) -> None:
    catalog = build(tmp_path, {"events.reviewed": atom(properties={"stars": {"text": "free"}})})
    result = catalog.filter_message({"type": "track", "event": "Reviewed", "properties": {"stars": 4111}})
    assert result.kept["properties"] == {"stars": 4111}
    assert result.redacted == ()


@pytest.mark.parametrize(
    ("atoms", "sections", "message"),
    [
        ({"events.reviewed": atom(text="free")}, {}, "'text' applies to context and trait atoms"),
        ({"traits.bio": atom("user.account", text="html")}, {}, "field 'text'"),
        ({"traits.bio": atom("user.account")}, {"url_parameters": ["utm source"]}, "not a parameter name"),
    ],
)
def test_misplaced_or_malformed_text_settings_are_problems(
    tmp_path: Path, atoms: dict[str, object], sections: dict[str, object], message: str
) -> None:
    path = write_catalog(tmp_path, atoms, **sections)
    problems = check_catalog_file(path)
    assert any(message in str(p) for p in problems), problems
    with pytest.raises(CatalogError):
        build(tmp_path, atoms, **sections)
