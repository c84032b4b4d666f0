"""Telling the recipients: who received a subject's data learns of its erasure, rectification or
restriction (GDPR Art. 19; CCPA §1798.105(c) for service providers and third parties).

    the subject's atoms (traits, computed, events) ─▶ the catalog's recipients of those atoms
        ─▶ one `recipient_notices` row per request and recipient (pending)
        ─▶ the `Notifier` hook, once per new task: SENT (it told them) or PENDING (the operator will)
        ─▶ the request's API answer lists each task and its status; `mark` records a later outcome

A task names the recipient by its catalog key and the request, never the person: what to tell the
recipient about whom is the hook's business, from the request it is given. The default hook tells
no one and leaves each task pending for the operator, who can also tell the person who they are.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.bulk import insert_rows
from tactful.catalog.model import Catalog, Recipient
from tactful.errors import InvalidInput, NotFound
from tactful.rights.due import RequestType
from tactful.rights.models import RecipientNotice
from tactful.types import new_row_id

TOLD_OF = frozenset({RequestType.ERASURE, RequestType.RECTIFICATION, RequestType.RESTRICTION})
"""The requests Art. 19 says recipients must be told of."""


class NoticeStatus(StrEnum):
    PENDING = "pending"
    """Not yet told: the operator's (or a later hook's) to do."""
    SENT = "sent"
    """Told, by the hook or by the operator."""
    FAILED = "failed"
    """Telling failed; the detail says why, without data."""
    NOT_REQUIRED = "not_required"
    """The operator found telling impossible or disproportionate (Art. 19, second clause)."""


@dataclass(frozen=True)
class Notice:
    """One task as a hook and the API see it."""

    recipient: str
    name: str
    role: str
    country: str | None
    status: NoticeStatus
    created_at: datetime
    updated_at: datetime
    detail: str | None = None


@dataclass(frozen=True)
class Telling:
    """What a hook is given: the request (by its public id and type) and the recipient."""

    request_public_id: str
    request_type: RequestType
    recipient: Recipient


class Notifier(Protocol):
    """Tells one recipient; answers SENT when it did, PENDING to leave it to the operator."""

    def notify(self, telling: Telling) -> NoticeStatus: ...


class LeaveToOperator:
    """The do-nothing hook: every task stays pending until the operator marks it."""

    def notify(self, telling: Telling) -> NoticeStatus:
        return NoticeStatus.PENDING


def recipients_of(catalog: Catalog, atoms: Iterable[str]) -> list[str]:
    """The catalog keys of every recipient of these atoms, sorted."""
    found: set[str] = set()
    for name in atoms:
        atom = catalog.atoms.get(name)
        if atom is not None:
            found.update(key for key in atom.recipients if key in catalog.recipients)
    return sorted(found)


def open_tasks(
    session: Session,
    *,
    catalog: Catalog,
    notifier: Notifier,
    request_id: uuid.UUID,
    request_public_id: str,
    request_type: RequestType,
    recipients: Collection[str],
    at: datetime,
) -> dict[str, str]:
    """A task per recipient not yet holding one for this request, each passed to `notifier` once;
    the status of every task of the request by recipient (a rerun opens none twice)."""
    existing = {
        row.recipient: row
        for row in session.scalars(select(RecipientNotice).where(RecipientNotice.request_id == request_id))
    }
    rows = []
    for key in sorted(set(recipients) - set(existing)):
        recipient = catalog.recipients.get(key)
        if recipient is None:
            continue
        status = notifier.notify(Telling(request_public_id, request_type, recipient))
        rows.append(
            {"id": new_row_id(), "request_id": request_id, "recipient": key, "status": status.value,
             "created_at": at, "updated_at": at, "detail": None}
        )  # fmt: skip
    insert_rows(session, RecipientNotice.__table__, rows)  # type: ignore[arg-type]
    statuses = {key: row.status for key, row in existing.items()}
    return statuses | {str(row["recipient"]): str(row["status"]) for row in rows}


def tasks(session: Session, *, catalog: Catalog, request_id: uuid.UUID) -> list[Notice]:
    """The request's tasks, by recipient key (a recipient the catalog no longer declares keeps its key)."""
    rows = session.scalars(
        select(RecipientNotice)
        .where(RecipientNotice.request_id == request_id)
        .order_by(RecipientNotice.recipient)
    )
    found = []
    for row in rows:
        known = catalog.recipients.get(row.recipient)
        found.append(
            Notice(
                recipient=row.recipient,
                name=known.name if known is not None else row.recipient,
                role=str(known.role) if known is not None else "unknown",
                country=known.country if known is not None else None,
                status=NoticeStatus(row.status),
                created_at=row.created_at,
                updated_at=row.updated_at,
                detail=row.detail,
            )
        )
    return found


def mark(
    session: Session,
    *,
    request_id: uuid.UUID,
    recipient: str,
    status: NoticeStatus,
    detail: str | None,
    at: datetime,
) -> None:
    """Record what became of one task (the operator told them, or could not)."""
    if status is NoticeStatus.PENDING:
        raise InvalidInput("a task is marked with what became of it", code="invalid_status", field="status")
    row = session.scalars(
        select(RecipientNotice).where(
            RecipientNotice.request_id == request_id, RecipientNotice.recipient == recipient
        )
    ).first()
    if row is None:
        raise NotFound("this request has no task for that recipient", code="recipient_task_not_found")
    row.status, row.detail, row.updated_at = status.value, detail, at


def statuses(notices: Sequence[Notice]) -> dict[str, str]:
    return {n.recipient: n.status.value for n in notices}
