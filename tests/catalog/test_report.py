"""The Art. 30 records name every purpose, category and retention the catalog declares."""

from __future__ import annotations

import json
from pathlib import Path

from tactful.catalog.report import records_of_processing, render_records_markdown, technical_measures
from tactful.catalog.retention import describe_retention
from tests.catalog import builders
from tests.catalog.builders import build, demo


def test_the_records_cover_every_purpose_category_and_retention() -> None:
    catalog = demo()
    records = records_of_processing(catalog)
    json.dumps(records)  # JSON-able as it is
    activities = {a["purpose"]: a for a in records["activities"]}
    assert set(activities) == {p.value for p in catalog.purposes}
    for atom in catalog.atom_list:
        for purpose in atom.purposes:
            activity = activities[purpose.value]
            rows = {row["category"]: row for row in activity["data_categories"]}
            for category in atom.categories:
                assert atom.name in rows[category.name]["atoms"]
            listed = {a["name"]: a for a in activity["atoms"]}
            assert listed[atom.name]["retention"] == describe_retention(atom.retention, atom.retention_anchor)
            assert listed[atom.name]["retention_days"] == atom.retention.days
            assert activity["legal_basis"]
            assert activity["data_subjects"] == [s.name for s in catalog.data_subjects]


def test_the_records_name_controller_transfers_and_measures() -> None:
    records = records_of_processing(demo())
    assert records["controller"]["establishment"] == "DE"
    email = next(a for a in records["activities"] if a["purpose"] == "marketing.email")
    assert [t["country"] for t in email["transfers"]] == ["US"]
    assert "Art. 9(2)(a)" in email["legal_basis"]  # the health interest atom
    measures = " ".join(records["technical_measures"])
    assert "traits.email" in measures
    assert "encrypted at rest" in measures
    assert "context.ip" in measures
    assert "pseudonym" in measures


def test_the_markdown_has_a_section_per_purpose() -> None:
    catalog = demo()
    text = render_records_markdown(catalog)
    assert text.startswith("# Records of processing activities (GDPR Art. 30)")
    for purpose in catalog.purposes:
        assert f"## Purpose: `{purpose.value}`" in text
    for atom in catalog.atom_list:
        assert f"`{atom.category}`" in text
        assert f"`{atom.name}` ({describe_retention(atom.retention, atom.retention_anchor)})" in text
    assert "Technical and organisational measures" in text


def test_the_measures_say_which_expired_rows_are_anonymised(tmp_path: Path) -> None:
    [sweep] = [m for m in technical_measures(demo()) if "retention sweep" in m]
    assert "user.behavior.purchase" in sweep
    assert "anonymised" in sweep
    plain = build(tmp_path, {"events.signed_in": builders.atom("user.account")})
    [sweep] = [m for m in technical_measures(plain) if "retention sweep" in m]
    assert "anonymised" not in sweep
