"""The drift report: dropped-field counts ordered most frequent first, aggregates marked."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tactful.catalog.drift import OTHER_FIELDS, UNNAMED_FIELD, FieldDrift, drift
from tactful.collect import store


def test_fields_come_most_frequent_first_then_by_name_and_zeros_are_left_out() -> None:
    report = drift({"properties.color": 3, "context.campaign.id": 7, "properties.size": 3, "traits.x": 0})
    assert report.fields == (
        FieldDrift("context.campaign.id", 7),
        FieldDrift("properties.color", 3),
        FieldDrift("properties.size", 3),
    )
    assert report.total == 13


def test_aggregates_are_marked_as_standing_for_several_fields() -> None:
    report = drift({UNNAMED_FIELD: 2, OTHER_FIELDS: 1, "properties.color": 1})
    assert {f.field: f.aggregate for f in report.fields} == {
        UNNAMED_FIELD: True,
        OTHER_FIELDS: True,
        "properties.color": False,
    }
    # Collection counts under the very names the report recognises.
    assert (store.UNNAMED_FIELD, store.OTHER_FIELDS) == (UNNAMED_FIELD, OTHER_FIELDS)


@given(st.dictionaries(st.text(min_size=1, max_size=20), st.integers(0, 10_000)))
def test_the_report_keeps_every_counted_field_and_its_count(counts: dict[str, int]) -> None:
    report = drift(counts)
    assert {f.field: f.count for f in report.fields} == {k: n for k, n in counts.items() if n}
    assert report.total == sum(counts.values())
    ranks = [(-f.count, f.field) for f in report.fields]
    assert ranks == sorted(ranks)
