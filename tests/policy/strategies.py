"""Hypothesis strategies for the policy invariants: random catalogs, ledgers, facts and signals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from tactful.catalog.model import Catalog
from tactful.consent.fold import ConsentAction, ConsentEvent
from tactful.policy import CCPA, GDPR, ConsentSource, Regime, RequestSignals, SubjectFacts, regime_from_config
from tactful.types import Purpose
from tests.policy.builders import catalog_from

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
AT = T0 + timedelta(days=2)

# name, category, extra fields (every special atom carries explicit consent, as the catalog demands)
TEMPLATES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("context.location.country", "user.location.imprecise", {"retention": "request"}),
    ("context.locale", "user.preference.language", {"retention": "request"}),
    ("context.device.type", "user.device", {}),
    ("context.page.path", "user.behavior.browsing", {"device_identifier": True}),
    ("context.location.latitude", "user.location.precise", {"retention": "request"}),
    ("context.ip", "user.device.ip_address", {"retention": "request"}),
    ("traits.age_range", "user.demographic.age_range", {}),
    ("traits.first_name", "user.name", {"identifier": True}),
    ("traits.email", "user.contact.email", {"identifier": True}),
    ("traits.health", "user.sensitive.health", {"explicit_consent": True}),
    ("traits.religion", "user.sensitive.religion", {"explicit_consent": True}),
    ("traits.company", "user.workplace", {}),
    ("events.product_viewed", "user.behavior.browsing", {}),
    ("events.order_completed", "user.behavior.purchase", {}),
    ("events.symptom_search", "user.sensitive.health", {"explicit_consent": True}),
)
PURPOSES = tuple(Purpose)
EXPLICIT_NAMES = (
    "user.sensitive.health",
    "user.sensitive.religion",
    "user.sensitive",
    "significant_decisions",
    "special_feature_1",
)
CONTRACTUAL = regime_from_config({"name": "contractual", "default_basis": "contract"})
REGIMES: tuple[Regime, ...] = (GDPR, CCPA, CONTRACTUAL)
INSTANTS = tuple(T0 + timedelta(hours=h) for h in range(0, 60, 3))


@st.composite
def catalogs(draw: st.DrawFn) -> Catalog:
    picked = draw(
        st.lists(st.integers(0, len(TEMPLATES) - 1), min_size=1, max_size=len(TEMPLATES), unique=True)
    )
    chosen = [TEMPLATES[i] for i in sorted(picked)]
    atoms: dict[str, dict[str, Any]] = {}
    for name, category, extra in chosen:
        purposes = draw(st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=4, unique=True))
        atoms[name] = {
            "category": category,
            "purposes": [p.value for p in purposes],
            "retention": "30d",
            **extra,
        }
    stored = [n for n, spec in atoms.items() if spec["retention"] != "request" and not spec.get("identifier")]
    for i in range(draw(st.integers(0, 3)) if stored else 0):
        inputs = draw(st.lists(st.sampled_from(stored), min_size=1, max_size=3, unique=True))
        purposes = draw(st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=3, unique=True))
        spec: dict[str, Any] = {
            "inputs": inputs,
            "purposes": [p.value for p in purposes],
            "explicit_consent": True,
        }
        if draw(st.booleans()):
            spec["category"] = "user.sensitive.health"
        atoms[f"computed.c{i}"] = spec
    return catalog_from({"atoms": atoms})


@st.composite
def consent_events(draw: st.DrawFn, *, instants: tuple[datetime, ...] = INSTANTS) -> ConsentEvent:
    kind = draw(st.sampled_from(("purpose", "purpose", "purpose", "explicit", "parental", "interest")))
    action = draw(st.sampled_from(tuple(ConsentAction)))
    at = draw(st.sampled_from(instants))
    source = draw(st.sampled_from(tuple(ConsentSource)))
    sequence = draw(st.integers(0, 3))
    if kind == "purpose":
        return ConsentEvent(action, at, source, purpose=draw(st.sampled_from(PURPOSES)), sequence=sequence)
    if kind == "explicit":
        return ConsentEvent(
            action, at, source, explicit=draw(st.sampled_from(EXPLICIT_NAMES)), sequence=sequence
        )
    if kind == "parental":
        method = draw(st.sampled_from((None, "credit_card", "signed_form")))
        return ConsentEvent(action, at, source, parental=True, method=method, sequence=sequence)
    return ConsentEvent(action, at, source, legitimate_interest=True, sequence=sequence)


def _with_grants(events: list[ConsentEvent], base: bool) -> list[ConsentEvent]:
    # Random ledgers seldom grant every purpose; half of them start from a full grant, so that the
    # upper levels (and the special-category atoms there) are reached often.
    if not base:
        return events
    start = [ConsentEvent(ConsentAction.GRANTED, T0, ConsentSource.BANNER, purpose=p) for p in PURPOSES]
    return start + events


ledgers = st.builds(_with_grants, st.lists(consent_events(), max_size=20), st.booleans())
_rarely = st.sampled_from((False, False, False, True))


@st.composite
def facts(draw: st.DrawFn) -> SubjectFacts:
    return SubjectFacts(
        age=draw(st.none() | st.integers(0, 40) | st.integers(18, 60)),
        minor=draw(st.sampled_from((None, None, True, False))),
        objection=draw(_rarely),
        restriction=draw(_rarely),
        limit_sensitive=draw(_rarely),
    )


signals = st.builds(RequestSignals, gpc=_rarely)
regime_sets = st.lists(st.sampled_from(REGIMES), min_size=1, max_size=3, unique=True)
