"""Small helpers for audit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import tactful.audit.models
import tactful.keys.models  # noqa: F401 - registers the tables on Base.metadata

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)
