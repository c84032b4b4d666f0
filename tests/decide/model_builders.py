"""Small builders for the decision model's tests: specs with sensible defaults, an actor, a time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from tactful import main
from tactful.catalog.loader import load_catalog
from tactful.catalog.model import Catalog
from tactful.decide.schemas import Actor, AudienceCreate, ExperienceCreate, PlacementCreate

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
ACTOR = Actor.of_key(uuid.UUID("00000000-0000-4000-8000-000000000001"))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@cache
def demo_catalog() -> Catalog:
    return load_catalog(main.default_catalog_path())


def placement(key: str = "home_hero", channel: str = "web", **fields: Any) -> PlacementCreate:
    content = {"subject": "Hello", "body": [{"text": "Hi"}]} if channel == "email" else {"headline": "Hi"}
    spec: dict[str, Any] = {"key": key, "channel": channel, "default": {"content": content}}
    return PlacementCreate.model_validate(spec | fields)


def audience(key: str = "sweden", **fields: Any) -> AudienceCreate:
    spec = {"key": key, "name": "Visitors from Sweden", "condition": {"context.location.country": "SE"}}
    return AudienceCreate.model_validate(spec | fields)


def variation(key: str, weight: float = 1.0, **content: Any) -> dict[str, Any]:
    return {"key": key, "weight": weight, "content": content or {"headline": f"Variation {key}"}}


def experience(key: str = "spring", placement: str = "home_hero", **fields: Any) -> ExperienceCreate:
    spec: dict[str, Any] = {"key": key, "placement": placement, "variations": [variation("a")]}
    return ExperienceCreate.model_validate(spec | fields)
