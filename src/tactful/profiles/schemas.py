"""Engine types of the profiles domain: results of resolution and trait updates, the snapshot read
by exports and the policy gate, and the narrow view of the catalog that profiles depend on."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol


class IdentityKind(StrEnum):
    ANONYMOUS_ID = "anonymous_id"
    USER_ID = "user_id"


@dataclass(frozen=True)
class Merge:
    """`source` was merged into `target`; callers move their own rows the same way."""

    source: uuid.UUID
    target: uuid.UUID


@dataclass(frozen=True)
class Resolution:
    subject_id: uuid.UUID
    created: bool
    merges: tuple[Merge, ...] = ()


@dataclass(frozen=True)
class TraitsResult:
    """What `apply_traits` did, by atom name. `ignored` are trait names the catalog does not store."""

    stored: tuple[str, ...] = ()
    encrypted: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class IdentityValue:
    kind: IdentityKind
    value: str
    created_at: datetime


@dataclass(frozen=True)
class ProfileSnapshot:
    """Everything stored about one subject, decrypted. Only exports and the policy gate read it:
    decisions see a SubjectView built from it, never the snapshot itself."""

    subject_id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    identities: tuple[IdentityValue, ...] = ()
    traits: Mapping[str, object] = field(default_factory=dict)
    computed: Mapping[str, object] = field(default_factory=dict)
    merged_from: int = 0


class AtomInfo(Protocol):
    """What profiles read of a catalog atom."""

    @property
    def name(self) -> str: ...

    @property
    def identifier(self) -> bool: ...

    @property
    def retention(self) -> timedelta: ...

    @property
    def category(self) -> str: ...


class CatalogView(Protocol):
    """What profiles read of the catalog: trait name → atom, and any atom by its name."""

    @property
    def trait_atoms(self) -> Mapping[str, AtomInfo]: ...

    @property
    def atoms(self) -> Mapping[str, AtomInfo]: ...
