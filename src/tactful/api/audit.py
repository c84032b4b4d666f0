"""The audit log over HTTP (admin scope): its head, for anchoring outside the database."""

from __future__ import annotations

from fastapi import APIRouter, Response

from tactful.api.context import Context
from tactful.api.deps import AUTH_RESPONSES, require_admin
from tactful.audit import service as audit_service
from tactful.audit.schemas import AuditHead

router = APIRouter(prefix="/v1/admin/audit", tags=["audit"], responses=AUTH_RESPONSES)


@router.get("/head", summary="The audit log's newest entry (sequence, hash, time), to record elsewhere")
def audit_head(response: Response, context: Context, principal: require_admin) -> AuditHead:
    with context.session() as session:
        head = audit_service.head_entry(session)
    response.headers["Cache-Control"] = "no-store"
    if head is None:
        return AuditHead(sequence=0, hash=audit_service.GENESIS, at=None)
    return AuditHead(sequence=head.seq, hash=head.hash, at=head.at)
