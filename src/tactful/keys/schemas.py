"""Key scopes, the authenticated principal, and the shapes of the key management API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Scope(StrEnum):
    """What a key may do. Scopes nest: `write` ⊂ `server` ⊂ `admin`."""

    WRITE = "write"
    SERVER = "server"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _SCOPE_ORDER.index(self)

    def allows(self, required: Scope) -> bool:
        """Whether a key of this scope may call something that needs `required`."""
        return self.rank >= required.rank


_SCOPE_ORDER: tuple[Scope, ...] = (Scope.WRITE, Scope.SERVER, Scope.ADMIN)


@dataclass(frozen=True)
class Principal:
    """Who is calling: an authenticated, unrevoked key."""

    key_id: uuid.UUID
    scope: Scope
    name: str


@dataclass(frozen=True)
class KeyInfo:
    """A key as listings show it: never its secret or hash."""

    id: uuid.UUID
    name: str
    scope: Scope
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


# -- HTTP shapes ----------------------------------------------------------------------------------


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="What the key is for, e.g. `shop frontend`")
    scope: Scope = Field(description="`write` (collection, in web pages), `server` or `admin`")


class KeyView(BaseModel):
    id: uuid.UUID
    name: str
    scope: Scope
    prefix: str = Field(description="The non-secret start of the key, to recognise it")
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(description="Updated at most once an hour")

    @classmethod
    def of(cls, info: KeyInfo) -> KeyView:
        return cls(
            id=info.id,
            name=info.name,
            scope=info.scope,
            prefix=info.prefix,
            created_at=info.created_at,
            revoked_at=info.revoked_at,
            last_used_at=info.last_used_at,
        )


class KeyCreated(KeyView):
    key: str = Field(description="The key itself. Shown this once: only its hash is kept")
