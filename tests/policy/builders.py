"""Small builders for policy tests: catalogs from fragments, ledgers from short specs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import yaml

from tactful.catalog.loader import parse_catalog
from tactful.catalog.model import Catalog
from tactful.consent.fold import ConsentAction, ConsentEvent
from tactful.policy import CCPA, GDPR, ConsentSource, Regime, regime_from_config
from tactful.types import Purpose

CONTROLLER = {"name": "Test Shop", "contact": "privacy@shop.example.com", "establishment": "DE"}


def catalog_from(fragment: Mapping[str, Any]) -> Catalog:
    """A catalog from the `atoms:` (and optional `categories:`) sections of a catalog file."""
    document = {"controller": CONTROLLER, "data_subjects": [{"name": "visitors"}], **fragment}
    catalog, problems = parse_catalog(yaml.safe_dump(document, sort_keys=False))
    assert catalog is not None, "\n".join(str(p) for p in problems)
    return catalog


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def regime(spec: str | Mapping[str, Any]) -> Regime:
    if isinstance(spec, str):
        return {"gdpr": GDPR, "ccpa": CCPA}[spec]
    return regime_from_config(spec)


def event(spec: Mapping[str, Any], *, default_at: str, default_source: str) -> ConsentEvent:
    return ConsentEvent(
        action=ConsentAction(spec["action"]),
        at=when(spec.get("at", default_at)),
        source=ConsentSource(spec.get("source", default_source)),
        purpose=Purpose(spec["purpose"]) if "purpose" in spec else None,
        explicit=spec.get("explicit"),
        parental=bool(spec.get("parental", False)),
        legitimate_interest=bool(spec.get("legitimate_interest", False)),
        method=spec.get("method"),
        proof=spec.get("proof", {"request_id": "req-test"}),
        sequence=int(spec.get("sequence", 0)),
    )


def grants(
    purposes: Iterable[Purpose | str], at: datetime, source: ConsentSource = ConsentSource.BANNER
) -> list[ConsentEvent]:
    return [ConsentEvent(ConsentAction.GRANTED, at, source, purpose=Purpose(p)) for p in purposes]


def birthdate(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None
