"""Access and portability packages at rest: sealed, downloadable through a link a few times, gone at
expiry or with the person.

    the `export` step (steps.Export) ──▶ PackagedExport.keep
        package.build ──▶ zip bytes (in memory only)
        a random key K ──▶ the zip sealed in chunks under K (AES-GCM, each chunk bound to the export,
        │                  its place and whether it is the last) ──▶ <export dir>/<id>.sealed (0600)
        └─ K sealed under the subject's data key ──▶ privacy_exports row (+ the token's SHA-256)

    the link: /v1/privacy/exports/<token>, token = HMAC(system key `privacy-exports`, id): shown
    again to whoever may read the request, kept nowhere, found by its SHA-256
    download ──▶ `live` (unexpired, uses left, file present) ──▶ `open_export` (K unsealed) ──▶ chunks
        └─ the whole body handed over ──▶ `count_download` (a use, audited; the last use deletes it)
           anything less ──────────────▶ `audit_incomplete` (no use)

    ends: `sweep` at expiry (the job worker, each round), `erase_subject` with the person (registry),
    and crypto-shredding: destroying the subject's key leaves K, and so every copy, unreadable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from cryptography.exceptions import InvalidTag
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.config import Settings, export_dir
from tactful.consent.gatekeeper import applicable_regimes
from tactful.crypto import Keystore
from tactful.crypto.sealing import KEY, NONCE, open_sealed, seal
from tactful.errors import KeyDestroyed
from tactful.rights import package
from tactful.rights.models import PrivacyExport, PrivacyRequest
from tactful.rights.package import PackageKind, PackageRequest
from tactful.types import new_id

if TYPE_CHECKING:
    from tactful.rights.steps import StepContext

log = logging.getLogger("tactful.rights")

TOKEN_KEY = "privacy-exports"  # noqa: S105 - the name of a key in the keystore, not a secret
"""The system key that makes download tokens; used for nothing else."""
KEY_CONTEXT = "privacy_export.key"
CHUNK = 64 * 1024
MAGIC = b"TACTFUL-EXPORT/1\n"
SUFFIX = ".sealed"
PARTIAL = ".partial"
ORPHAN_AFTER = timedelta(hours=1)
"""A file without a row (its transaction rolled back) is removed once this old: its key is gone."""
_SEAL_OVERHEAD = 1 + NONCE + 16

DOWNLOADED = "rights.export_downloaded"
INCOMPLETE = "rights.export_download_incomplete"
WRITTEN = "rights.export_written"
EXPIRED = "rights.exports_expired"


# -- tokens ----------------------------------------------------------------------------------------


def token_of(keystore: Keystore, export_id: uuid.UUID) -> str:
    """The export's download token: 256 bits, made again on demand, stored nowhere."""
    key, _ = keystore.system.read_or_create(TOKEN_KEY)
    mac = hmac.new(key, b"privacy-export-token\x00" + export_id.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def download_path(token: str) -> str:
    return f"/v1/privacy/exports/{token}"


# -- files -----------------------------------------------------------------------------------------


def folder(settings: Settings) -> Path:
    return export_dir(settings)


def file_of(settings: Settings, export_id: uuid.UUID) -> Path:
    return folder(settings) / f"{export_id.hex}{SUFFIX}"


def _aad(export_id: uuid.UUID, index: int, last: bool) -> bytes:
    return b"privacy-export\x00" + export_id.bytes + index.to_bytes(8, "big") + (b"\x01" if last else b"\x00")


def chunk_count(size: int, chunk_size: int) -> int:
    return max(1, math.ceil(size / chunk_size))


def _sealed_chunks(key: bytes, export_id: uuid.UUID, data: bytes, chunk_size: int) -> Iterator[bytes]:
    count = chunk_count(len(data), chunk_size)
    for index in range(count):
        part = data[index * chunk_size : (index + 1) * chunk_size]
        yield seal(key, part, _aad(export_id, index, index == count - 1))


def _write(path: Path, chunks: Iterator[bytes]) -> int:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    aside = path.with_name(path.name + PARTIAL)
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    written = 0
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(MAGIC)
            for chunk in chunks:
                handle.write(chunk)
                written += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(aside, path)
    except BaseException:
        aside.unlink(missing_ok=True)
        raise
    return written


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:  # the row goes anyway: without its key the file is unreadable
        log.warning("an export file could not be removed (%s)", type(exc).__name__)


# -- storing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    export_id: uuid.UUID
    size: int
    expires_at: datetime
    max_downloads: int


def store(
    session: Session,
    *,
    keystore: Keystore,
    settings: Settings,
    request_id: uuid.UUID,
    subject_id: uuid.UUID,
    kind: PackageKind,
    data: bytes,
    at: datetime,
    expires_at: datetime,
    chunk_size: int = CHUNK,
) -> Stored:
    """Seal `data` (a package's zip) into the export folder and record it, in the caller's
    transaction. Were that transaction to roll back, the file stays behind unreadable (its key was
    only in the row) until `sweep` removes it."""
    export_id = new_id()
    key = os.urandom(KEY)
    key_enc = keystore.encrypt(
        subject_id, base64.b64encode(key).decode(), context=f"{KEY_CONTEXT}:{export_id}"
    )
    _write(file_of(settings, export_id), _sealed_chunks(key, export_id, data, chunk_size))
    limit = settings.privacy.export_downloads
    session.add(
        PrivacyExport(
            id=export_id,
            request_id=request_id,
            subject_id=subject_id,
            kind=kind.value,
            token_digest=digest_of(token_of(keystore, export_id)),
            key_enc=key_enc,
            size=len(data),
            chunk_size=chunk_size,
            created_at=at,
            expires_at=expires_at,
            downloads=0,
            max_downloads=limit,
            last_download_at=None,
        )
    )
    session.flush()
    return Stored(export_id, len(data), expires_at, limit)


@dataclass(frozen=True)
class PackagedExport:
    """The `ExportSink` that makes the package a person downloads (steps.Export)."""

    kind: PackageKind

    def keep(self, ctx: StepContext, document: Mapping[str, object]) -> Mapping[str, Any]:
        if ctx.subject_id is None:
            return {}
        settings = ctx.rights.settings
        expires_at = ctx.at + timedelta(days=settings.privacy.export_days)
        profile = document.get("profiles")
        traits = profile.get("traits") if isinstance(profile, Mapping) else None
        regimes = applicable_regimes(ctx.policy, traits if isinstance(traits, Mapping) else {})
        made = package.build(
            document,
            request=PackageRequest(
                request_id=ctx.request.public_id,
                kind=self.kind,
                regimes=tuple(r.value for r in ctx.request.regimes),
                made_at=ctx.at,
                expires_at=expires_at,
            ),
            catalog=ctx.policy.catalog,
            bases=package.legal_bases(regimes),
        )
        data = made.zip()
        stored = store(
            ctx.rights.session,
            keystore=ctx.rights.keystore,
            settings=settings,
            request_id=ctx.request.id,
            subject_id=ctx.subject_id,
            kind=self.kind,
            data=data,
            at=ctx.at,
            expires_at=expires_at,
        )
        return {
            "package": {
                "kind": self.kind.value,
                "files": len(made.files),
                "bytes": stored.size,
                "expires_at": stored.expires_at.isoformat(),
                "downloads_allowed": stored.max_downloads,
            }
        }


# -- finding and opening ---------------------------------------------------------------------------


def live(session: Session, *, settings: Settings, token: str, at: datetime) -> PrivacyExport | None:
    """The export a token opens now: unexpired, with uses left, its file present; else None (one
    answer for an unknown, expired, used-up or deleted one)."""
    row = session.scalars(
        select(PrivacyExport).where(PrivacyExport.token_digest == digest_of(token))
    ).one_or_none()
    if row is None or row.expires_at <= at or row.downloads >= row.max_downloads:
        return None
    return row if file_of(settings, row.id).is_file() else None


def for_requests(
    session: Session, *, keystore: Keystore, request_ids: list[uuid.UUID], at: datetime
) -> dict[uuid.UUID, str]:
    """The download path of each request's live export (unexpired, uses left), by request id."""
    if not request_ids:
        return {}
    rows = session.execute(
        select(PrivacyExport.id, PrivacyExport.request_id).where(
            PrivacyExport.request_id.in_(request_ids),
            PrivacyExport.expires_at > at,
            PrivacyExport.downloads < PrivacyExport.max_downloads,
        )
    ).all()
    return {row.request_id: download_path(token_of(keystore, row.id)) for row in rows}


@dataclass(frozen=True)
class Opened:
    """An export ready to stream: its key unsealed, for one transfer."""

    export_id: uuid.UUID
    request_public_id: str
    subject_id: uuid.UUID
    kind: str
    size: int
    chunk_size: int
    key: bytes
    path: Path

    @property
    def filename(self) -> str:
        # Made of the request's public id (letters, digits, `_`, `-`): safe in a header as it is.
        return f"tactful-{self.kind}-{self.request_public_id}.zip"

    def chunks(self, handle: BinaryIO) -> Iterator[bytes]:
        """The zip, chunk by chunk, each checked; raises KeyDestroyed for a file altered or cut."""
        if handle.read(len(MAGIC)) != MAGIC:
            raise KeyDestroyed("not an export file")
        count = chunk_count(self.size, self.chunk_size)
        for index in range(count):
            plain = min(self.chunk_size, self.size - index * self.chunk_size)
            sealed = handle.read(plain + _SEAL_OVERHEAD)
            try:
                yield open_sealed(self.key, sealed, _aad(self.export_id, index, index == count - 1))
            except (InvalidTag, ValueError) as exc:
                raise KeyDestroyed("the export file does not open under its key") from exc


def open_export(
    session: Session, *, keystore: Keystore, settings: Settings, row: PrivacyExport
) -> Opened | None:
    """The export's key unsealed under its subject's key; None once that key is destroyed."""
    try:
        text = keystore.decrypt(row.subject_id, row.key_enc, context=f"{KEY_CONTEXT}:{row.id}")
    except KeyDestroyed:
        return None
    public_id = session.scalar(select(PrivacyRequest.public_id).where(PrivacyRequest.id == row.request_id))
    return Opened(
        export_id=row.id,
        request_public_id=public_id or "request",
        subject_id=row.subject_id,
        kind=row.kind,
        size=row.size,
        chunk_size=row.chunk_size,
        key=base64.b64decode(text),
        path=file_of(settings, row.id),
    )


def of_request(session: Session, *, request_id: uuid.UUID) -> PrivacyExport | None:
    return session.scalars(select(PrivacyExport).where(PrivacyExport.request_id == request_id)).one_or_none()


# -- uses and their audit --------------------------------------------------------------------------


def _details(opened: Opened, key_id: uuid.UUID | None, reader: str) -> dict[str, audit_service.Scalar]:
    found: dict[str, audit_service.Scalar] = {"request": opened.request_public_id, "reader": reader}
    if key_id is not None:
        found["key_id"] = str(key_id)
    return found


def count_download(
    session: Session,
    *,
    keystore: Keystore,
    settings: Settings,
    opened: Opened,
    key_id: uuid.UUID | None,
    reader: str,
    at: datetime,
) -> int | None:
    """Count one completed transfer and audit it; the use that reaches the limit deletes the export.
    The use's number, or None when other transfers used it up while this one ran."""
    counted = session.execute(
        update(PrivacyExport)
        .where(PrivacyExport.id == opened.export_id, PrivacyExport.downloads < PrivacyExport.max_downloads)
        .values(downloads=PrivacyExport.downloads + 1, last_download_at=at)
        .execution_options(synchronize_session=False)
    )
    row = session.get(PrivacyExport, opened.export_id, populate_existing=True)
    use = row.downloads if row is not None and getattr(counted, "rowcount", 0) == 1 else None
    if row is not None and row.downloads >= row.max_downloads:
        session.execute(delete(PrivacyExport).where(PrivacyExport.id == row.id))
        _remove(file_of(settings, row.id))
    details = _details(opened, key_id, reader) | {"use": use, "of": row.max_downloads if row else None}
    audit_service.append(
        session, keystore=keystore, action=DOWNLOADED, actor=f"api:key:{key_id}", at=at,
        subject_id=opened.subject_id, details=details,
    )  # fmt: skip
    return use


def audit_incomplete(
    session: Session,
    *,
    keystore: Keystore,
    opened: Opened,
    key_id: uuid.UUID | None,
    reader: str,
    at: datetime,
) -> None:
    """A transfer that ended before its last byte: audited, not counted."""
    audit_service.append(
        session, keystore=keystore, action=INCOMPLETE, actor=f"api:key:{key_id}", at=at,
        subject_id=opened.subject_id, details=_details(opened, key_id, reader),
    )  # fmt: skip


def audit_written(session: Session, *, keystore: Keystore, opened: Opened, at: datetime) -> None:
    """The operator wrote the package to a file (`tactful privacy export`): audited, not a use."""
    audit_service.append(
        session, keystore=keystore, action=WRITTEN, actor="cli", at=at, subject_id=opened.subject_id,
        details={"request": opened.request_public_id, "reader": "operator"},
    )  # fmt: skip


# -- ends ------------------------------------------------------------------------------------------


def sweep(session: Session, *, keystore: Keystore, settings: Settings, at: datetime) -> int:
    """Delete the exports expired by `at` (rows and files) and files no row names (a rolled-back
    step's, unreadable); how many exports expired. Audited when any did."""
    expired = session.scalars(select(PrivacyExport.id).where(PrivacyExport.expires_at <= at)).all()
    if expired:
        session.execute(delete(PrivacyExport).where(PrivacyExport.id.in_(expired)))
        for export_id in expired:
            _remove(file_of(settings, export_id))
        audit_service.append(
            session, keystore=keystore, action=EXPIRED, actor="privacy:sweep", at=at,
            details={"count": len(expired)},
        )  # fmt: skip
    _remove_orphans(session, settings, at)
    return len(expired)


def _remove_orphans(session: Session, settings: Settings, at: datetime) -> None:
    place = folder(settings)
    if not place.is_dir():
        return
    known = {row.hex for row in session.scalars(select(PrivacyExport.id))}
    cutoff = at.timestamp() - ORPHAN_AFTER.total_seconds()
    for path in place.iterdir():
        stem = path.name.removesuffix(PARTIAL).removesuffix(SUFFIX)
        if not path.name.endswith((SUFFIX, SUFFIX + PARTIAL)) or stem in known:
            continue
        try:
            old = path.stat().st_mtime < cutoff
        except FileNotFoundError:
            continue
        if old:
            _remove(path)


# -- the registry's handlers -----------------------------------------------------------------------


def export_subject(session: Session, *, subject_id: uuid.UUID) -> dict[str, object]:
    """The packages made for the subject: when, until when, how often downloaded (not their content)."""
    rows = session.execute(
        select(PrivacyExport, PrivacyRequest.public_id)
        .join(PrivacyRequest, PrivacyRequest.id == PrivacyExport.request_id, isouter=True)
        .where(PrivacyExport.subject_id == subject_id)
        .order_by(PrivacyExport.created_at)
    ).all()
    if not rows:
        return {}
    return {
        "packages": [
            {
                "request": public_id,
                "kind": row.kind,
                "created_at": row.created_at.isoformat(),
                "expires_at": row.expires_at.isoformat(),
                "downloads": row.downloads,
                "max_downloads": row.max_downloads,
            }
            for row, public_id in rows
        ]
    }


def erase_subject(session: Session, *, settings: Settings, subject_id: uuid.UUID) -> int:
    """Delete the subject's packages, files first; how many."""
    ids = session.scalars(select(PrivacyExport.id).where(PrivacyExport.subject_id == subject_id)).all()
    for export_id in ids:
        _remove(file_of(settings, export_id))
    if ids:
        session.execute(delete(PrivacyExport).where(PrivacyExport.id.in_(ids)))
    return len(ids)
