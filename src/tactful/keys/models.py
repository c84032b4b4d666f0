"""The `api_keys` table. Keys belong to the deployment, not to subjects: no personal data here."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from tactful.db import Base


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("scope IN ('write', 'server', 'admin')", name="scope"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"ApiKey(id={self.id}, scope={self.scope!r})"
