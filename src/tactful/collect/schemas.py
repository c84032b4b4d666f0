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
    trusted: bool = False
    """A server-scope key sent it: its word about user ids is proof (DESIGN §4)."""
    subject_token: str | None = field(default=None, repr=False)
    """The `X-Tactful-Subject-Token` header: proves the user id of each message that names it."""


class Refusal(StrEnum):
    """What a public key's word could not do without proof, each a reason code of its own."""

    LINK_UNVERIFIED = "link_unverified"
    """An anonymous id claimed for a user id: kept as a pending link, nothing merged."""
    MERGE_NEEDS_PROOF = "merge_needs_proof"
    """Two user ids claimed to be one person: nothing merged."""
    CONSENT_GRANT = "subject_token_required"
    """A grant for an identified person (or an anonymous id linked to one): not recorded."""
    IDENTIFIER_TRAIT = "identifier_needs_proof"
    """A direct identifier (e-mail, name, phone) written for an identified person: not stored."""
    AGE_CLAIM = "age_needs_proof"
    """An age that would lift an age protection of an identified person: not stored."""
    PLACE_CLAIM = "place_needs_proof"
    """A country or region that would take a regime away from an identified person: not stored."""


class Status(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"
    SUPPRESSED = "suppressed"
    DROPPED = "dropped"
    """The catalog does not declare the event (its name, or its type): not stored, counted."""


@dataclass(frozen=True)
class EventResult:
    """What became of one received message (in the order received)."""

    message_id: str | None
    status: Status
    reason: Reason | None = None
    detail: str | None = None
    refused: tuple[str, ...] = ()
    """What the message asked that its key may not do without proof (`Refusal` codes)."""
    undeclared: bool = False
    """The catalog does not declare the message's event, whatever became of it (a duplicate, an
    erased subject's replay): a fact of the message and the catalog, which public answers show."""


@dataclass(frozen=True)
class IngestStats:
    """Running totals. `received == stored + deduplicated + quarantined + suppressed + dropped`, exactly."""

    received: int = 0
    stored: int = 0
    deduplicated: int = 0
    quarantined: int = 0
    suppressed: int = 0
    dropped: int = 0
    """Events the catalog does not declare (`dropped_by_reason`); not fields, see `dropped_fields`."""
    quarantined_by_reason: Mapping[str, int] = field(default_factory=dict)
    suppressed_by_reason: Mapping[str, int] = field(default_factory=dict)
    dropped_by_reason: Mapping[str, int] = field(default_factory=dict)
    refused_by_reason: Mapping[str, int] = field(default_factory=dict)
    """Messages whose key's word was not enough for part of what they asked (`Refusal` codes)."""
    dropped_fields: Mapping[str, int] = field(default_factory=dict)
    redacted: Mapping[str, int] = field(default_factory=dict)
    """Removals from text fields by `<what>:<field>` (`email:properties.query`)."""
    withheld_fields: Mapping[str, int] = field(default_factory=dict)
    """Declared fields left out of stored events because none of their purposes allowed them."""
    after_erasure: int = 0
    """Messages naming an erased identifier, sent after its erasure: each began a new, empty subject
    (those sent before are `suppressed_by_reason["erased_subject"]`)."""

    @property
    def balanced(self) -> bool:
        outcomes = self.stored + self.deduplicated + self.quarantined + self.suppressed + self.dropped
        return self.received == outcomes


class FilterOutcome(Protocol):
    @property
    def kept(self) -> dict[str, Any]: ...

    @property
    def dropped(self) -> tuple[str, ...]: ...

    @property
    def redacted(self) -> tuple[str, ...]: ...

    @property
    def atom(self) -> str | None: ...


class CollectCatalog(CatalogView, Protocol):
    """What collection reads of the catalog: its precompiled field filter (and what profiles read)."""

    def filter_message(self, message: Mapping[str, Any]) -> FilterOutcome: ...
