"""Copy rules: the categories a catalog keeps out of rendered copy (`never_in_copy`)."""

from __future__ import annotations

from pathlib import Path

from tactful.catalog.loader import check_catalog_file
from tactful.catalog.model import DEFAULT_NEVER_IN_COPY
from tests.catalog.builders import atom, build, demo, write_catalog

ATOMS = {
    "context.location.latitude": atom("user.location.precise", purposes=["essential"], retention="request"),
    "traits.health_interest": atom(
        "user.sensitive.health", purposes=["marketing.email"], explicit_consent=True
    ),
    "traits.country": atom("user.location.imprecise"),
    "traits.email": atom("user.contact.email", identifier=True, copy_forbidden=True),
    "events.product_viewed": atom(
        properties={"category": None, "symptom": {"category": "user.sensitive.health"}}
    ),
}


def test_left_out_it_keeps_precise_location_and_special_categories_out_of_copy(tmp_path: Path) -> None:
    catalog = build(tmp_path, ATOMS)
    assert catalog.never_in_copy == DEFAULT_NEVER_IN_COPY
    assert catalog.copy_rule("user.location.precise") == "user.location.precise"
    assert catalog.copy_rule("user.sensitive.health") == "user.sensitive"
    assert catalog.copy_rule("user.location.imprecise") is None
    # The atom's flag, its category, or one of its properties' categories keeps it out.
    assert catalog.copy_forbidden == {
        "context.location.latitude",
        "traits.health_interest",
        "traits.email",
        "events.product_viewed",
    }


def test_an_entry_covers_the_catalogs_own_categories_below_it(tmp_path: Path) -> None:
    atoms = {"traits.back_pain": atom("user.sensitive.health.back", explicit_consent=True)}
    catalog = build(
        tmp_path,
        atoms,
        categories={"user.sensitive.health.back": {"parent": "user.sensitive.health"}},
        never_in_copy=["user.sensitive.health"],
    )
    assert catalog.copy_rule("user.sensitive.health.back") == "user.sensitive.health"
    assert catalog.copy_rule("user.sensitive.religion") is None
    assert catalog.copy_forbidden == {"traits.back_pain"}


def test_an_empty_list_lifts_the_rule_but_not_the_atoms_own_flags(tmp_path: Path) -> None:
    catalog = build(tmp_path, ATOMS, never_in_copy=[])
    assert catalog.never_in_copy == ()
    assert catalog.copy_forbidden == {"traits.email"}


def test_an_unknown_category_is_a_problem_with_a_suggestion(tmp_path: Path) -> None:
    path = write_catalog(tmp_path, ATOMS, never_in_copy=["user.location.precize", "user.sensitive.*"])
    problems = check_catalog_file(path)
    found = [str(p) for p in problems]
    assert len(found) == 2, found
    assert "unknown category 'user.location.precize'" in found[0]
    assert "did you mean 'user.location.precise'?" in found[0]
    assert "write 'user.sensitive': an entry covers every category below it" in found[1]
    line = path.read_text(encoding="utf-8").splitlines().index("never_in_copy:") + 1
    assert {p.line for p in problems} == {line}


def test_not_a_list_is_a_problem(tmp_path: Path) -> None:
    found = check_catalog_file(write_catalog(tmp_path, ATOMS, never_in_copy="user.sensitive"))
    assert [p.message for p in found if "never_in_copy" in p.message]


def test_the_demo_catalog_states_the_default_rule() -> None:
    catalog = demo()
    assert catalog.never_in_copy == ("user.location.precise", "user.sensitive")
    assert {"context.location.latitude", "traits.health_interest"} <= catalog.copy_forbidden
    assert "traits.first_name" not in catalog.copy_forbidden
