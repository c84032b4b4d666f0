"""Engine types of collection: where a request came from, what happened to each event, the totals, and
the narrow view of the catalog that collection depends on."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from tactful.collect.validate import Reason
from tactful.profiles.schemas import CatalogView


@dataclass(frozen=True)
class Source:
    """Who sent a request: the write key, the request's `Sec-GPC` header, the request id (for proof)."""

    write_key_id: uuid.UUID | None = None
    gpc: bool = False
    request_id: str | None = None


class Status(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"
    SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class EventResult:
    """What became of one received message (in the order received)."""

    message_id: str | None
    status: Status
    reason: Reason | None = None
    detail: str | None = None


@dataclass(frozen=True)
class IngestStats:
    """Running totals. `received == stored + deduplicated + quarantined + suppressed`, exactly."""

    received: int = 0
    stored: int = 0
    deduplicated: int = 0
    quarantined: int = 0
    suppressed: int = 0
    quarantined_by_reason: Mapping[str, int] = field(default_factory=dict)
    suppressed_by_reason: Mapping[str, int] = field(default_factory=dict)
    dropped_fields: Mapping[str, int] = field(default_factory=dict)
    redacted: Mapping[str, int] = field(default_factory=dict)
    """Removals from text fields by `<what>:<field>` (`email:properties.query`)."""
    withheld_fields: Mapping[str, int] = field(default_factory=dict)
    """Declared fields left out of stored events because none of their purposes allowed them."""

    @property
    def balanced(self) -> bool:
        return self.received == self.stored + self.deduplicated + self.quarantined + self.suppressed


class FilterOutcome(Protocol):
    @property
    def kept(self) -> dict[str, Any]: ...

    @property
    def dropped(self) -> tuple[str, ...]: ...

    @property
    def redacted(self) -> tuple[str, ...]: ...


class CollectCatalog(CatalogView, Protocol):
    """What collection reads of the catalog: its precompiled field filter (and what profiles read)."""

    def filter_message(self, message: Mapping[str, Any]) -> FilterOutcome: ...
