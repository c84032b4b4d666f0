"""Redactions and withheld fields are counted in the ingestion counters, under names that fit their
column whatever the length of a catalog's field paths, and add up across requests."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from tactful.catalog.model import Catalog
from tactful.collect import service as collect_service
from tactful.collect import store
from tactful.collect.models import Event, IngestCounter
from tactful.collect.schemas import Source
from tactful.db import Database
from tests.catalog.builders import atom, build
from tests.collect.builders import LIMITS, T0, policy_context, track, uid

SEGMENT = st.from_regex(r"\A[a-z_]{1,40}\Z")


@given(prefix=st.sampled_from(["redacted:email:", "redacted:url_query:", "withheld:"]),
       path=st.lists(SEGMENT, min_size=1, max_size=6).map(".".join))  # fmt: skip
def test_counter_names_fit_their_column_and_keep_the_fields_end(prefix: str, path: str) -> None:
    name = store.counter_name(prefix, path)
    assert len(name) <= store.MAX_COUNTER_NAME
    assert name.startswith(prefix)
    assert name == prefix + path or (path.endswith(name[len(prefix) + 1 :]) and len(prefix + path) > 64)


def long_catalog(tmp_path: Path) -> Catalog:
    deep = "properties." + ".".join(["a_rather_long_section_name"] * 3)
    return build(
        tmp_path,
        {"events.reviewed": atom(properties={deep.removeprefix("properties."): {"text": "free"}})},
    )


def test_a_long_text_field_is_counted_on_every_backend(
    fresh_db: Database, tmp_path: Path, keystore: object
) -> None:
    policy = policy_context(long_catalog(tmp_path))
    section = {
        "a_rather_long_section_name": {"a_rather_long_section_name": {"a_rather_long_section_name": ""}}
    }
    deep = section["a_rather_long_section_name"]["a_rather_long_section_name"]
    deep["a_rather_long_section_name"] = "write to ada@example.com or bob@example.com"
    granted = {"consent": {"categoryPreferences": {"analytics": True}}}
    message = track("Reviewed", anonymousId=uid("anon"), properties=section, context=granted)
    for minutes in (0, 1):
        with fresh_db.session() as session:
            collect_service.ingest(
                session, keystore=keystore, messages=[dict(message, messageId=uid("msg"))],
                source=Source(write_key_id=uuid.UUID(int=5)), at=T0 + timedelta(minutes=minutes),
                limits=LIMITS, policy=policy,
            )  # fmt: skip
    with fresh_db.session() as session:
        stats = collect_service.ingest_stats(session)
        names = session.scalars(select(IngestCounter.name)).all()
        stored = session.scalars(select(Event.properties)).all()
    [(name, count)] = stats.redacted.items()
    assert count == 4  # two addresses in each of two events
    assert name.startswith("email:")
    assert name.endswith("a_rather_long_section_name")
    assert all(len(n) <= store.MAX_COUNTER_NAME for n in names)
    assert all("example.com" not in str(properties) for properties in stored)
