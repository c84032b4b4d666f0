"""Small builders for catalog tests: a minimal valid catalog written to a temporary directory."""

from __future__ import annotations

import importlib.resources
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tactful.catalog.loader import load_catalog
from tactful.catalog.model import Catalog

SECTIONS: dict[str, Any] = {
    "controller": {"name": "Example Shop", "contact": "privacy@shop.example.com", "establishment": "DE"},
    "data_subjects": [{"name": "customers"}],
}


def atom(category: str = "user.behavior.browsing", **fields: Any) -> dict[str, Any]:
    """One atom with sensible defaults; `fields` override or add (None removes a default)."""
    spec: dict[str, Any] = {"category": category, "purposes": ["analytics"], "retention": "13mo"}
    spec.update(fields)
    return {key: value for key, value in spec.items() if value is not None}


def write_catalog(
    directory: Path, atoms: dict[str, Any], *, name: str = "demo.yaml", **sections: Any
) -> Path:
    path = directory / name
    document = {**SECTIONS, **sections, "atoms": atoms}
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def build(directory: Path, atoms: dict[str, Any], **sections: Any) -> Catalog:
    return load_catalog(write_catalog(directory, atoms, **sections))


DEMO_PATH = str(importlib.resources.files("tactful.catalog") / "data" / "demo_shop.yaml")


@cache
def demo() -> Catalog:
    return load_catalog(DEMO_PATH)
