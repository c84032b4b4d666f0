"""Property tests of the per-field rule (invariant 10, "each stored field is kept only for a purpose
this person's consent allows it for"): whatever the choices and the fields sent, no stored field
lacks a purpose the event is stored for, none that has one is lost, and after any refusal the same
holds of what is left. The pruning of nested context is compared with a plain reference."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.catalog.loader import load_catalog
from tactful.collect import service as collect_service
from tactful.collect import store
from tactful.collect.fields import _tree, _without
from tactful.collect.models import Event
from tactful.collect.schemas import Source
from tactful.config import PolicySettings
from tactful.consent.gatekeeper import PolicyContext
from tactful.consent.regimes import configured_regimes
from tactful.crypto import Keystore
from tactful.main import default_catalog_path
from tactful.types import Purpose
from tests.collect.builders import LIMITS, T0, track, uid

DEMO = load_catalog(default_catalog_path())
POLICY = PolicySettings()
GDPR = PolicyContext(DEMO, POLICY, configured_regimes(POLICY), store.withdrawal_hook(DEMO))
STORED_CONTEXT = {".".join(path): atom for path, atom in DEMO.stored_context}
CATEGORIES = ["analytics", "personalization", "personalization.segments", "personalization.behavioral"]
EVENTS = ["Product Viewed", "Order Completed", "Signed In", "Products Searched"]


def nested(paths: dict[str, Any]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path, value in paths.items():
        *parents, leaf = path.split(".")
        level = root
        for part in parents:
            level = level.setdefault(part, {})
        level[leaf] = value
    return root


def leaves(value: dict[str, Any], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for key, item in value.items():
        if isinstance(item, dict):
            found |= leaves(item, f"{prefix}{key}.")
        else:
            found.add(prefix + key)
    return found


def reference_without(value: dict[str, Any], paths: set[str]) -> dict[str, Any]:
    """The plain rule: keep every leaf not named, then rebuild (empty objects vanish)."""
    flat: dict[str, Any] = {}

    def walk(item: dict[str, Any], prefix: str) -> None:
        for key, inner in item.items():
            path = prefix + key
            if any(path == p or path.startswith(p + ".") for p in paths):
                continue
            if isinstance(inner, dict) and inner:
                walk(inner, path + ".")
            elif not isinstance(inner, dict):
                flat[path] = inner

    walk(value, "")
    return nested(flat)


SEGMENT = st.sampled_from(["a", "b", "c", "d"])
PATHS = st.lists(SEGMENT, min_size=1, max_size=3).map(".".join)


@given(present=st.dictionaries(PATHS, st.integers(), max_size=8), refused=st.sets(PATHS, max_size=5))
def test_pruning_matches_the_plain_rule(present: dict[str, int], refused: set[str]) -> None:
    # Paths where one is a prefix of another cannot both be leaves: keep the shorter.
    leaves_only = {p: v for p, v in present.items() if not any(q.startswith(p + ".") for q in present)}
    value = nested(leaves_only)
    before = copy.deepcopy(value)
    removed: list[str] = []
    pruned = _without(value, _tree(tuple(tuple(p.split(".")) for p in sorted(refused))), removed, "")
    assert pruned == reference_without(value, refused)
    assert value == before  # the filtered message is shared with the profile: never changed in place
    outermost = {q for q in refused if not any(q.startswith(r + ".") for r in refused)}
    assert sorted(removed) == sorted(q for q in outermost if q in _prefixes(value))


def _prefixes(value: dict[str, Any], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for key, item in value.items():
        found.add(prefix + key)
        if isinstance(item, dict):
            found |= _prefixes(item, f"{prefix}{key}.")
    return found


def declared(atom_purposes: frozenset[Purpose], row: list[str]) -> bool:
    return bool({p.value for p in atom_purposes} & set(row))


CONTEXT_VALUES = st.dictionaries(st.sampled_from(sorted(STORED_CONTEXT)), st.sampled_from(["x", "DE", "1.0"]))


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    granted=st.dictionaries(st.sampled_from(CATEGORIES), st.booleans()),
    refused=st.sets(st.sampled_from(CATEGORIES)),
    sent=st.lists(st.tuples(st.sampled_from(EVENTS), CONTEXT_VALUES), min_size=1, max_size=4),
)
def test_no_stored_field_lacks_a_purpose_and_none_that_has_one_is_lost(
    session: Session,
    keystore: Keystore,
    granted: dict[str, bool],
    refused: set[str],
    sent: list[tuple[str, dict[str, str]]],
) -> None:
    anon = uid("anon")
    choices = {"consent": {"categoryPreferences": granted}}
    messages = [track(name, anonymousId=anon, context={**nested(fields), **choices}) for name, fields in sent]
    ingest(session, keystore, messages, minutes=0)
    rows = stored(session, messages)
    contexts = {message_id: copy.deepcopy(row.context) for message_id, row in rows.items()}
    for message, (_, fields) in zip(messages, sent, strict=True):
        row = rows.get(message["messageId"])
        if row is None:
            continue  # suppressed: no purpose at all
        assert row.purposes
        kept = leaves(row.context)
        for path in kept:
            assert declared(STORED_CONTEXT[path].purposes, row.purposes), (path, row.purposes)
        for path in fields:
            if declared(STORED_CONTEXT[path].purposes, row.purposes):
                assert path in kept, (path, row.purposes)

    withdrawal = {"consent": {"categoryPreferences": dict.fromkeys(refused, False)}}
    ingest(session, keystore, [track("Product Viewed", anonymousId=anon, context=withdrawal)], minutes=5)
    session.expire_all()
    for message_id, row in stored(session, messages).items():
        assert row.purposes
        for path in leaves(row.context):
            assert declared(STORED_CONTEXT[path].purposes, row.purposes), (path, row.purposes)
        for path in leaves(contexts[message_id]):
            if declared(STORED_CONTEXT[path].purposes, row.purposes):
                assert path in leaves(row.context), (path, row.purposes)


def stored(session: Session, messages: list[dict[str, Any]]) -> dict[str, Event]:
    wanted = [m["messageId"] for m in messages]
    return {row.message_id: row for row in session.scalars(select(Event).where(Event.message_id.in_(wanted)))}


def ingest(session: Session, keystore: Keystore, messages: list[dict[str, Any]], *, minutes: int) -> None:
    collect_service.ingest(
        session,
        keystore=keystore,
        messages=messages,
        source=Source(request_id="req-properties", trusted=True),
        at=T0 + timedelta(minutes=minutes),
        limits=LIMITS,
        policy=GDPR,
    )
