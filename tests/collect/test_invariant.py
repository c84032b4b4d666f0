"""Invariant 10 as a property: over random mixes of good, repeated, conflicting and bad events and
consent choices carried by events, split into random requests, `received == stored + deduplicated +
quarantined + suppressed + dropped` exactly, and each event's result says where it went (and it went there).

The demo catalog under the default policy (GDPR): a visitor's browsing is stored only once a banner
choice carried by an event grants analytics, else suppressed (`no_purpose`); identify and alias link
identities (`essential`) and are always stored; a track the catalog does not declare is dropped
(`undeclared_event`) whatever the consent. A request's carried choices apply to all its events."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tactful.catalog.loader import load_catalog
from tactful.collect import service as collect_service
from tactful.collect.models import Event, Quarantine
from tactful.collect.schemas import IngestStats, Source
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.main import default_catalog_path
from tests.collect.builders import LIMITS, T0, demo_policy

CATALOG = load_catalog(default_catalog_path())

BAD = {
    "missing_identity": lambda: {"type": "track", "event": "x"},
    "invalid_type": lambda: {"type": "purchase", "userId": "u"},
    "not_an_object": lambda: ["track"],
    "invalid_field": lambda: {"type": "track", "userId": "u", "properties": "nope"},
    "event_too_large": lambda: {
        "type": "track",
        "event": "x",
        "userId": "u",
        "properties": {"b": "x" * 33_000},
    },
    "timestamp_out_of_range": lambda: {"type": "page", "userId": "u", "timestamp": "2999-01-01T00:00:00Z"},
    "nul": lambda: {"type": "track", "event": "x", "anonymousId": "a", "properties": {"q": "\u0000"}},
    "surrogate": lambda: {"type": "identify", "userId": "u", "traits": {"first_name": "\udc80"}},
}
EXPECTED_REASON = {
    "not_an_object": "invalid_type",
    "nul": "unstorable_value",
    "surrogate": "unstorable_value",
}

ops = st.one_of(
    st.tuples(
        st.just("good"),
        st.sampled_from(["track", "identify", "page", "alias", "group", "undeclared"]),
        st.integers(0, 3),
    ),
    st.tuples(st.just("repeat"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("retry"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("conflict"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("bad"), st.sampled_from(sorted(BAD)), st.just(0)),
    st.tuples(st.just("consent"), st.booleans(), st.integers(0, 3)),
)
PENDING = ("pending", None)
"""A first sighting: stored or suppressed, depending on the consent in force for its request."""


@dataclass
class Sent:
    message: object
    message_id: str | None = None
    version: int = 0
    who: int = 0
    kind: str = ""
    choice: bool | None = None


def _good(kind: str, who: int, run: str, n: int) -> dict[str, Any]:
    user, anonymous = f"{run}-user-{who}", f"{run}-anon-{who}"
    message: dict[str, Any] = {"type": kind, "messageId": f"{run}-m{n}", "timestamp": T0.isoformat()}
    if kind == "alias":
        message |= {"userId": user, "previousId": anonymous}
    elif kind == "identify":
        message |= {"userId": user, "anonymousId": anonymous, "traits": {"first_name": f"N{who}"}}
    else:
        message |= {"anonymousId": anonymous, "properties": {"product_id": f"p{n}", "color": "red"}}
    if kind == "track":
        message["event"] = "Product Viewed"
    if kind == "undeclared":
        message |= {"type": "track", "event": "Button Tapped"}
    if kind == "group":
        message["groupId"] = "g1"
    return message


def build(plan: list[tuple[str, Any, int]], run: str) -> tuple[list[Sent], list[tuple[str, str | None]]]:
    """The messages to send, and the outcome an independent model expects for each."""
    sent: list[Sent] = []
    goods: list[Sent] = []
    first_version: dict[str, int] = {}
    expected: list[tuple[str, str | None]] = []
    for n, (op, arg, who) in enumerate(plan):
        if op == "bad":
            message = BAD[arg]()
            if isinstance(message, dict):
                message["messageId"] = f"{run}-bad{n}"
            sent.append(Sent(message))
            expected.append(("quarantined", EXPECTED_REASON.get(arg, arg)))
            continue
        if op == "consent":
            message = _good("track", who, run, n)
            message["context"] = {"consent": {"categoryPreferences": {"analytics": arg}}}
            item = Sent(message, f"{run}-m{n}", n, who, "track", arg)
        elif op == "good" or not goods:
            kind = arg if op == "good" else "track"
            item = Sent(_good(kind, who, run, n), f"{run}-m{n}", n, who, kind)
        else:
            base = goods[arg % len(goods)]
            assert isinstance(base.message, dict)
            if op == "repeat":
                item = Sent(dict(base.message), base.message_id, base.version, base.who, base.kind)
            elif op == "retry":  # only transport fields change
                message = {**base.message, "sentAt": (T0 + timedelta(seconds=n)).isoformat()}
                library = {"name": "analytics-python", "version": str(n)}
                message["context"] = {**base.message.get("context", {}), "library": library}
                item = Sent(message, base.message_id, base.version, base.who, base.kind)
            else:
                changed = {**base.message, "properties": {"product_id": f"changed-{n}"}}
                item = Sent(changed, base.message_id, n, base.who, base.kind)
        assert item.message_id is not None
        seen = first_version.setdefault(item.message_id, item.version)
        if seen != item.version:
            expected.append(("quarantined", "duplicate_conflict"))
        elif sum(1 for s in sent if s.message_id == item.message_id) == 0:
            expected.append(PENDING)
        else:
            expected.append(("duplicate", None))
        sent.append(item)
        goods.append(item)
    return sent, expected


def settle(
    sent: list[Sent], expected: list[tuple[str, str | None]], parts: list[slice]
) -> list[tuple[str, str | None]]:
    """First sightings resolved request by request: the analytics choices first sightings carry
    apply (the last one wins) before any event of the request is stored or suppressed."""
    granted: dict[int, bool] = {}
    settled = list(expected)
    for part in parts:
        for index in range(len(sent))[part]:
            if settled[index] == PENDING and sent[index].choice is not None:
                granted[sent[index].who] = bool(sent[index].choice)
        for index in range(len(sent))[part]:
            if settled[index] == PENDING:
                item = sent[index]
                linking = item.kind in ("identify", "alias")
                stored = linking or granted.get(item.who, False)
                if item.kind == "undeclared":
                    settled[index] = ("dropped", "undeclared_event")
                else:
                    settled[index] = ("stored", None) if stored else ("suppressed", "no_purpose")
    return settled


def withdrawn_later(
    sent: list[Sent], results: list[tuple[str, str | None]], parts: list[slice]
) -> set[tuple[int, int, str]]:
    """(request, subject, kind) of the stored events a later withdrawal removed: a refusal that a
    later request's new event carries purges the subject's events stored only for analytics (an
    identify or alias is stored for `essential` and stays)."""
    refused_in = {
        turn
        for turn, part in enumerate(parts)
        for index in range(len(sent))[part]
        if sent[index].choice is False and results[index][0] in ("stored", "suppressed")
    }
    gone: set[tuple[int, int, str]] = set()
    for turn, part in enumerate(parts):
        for index in range(len(sent))[part]:
            item = sent[index]
            later = any(
                t > turn and sent[i].who == item.who and sent[i].choice is False
                for t in refused_in
                for i in range(len(sent))[parts[t]]
            )
            if later and item.kind not in ("identify", "alias"):
                gone.add((turn, item.who, item.kind))
    return gone


def totals(db: Database) -> IngestStats:
    with db.session() as session:
        return collect_service.ingest_stats(session)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
@given(plan=st.lists(ops, min_size=1, max_size=30), cuts=st.lists(st.integers(1, 8), min_size=1, max_size=10))
def test_every_received_event_is_accounted_for_exactly(
    fresh_db: Database, keystore: Keystore, plan: list[tuple[str, Any, int]], cuts: list[int]
) -> None:
    run = uuid.uuid4().hex[:10]
    sent, expected = build(plan, run)
    before = totals(fresh_db)
    results: list[tuple[str, str | None]] = []
    requests: list[tuple[str, slice]] = []
    start, turn = 0, 0
    while start < len(sent):
        end = start + cuts[turn % len(cuts)]
        request_id = f"{run}-r{turn}"
        with fresh_db.session() as session:
            answers = collect_service.ingest(
                session,
                keystore=keystore,
                messages=[s.message for s in sent[start:end]],
                source=Source(write_key_id=uuid.UUID(int=7), request_id=request_id, trusted=True),
                at=T0,
                limits=LIMITS,
                policy=demo_policy(),
            )
        results += [(str(a.status), None if a.reason is None else str(a.reason)) for a in answers]
        requests.append((request_id, slice(start, end)))
        start, turn = end, turn + 1

    expected = settle(sent, expected, [part for _, part in requests])
    assert results == expected

    after = totals(fresh_db)
    outcomes = Counter(status for status, _ in results)
    delta = {
        "received": after.received - before.received,
        "stored": after.stored - before.stored,
        "deduplicated": after.deduplicated - before.deduplicated,
        "quarantined": after.quarantined - before.quarantined,
        "suppressed": after.suppressed - before.suppressed,
        "dropped": after.dropped - before.dropped,
    }
    assert delta == {
        "received": len(sent),
        "stored": outcomes["stored"],
        "deduplicated": outcomes["duplicate"],
        "quarantined": outcomes["quarantined"],
        "suppressed": outcomes["suppressed"],
        "dropped": outcomes["dropped"],
    }
    assert after.balanced
    reasons = Counter(reason for status, reason in results if status == "quarantined")
    assert {
        r: after.quarantined_by_reason.get(r, 0) - before.quarantined_by_reason.get(r, 0) for r in reasons
    } == (dict(reasons))
    suppressed = sum(1 for status, _ in results if status == "suppressed")
    assert after.suppressed_by_reason.get("no_purpose", 0) - before.suppressed_by_reason.get(
        "no_purpose", 0
    ) == (suppressed)
    dropped = after.dropped_by_reason.get("undeclared_event", 0) - before.dropped_by_reason.get(
        "undeclared_event", 0
    )
    assert dropped == outcomes["dropped"]

    purged = withdrawn_later(sent, results, [part for _, part in requests])
    with fresh_db.session() as session:
        for turn, (request_id, part) in enumerate(requests):
            rows = session.scalars(select(Event.message_id).where(Event.request_id == request_id)).all()
            held = session.scalars(select(Quarantine.reason).where(Quarantine.request_id == request_id)).all()
            mine = list(zip(sent[part], results[part], strict=True))
            kept = [
                s for s, (status, _) in mine if status == "stored" and (turn, s.who, s.kind) not in purged
            ]
            assert sorted(rows) == sorted(str(s.message_id) for s in kept)
            assert Counter(held) == Counter(reason for _, (status, reason) in mine if status == "quarantined")
