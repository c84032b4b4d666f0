"""Every table of the main database, imported in one place for Alembic and the store-registry test.

Alembic's environment calls `import_all_models()` so that autogenerate sees the whole schema. It sits
outside the layer picture on purpose: it imports models only, and nothing imports it but migrations
and tests.
"""

from __future__ import annotations

import importlib

MODEL_MODULES: tuple[str, ...] = (
    "tactful.audit.models",
    "tactful.keys.models",
    "tactful.profiles.models",
    "tactful.collect.models",
    "tactful.consent.models",
)


def import_all_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)
