"""Dropped fields are counted under their own name only when it looks like a field name: a name
chosen by a sender can carry personal data, and the counters belong to no subject."""

from __future__ import annotations

import re
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tactful.catalog.filtering import DECISION_ID
from tactful.collect import service as collect_service
from tactful.collect import store
from tactful.collect.schemas import Source, Status
from tactful.crypto import Keystore
from tests.collect.builders import LIMITS, T0, open_policy, small_catalog, track

_LEAKS = re.compile(r"@|[0-9]{6}")

segments = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}(\[\])?", fullmatch=True)
plausible = st.lists(segments, min_size=1, max_size=4).map(".".join)
anything = st.text(max_size=80) | st.emails() | st.from_regex(r"[a-z]{1,8}[0-9]{6,12}", fullmatch=True)
paths = plausible | anything | st.tuples(plausible, anything).map(".".join)


@given(path=paths)
def test_no_counted_name_ever_holds_an_address_or_a_long_number(path: str) -> None:
    name = store.field_name(path)
    assert not _LEAKS.search(name)
    assert name in (path, store.UNNAMED_FIELD)
    assert len(name) <= store.MAX_FIELD_NAME


@given(path=plausible)
def test_plausible_field_names_are_counted_under_their_own_name(path: str) -> None:
    assert store.field_name(path) == (store.UNNAMED_FIELD if _LEAKS.search(path) else path)


def test_the_examples_that_motivate_the_rule() -> None:
    assert store.field_name("properties.color") == "properties.color"
    assert store.field_name("properties.products[].size") == "properties.products[].size"
    assert store.field_name("context.utm_2024") == "context.utm_2024"
    for leaky in (
        "properties.ada@example.com",
        "traits.phone_4915112345678",
        "properties.+49 151 1234",
        "properties.",
        "properties.x" * 30,
        "properties.1st",
    ):
        assert store.field_name(leaky) == store.UNNAMED_FIELD, leaky


# What the small catalog keeps of a Product Viewed event's properties (and the decision id, always).
_DECLARED = {p.name for p in small_catalog().atom("events.product_viewed").properties} | {DECISION_ID}
names_of_properties = (
    segments
    | st.from_regex(r"[a-z]{1,10}@[a-z]{1,10}", fullmatch=True)  # an address, as a sender's key
    | st.from_regex(r"[a-z]{1,8}[0-9]{6,12}", fullmatch=True)
    | st.text(st.characters(blacklist_characters=".", blacklist_categories=("Cs",)), min_size=1, max_size=30)
).filter(lambda name: "." not in name and name not in _DECLARED)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=25)
@given(names=st.lists(names_of_properties, min_size=1, max_size=6, unique=True))
def test_ingested_properties_never_put_a_leaky_name_in_the_counters(
    session: Session, keystore: Keystore, names: list[str]
) -> None:
    message = track(properties=dict.fromkeys(names, 1))
    [result] = collect_service.ingest(
        session,
        keystore=keystore,
        messages=[message],
        source=Source(write_key_id=uuid.UUID(int=2)),
        at=T0,
        limits=LIMITS,
        policy=open_policy(),
    )
    if result.status is Status.QUARANTINED:  # a name with NUL or a lone surrogate
        return
    assert result.status is Status.STORED
    dropped = collect_service.ingest_stats(session).dropped_fields
    assert not any(_LEAKS.search(name) for name in dropped)
    expected = {store.field_name(f"properties.{n}") for n in names}
    assert expected <= set(dropped)
