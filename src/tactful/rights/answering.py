"""The operator's answers to an open privacy request: extend its due date (with reasons, inside the
window the law gives) or reject it (under GDPR with the right to complain, Art. 12(4); under CCPA
with the basis, Regs. §7022). Each is audited without an identifier."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.crypto import Keystore
from tactful.errors import Conflict, NotFound
from tactful.rights import recipients as recipients_service
from tactful.rights import requests as requests_service
from tactful.rights.due import BusinessCalendar, Extension, ExtensionCode, LegalRegime, due_dates
from tactful.rights.models import PrivacyRequest
from tactful.rights.schemas import RejectionReason, RequestRecord, RequestStatus

EXTENDED = "rights.request_extended"
REJECTED = "rights.request_rejected"
RECIPIENT_MARKED = "rights.recipient_marked"

GDPR_COMPLAINT = (
    "You may lodge a complaint with a supervisory authority and seek a judicial remedy "
    "(GDPR Art. 12(4), Art. 77 and Art. 79)."
)
CCPA_BASIS: Mapping[RejectionReason, str] = {
    RejectionReason.NOT_VERIFIED: "The request could not be verified (CCPA Regs. §7022, §7060-§7062).",
    RejectionReason.UNFOUNDED: "The request is manifestly unfounded (CCPA Regs. §7022).",
    RejectionReason.EXCESSIVE: "The request is excessive or repetitive (Civ. Code §1798.145(h)(3)).",
    RejectionReason.EXEMPT: "An exception of the law applies (Civ. Code §1798.105(d), §1798.145).",
    RejectionReason.OTHER: "The business gave its reasons separately (CCPA Regs. §7022).",
}


def _open_row(session: Session, public_id: str) -> PrivacyRequest:
    row = requests_service.get_row(session, public_id)
    if row is None:
        raise NotFound("no privacy request has this id", code="request_not_found")
    if not RequestStatus(row.status).open:
        raise Conflict(f"the request is {row.status} already", code="request_closed")
    return row


def extend(
    session: Session,
    *,
    keystore: Keystore,
    calendar: BusinessCalendar,
    public_id: str,
    reasons: str,
    at: datetime,
    actor: str,
) -> tuple[ExtensionCode, RequestRecord]:
    """Extend an open request's due date, the reasons given to the person now. Refused (the code says
    why, nothing changes) once extended, after the window, or where the law allows none."""
    row = _open_row(session, public_id)
    record = requests_service.record_of(row)
    if row.extended_due_at is not None:
        return ExtensionCode.NOT_EXTENDABLE, record
    notice = Extension(noticed_at=at, reasons_given=bool(reasons.strip()))
    dates = due_dates(
        record.type, regimes=record.regimes, received_at=row.received_at, calendar=calendar, extension=notice
    )
    code = dates.extension or ExtensionCode.NOT_EXTENDABLE
    if code is not ExtensionCode.ACCEPTED or dates.extended_due_at is None:
        return code, record
    row.extended_due_at = dates.extended_due_at
    row.extension_reason = reasons.strip()
    row.extension_noticed_at = at
    row.updated_at = at
    session.flush()
    audit_service.append(
        session, keystore=keystore, action=EXTENDED, actor=actor, at=at, subject_id=row.subject_id,
        details=requests_service.audit_details(row, None),
    )  # fmt: skip
    return code, requests_service.record_of(row)


def rejection_receipt(reason: RejectionReason, regimes: Sequence[LegalRegime]) -> dict[str, object]:
    """Why, and under GDPR how to complain (Art. 12(4)); under CCPA the basis (Regs. §7022)."""
    rejected: dict[str, object] = {"reason": reason.value}
    if LegalRegime.GDPR in regimes:
        rejected["gdpr"] = {"article": "12(4)", "right_to_complain": GDPR_COMPLAINT}
    if LegalRegime.CCPA in regimes:
        rejected["ccpa"] = {"section": "7022", "basis": CCPA_BASIS[reason]}
    return {"rejected": rejected}


def reject(
    session: Session, *, keystore: Keystore, public_id: str, reason: RejectionReason, at: datetime, actor: str
) -> RequestRecord:
    """The operator's rejection of an open request that no process is running now."""
    row = _open_row(session, public_id)
    if row.lease_owner is not None and row.lease_expires_at is not None and row.lease_expires_at > at:
        raise Conflict("the request's job is running: reject it when it stops", code="request_running")
    record = requests_service.record_of(row)
    row.status = RequestStatus.REJECTED.value
    row.receipt = rejection_receipt(reason, record.regimes)
    row.changes_enc = None
    row.closed_at = row.updated_at = at
    row.lease_owner = row.lease_expires_at = None
    session.flush()
    audit_service.append(
        session, keystore=keystore, action=REJECTED, actor=actor, at=at, subject_id=row.subject_id,
        details=requests_service.audit_details(row, None, reason=reason.value),
    )  # fmt: skip
    return requests_service.record_of(row)


def mark_recipient(
    session: Session,
    *,
    keystore: Keystore,
    public_id: str,
    recipient: str,
    status: recipients_service.NoticeStatus,
    detail: str | None,
    key_id: uuid.UUID | None,
    at: datetime,
) -> PrivacyRequest:
    """The operator says what became of telling one recipient (GDPR Art. 19): told, failed, or not
    required (impossible or disproportionate). Audited with the key (none: the command line, which
    holds the databases); the detail is the operator's reference, never data about the person."""
    row = requests_service.get_row(session, public_id)
    if row is None:
        raise NotFound("no privacy request has this id", code="request_not_found")
    recipients_service.mark(
        session, request_id=row.id, recipient=recipient, status=status, detail=detail, at=at
    )
    audit_service.append(
        session, keystore=keystore, action=RECIPIENT_MARKED,
        actor="cli" if key_id is None else f"api:key:{key_id}", at=at,
        details=requests_service.audit_details(row, key_id, recipient=recipient, status=status.value),
    )  # fmt: skip
    return row
