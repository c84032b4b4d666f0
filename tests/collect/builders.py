"""Builders for collection tests: a small catalog stand-in, messages, and a fresh database."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.profiles.builders import T0, Atom

SYSTEM_FIELDS = frozenset({"messageId", "type", "event", "userId", "anonymousId", "previousId", "timestamp"})


@dataclass(frozen=True)
class FilterResult:
    kept: dict[str, Any]
    dropped: tuple[str, ...]
    redacted: tuple[str, ...] = ()


def _filter(
    value: Mapping[str, Any], prefix: str, declared: frozenset[str], dropped: list[str]
) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}{key}"
        if path in declared:
            kept[key] = item
        elif isinstance(item, dict) and any(d.startswith(path + ".") for d in declared):
            kept[key] = _filter(item, path + ".", declared, dropped)
        else:
            dropped.append(path)
    return kept


@dataclass(frozen=True)
class StandInCatalog:
    """Declares a handful of fields the way the demo catalog does; everything else is dropped."""

    declared: frozenset[str] = frozenset(
        {
            "groupId",
            "name",
            "category",
            "properties.product_id",
            "properties.category",
            "properties.price",
            "properties.query",
            "properties.path",
            "properties.url",
            "properties.title",
            "properties.decision_id",
            "traits.first_name",
            "traits.email",
            "traits.age_range",
            "context.page.url",
            "context.traits.email",
            "context.traits.age_range",
            "context.locale",
            "context.library.name",
            "context.library.version",
        }
    )
    trait_atoms: Mapping[str, Atom] = field(
        default_factory=lambda: {
            "first_name": Atom("traits.first_name", "user.name", identifier=True),
            "email": Atom("traits.email", "user.contact.email", identifier=True),
            "age_range": Atom("traits.age_range", "user.demographic.age_range"),
        }
    )
    atoms: Mapping[str, Atom] = field(default_factory=dict)

    def filter_message(self, message: Mapping[str, Any]) -> FilterResult:
        dropped: list[str] = []
        kept = {k: v for k, v in message.items() if k in SYSTEM_FIELDS}
        rest = {k: v for k, v in message.items() if k not in SYSTEM_FIELDS}
        kept.update(_filter(rest, "", self.declared, dropped))
        return FilterResult(kept, tuple(dropped))


def uid(label: str = "u") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


def track(event: str = "Product Viewed", *, at: datetime = T0, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "event": event,
        "anonymousId": uid("anon"),
        "messageId": uid("msg"),
        "timestamp": at.isoformat(),
        "properties": {"product_id": "p-1", "category": "books"},
    }
    message.update(extra)
    return message


def identify(*, at: datetime = T0, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "identify",
        "userId": uid("user"),
        "messageId": uid("msg"),
        "timestamp": at.isoformat(),
        "traits": {"first_name": "Ada", "age_range": "25-34"},
    }
    message.update(extra)
    return message
