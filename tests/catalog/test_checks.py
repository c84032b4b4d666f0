"""Every check of the loader names the file, the atom and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tactful.catalog.loader import check_catalog_file, load_catalog
from tactful.catalog.model import CatalogProblem
from tactful.errors import CatalogError
from tests.catalog.builders import atom, write_catalog

PURCHASE = {
    "events.order_completed": atom(
        "user.behavior.purchase", retention="6y", properties=["order_id", "revenue", "products[].category"]
    ),
    "events.product_viewed": atom(properties=["product_id", "category"]),
}


def problems(tmp_path: Path, atoms: dict[str, Any], **sections: Any) -> list[CatalogProblem]:
    found = check_catalog_file(write_catalog(tmp_path, atoms, **sections))
    assert found, "expected a problem"
    return found


def only(tmp_path: Path, atoms: dict[str, Any], **sections: Any) -> str:
    found = problems(tmp_path, atoms, **sections)
    assert len(found) == 1, [str(p) for p in found]
    text = str(found[0])
    assert "demo.yaml" in text
    return text


def test_a_valid_catalog_has_no_problems(tmp_path: Path) -> None:
    assert (
        check_catalog_file(write_catalog(tmp_path, {"traits.age_range": atom("user.demographic.age_range")}))
        == []
    )


def test_special_category_for_targeting_needs_explicit_consent(tmp_path: Path) -> None:
    religion = atom("user.sensitive.religion", purposes=["personalization.segments"])
    text = only(tmp_path, {"traits.religion": religion})
    assert text.startswith(f"{tmp_path / 'demo.yaml'}:")
    assert text.endswith(
        "atom 'traits.religion': category 'user.sensitive.religion' is a special category and may be used "
        "for targeting; add 'explicit_consent: true' or remove the targeting purposes"
    )
    religion["explicit_consent"] = True
    assert check_catalog_file(write_catalog(tmp_path, {"traits.religion": religion})) == []


def test_special_category_for_analytics_only_is_not_targeting(tmp_path: Path) -> None:
    atoms = {"traits.religion": atom("user.sensitive.religion", purposes=["analytics"])}
    assert check_catalog_file(write_catalog(tmp_path, atoms)) == []


def test_a_special_event_property_also_counts(tmp_path: Path) -> None:
    event = atom(
        purposes=["personalization.behavioral"],
        properties={"topic": {"category": "user.sensitive.health"}, "url": None},
    )
    text = only(tmp_path, {"events.article_read": event})
    assert "atom 'events.article_read'" in text
    assert "user.sensitive.health" in text
    assert "explicit_consent: true" in text


def test_unknown_category_suggests_the_closest(tmp_path: Path) -> None:
    text = only(tmp_path, {"traits.email": atom("user.contact.emial", identifier=True)})
    assert "atom 'traits.email'" in text
    assert "unknown category 'user.contact.emial'" in text
    assert "did you mean 'user.contact.email'?" in text


def test_unknown_purpose_suggests_the_closest(tmp_path: Path) -> None:
    text = only(tmp_path, {"events.product_viewed": atom(purposes=["analytic"])})
    assert "atom 'events.product_viewed'" in text
    assert "unknown purpose 'analytic'" in text
    assert "did you mean 'analytics'?" in text


@pytest.mark.parametrize(
    ("retention", "expected"),
    [
        (None, "add 'retention:'"),
        ("30 days", "write a period such as '30d'"),
        ("P", "write a period such as '30d'"),
        (30, "'30d'?"),
        ("0d", "write 'request'"),
    ],
)
def test_retention_missing_or_unparsable(tmp_path: Path, retention: object, expected: str) -> None:
    text = only(tmp_path, {"events.product_viewed": atom(retention=retention)})
    assert "atom 'events.product_viewed'" in text
    assert "retention" in text
    assert expected in text


def test_request_only_retention_is_for_context_atoms(tmp_path: Path) -> None:
    text = only(tmp_path, {"traits.city": atom("user.location.imprecise", retention="request")})
    assert "atom 'traits.city'" in text
    assert "give it a stored retention period" in text
    assert (
        check_catalog_file(
            write_catalog(tmp_path, {"context.ip": atom("user.device.ip_address", retention="request")})
        )
        == []
    )


def test_computed_atom_with_a_lower_level_than_its_input(tmp_path: Path) -> None:
    spend = atom("user.behavior.purchase", inputs=["events.order_completed"], level="1:many", retention="1y")
    text = only(tmp_path, {**PURCHASE, "computed.spend": spend})
    assert "atom 'computed.spend'" in text
    assert "level '1:many' is below '1:some' of its input 'events.order_completed'" in text


def test_computed_level_override_below_an_input(tmp_path: Path) -> None:
    atoms = {
        "traits.created_at": atom("user.account", level="1:1"),
        "computed.tenure": atom(
            "user.derived.inference", inputs=["traits.created_at"], level="1:few", retention="1y"
        ),
    }
    text = only(tmp_path, atoms)
    assert "atom 'computed.tenure'" in text
    assert "level '1:few' is below '1:1' of its input 'traits.created_at'" in text
    assert 'raise it to at least "1:1"' in text


def test_computed_atom_kept_longer_than_its_input(tmp_path: Path) -> None:
    atoms = {
        **PURCHASE,
        "computed.interest": atom(
            "user.derived.inference", inputs=["events.product_viewed.category"], retention="2y"
        ),
    }
    text = only(tmp_path, atoms)
    assert "atom 'computed.interest'" in text
    assert (
        "retention 2 years is longer than the 13 months of its input 'events.product_viewed.category'" in text
    )
    assert "shorten it to at most 13 months" in text


def test_computed_atom_with_a_laxer_category(tmp_path: Path) -> None:
    atoms = {
        "traits.health_interest": atom("user.sensitive.health", purposes=["analytics"]),
        "computed.wellness_fan": atom(
            "user.derived.inference", inputs=["traits.health_interest"], retention="6mo"
        ),
    }
    text = only(tmp_path, atoms)
    assert "atom 'computed.wellness_fan'" in text
    assert (
        "category 'user.derived.inference' is laxer than 'user.sensitive.health' (a special category)" in text
    )
    assert "declare category 'user.sensitive.health' or a stricter one" in text


def test_an_inference_may_declare_a_stricter_category(tmp_path: Path) -> None:
    atoms = {
        **PURCHASE,
        "computed.health_guess": atom(
            "user.sensitive.health",
            inputs=["events.product_viewed.category"],
            retention="6mo",
            purposes=["analytics"],
        ),
    }
    assert check_catalog_file(write_catalog(tmp_path, atoms)) == []


def test_computed_atom_with_an_unknown_input(tmp_path: Path) -> None:
    atoms = {**PURCHASE, "computed.favourite": atom(inputs=["events.product_veiwed.category"])}
    text = only(tmp_path, atoms)
    assert "atom 'computed.favourite'" in text
    assert "input 'events.product_veiwed.category' is not a declared atom" in text
    assert "did you mean" in text


def test_computed_atom_with_an_unknown_property(tmp_path: Path) -> None:
    atoms = {**PURCHASE, "computed.favourite": atom(inputs=["events.order_completed.products[].categroy"])}
    text = only(tmp_path, atoms)
    assert "'events.order_completed' has no property 'products[].categroy'" in text
    assert "did you mean 'products[].category'?" in text


def test_computed_atoms_in_a_cycle(tmp_path: Path) -> None:
    atoms = {"computed.a": atom(inputs=["computed.b"]), "computed.b": atom(inputs=["computed.a"])}
    found = problems(tmp_path, atoms)
    assert any("cycle: computed.a → computed.b → computed.a" in str(p) for p in found)


def test_computed_atom_without_inputs(tmp_path: Path) -> None:
    assert "list the atoms it is derived from" in only(tmp_path, {"computed.x": atom()})


def test_duplicate_atoms_name_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(
        "controller: {name: Shop, contact: a@b.example, establishment: DE}\n"
        "data_subjects: [{name: customers}]\n"
        "atoms:\n"
        "  events.product_viewed: {category: user.behavior.browsing, purposes: [analytics], retention: 30d}\n"
        "  events.product_viewed: {category: user.behavior.browsing, purposes: [analytics], retention: 1y}\n",
        encoding="utf-8",
    )
    (problem,) = check_catalog_file(path)
    assert str(problem) == (
        f"{path}:5: atom 'events.product_viewed': duplicate atom (first declared on line 4); "
        "keep one declaration: merge the two or rename one"
    )


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(
        "controller:\n  name: Shop\natoms:\n  traits.x: [unclosed\n  traits.y: {}\n", encoding="utf-8"
    )
    (problem,) = check_catalog_file(path)
    assert problem.line is not None
    assert problem.line >= 4
    assert str(problem).startswith(f"{path}:{problem.line}: malformed YAML")
    assert "fix the YAML syntax near line" in str(problem)


def test_loading_an_invalid_file_raises_with_every_problem(tmp_path: Path) -> None:
    path = write_catalog(tmp_path, {"traits.a": atom("user.nope"), "traits.b": atom(purposes=["nope"])})
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert len(caught.value.problems) == 2
    assert "demo.yaml" in caught.value.message
    assert "traits.a" in caught.value.message


@pytest.mark.parametrize(
    ("atoms", "expected"),
    [
        (
            {"traits.email": atom("user.contact.email")},
            "add 'identifier: true' so that it is encrypted at rest",
        ),
        ({"events.signed_in": atom("user.account", essential=True)}, "an essential event must list"),
        (
            {"traits.city": atom("user.location.imprecise", properties=["x"])},
            "'properties' applies only to event",
        ),
        ({"traits.phone": atom("user.contact.phone_number", identifier=True, level="1:many")}, "below 1:1"),
        (
            {"traits.city": atom("user.location.imprecise", recipients=["hostng"])},
            "unknown recipient 'hostng'",
        ),
        ({"traits.city": atom("user.location.imprecise", purpose=["x"])}, "remove it, or check its spelling"),
        ({"users.city": atom()}, "start it with 'context.'"),
        ({"events.Product Viewed": atom()}, "rename it to 'events.product_viewed'"),
        (
            {"events.signed_up": atom(properties={"email": {"category": "user.contact.email"}})},
            "identify trait",
        ),
        ({"context.email": atom("user.contact.email", identifier=True)}, "set 'retention: request'"),
        ({"events.signed_up": atom(event="Sign Up")}, "maps to 'events.sign_up'"),
        ({"traits.tier": atom(level="1:everyone")}, "unknown level '1:everyone'"),
        ({"traits.x": atom("user.behavior", source="event")}, "write 'source: trait'"),
    ],
)
def test_field_rules(tmp_path: Path, atoms: dict[str, Any], expected: str) -> None:
    text = only(tmp_path, atoms)
    assert f"atom '{next(iter(atoms))}'" in text
    assert expected in text


def test_a_recipient_outside_the_eea_needs_a_safeguard(tmp_path: Path) -> None:
    recipients = {"mailer": {"name": "Mailer Inc.", "country": "US"}}
    text = only(
        tmp_path,
        {"traits.city": atom("user.location.imprecise", recipients=["mailer"])},
        recipients=recipients,
    )
    assert "recipient 'mailer' is in US" in text
    assert "safeguard" in text


def test_custom_categories_inherit_from_their_parent(tmp_path: Path) -> None:
    categories = {"user.sensitive.health.mental": {"parent": "user.sensitive.health"}}
    atoms = {"traits.mood": atom("user.sensitive.health.mental", purposes=["personalization.individual"])}
    text = only(tmp_path, atoms, categories=categories)
    assert "is a special category" in text
    misplaced = {"user.wishlist": {"parent": "user.behavior"}}
    text = only(tmp_path, {"traits.city": atom("user.location.imprecise")}, categories=misplaced)
    assert "rename it to 'user.behavior.wishlist'" in text


def test_a_missing_section_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text("atoms: {traits.x: {}}\n", encoding="utf-8")
    found = check_catalog_file(path)
    assert any("'controller'" in str(p) for p in found)


def test_an_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    (problem,) = check_catalog_file(tmp_path / "missing.yaml")
    assert "missing.yaml" in str(problem)
    assert "cannot read" in str(problem)
