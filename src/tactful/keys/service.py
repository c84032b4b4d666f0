"""Issue, list, revoke and check API keys.

A key is `tfk_<scope>_<key id as 32 hex digits>_<secret>`: the readable front lets operators and
secret scanners recognise it, the id makes verification one primary-key lookup, and the secret is 32
random bytes. Only the SHA-256 of the whole key is stored: with 256 bits of entropy a plain hash is
as strong as a slow one, and it survives rotation of `TACTFUL_SECRET_KEY`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.crypto import Keystore
from tactful.errors import InvalidInput, NotAuthenticated, NotFound
from tactful.keys.models import ApiKey
from tactful.keys.schemas import KeyInfo, Principal, Scope
from tactful.types import new_id

KEY_PREFIX = "tfk"
INVALID_KEY = "invalid or missing API key"
"""The one answer for a missing, malformed, unknown, wrong or revoked key."""

MAX_NAME = 100
LAST_USED_EVERY = timedelta(hours=1)
"""`last_used_at` is refreshed at most this often, so that reads do not each become a write."""

_SECRET_BYTES = 32
_TOKEN = re.compile(r"tfk_(write|server|admin)_([0-9a-f]{32})_([A-Za-z0-9_-]{43})")
_KEY_REF = re.compile(r"(?:tfk_(?:write|server|admin)_)?([0-9a-f]{32})(?:_[A-Za-z0-9_-]{43})?")
# Compared against when the key id is unknown, so that unknown and wrong keys cost the same.
_NO_KEY_HASH = hashlib.sha256(b"no such key").hexdigest()
_KEY_ROW = select(
    ApiKey.id, ApiKey.secret_hash, ApiKey.revoked_at, ApiKey.last_used_at, ApiKey.scope, ApiKey.name
).where(ApiKey.id == bindparam("key_id"))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def key_info(row: ApiKey) -> KeyInfo:
    """What may be shown of a key: everything but its hash."""
    return KeyInfo(
        id=row.id,
        name=row.name,
        scope=Scope(row.scope),
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def _clean_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise InvalidInput(f"a key name is 1 to {MAX_NAME} printable characters", field="name")
    return name


def create_key(
    session: Session, *, keystore: Keystore, name: str, scope: Scope | str, at: datetime, actor: str
) -> tuple[ApiKey, str]:
    """Issue a key. Returns the stored row and the key itself, which is never available again."""
    try:
        scope = Scope(scope)
    except ValueError as exc:
        raise InvalidInput("scope must be one of write, server, admin", field="scope") from exc
    key_id = new_id()
    prefix = f"{KEY_PREFIX}_{scope.value}_{key_id.hex}"
    token = f"{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    row = ApiKey(
        id=key_id,
        name=_clean_name(name),
        scope=scope.value,
        prefix=prefix,
        secret_hash=_hash(token),
        created_at=at,
        revoked_at=None,
        last_used_at=None,
    )
    session.add(row)
    session.flush()
    audit_service.append(
        session,
        keystore=keystore,
        action="keys.created",
        actor=actor,
        at=at,
        details={"key_id": str(key_id), "scope": scope.value},
    )
    return row, token


def list_keys(session: Session, *, include_revoked: bool = True) -> list[KeyInfo]:
    """Every key, oldest first."""
    statement = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if not include_revoked:
        statement = statement.where(ApiKey.revoked_at.is_(None))
    return [key_info(row) for row in session.scalars(statement)]


def get_key(session: Session, *, key_id: uuid.UUID) -> KeyInfo | None:
    row = session.get(ApiKey, key_id, populate_existing=True)
    return None if row is None else key_info(row)


def revoke_key(
    session: Session, *, keystore: Keystore, key_id: uuid.UUID, at: datetime, actor: str
) -> KeyInfo:
    """Revoke a key from now on, on every process. Revoking a revoked key changes nothing."""
    row = session.scalars(
        select(ApiKey).where(ApiKey.id == key_id).with_for_update().execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise NotFound("no API key with this id")
    if row.revoked_at is None:
        row.revoked_at = at
        session.flush()
        audit_service.append(
            session,
            keystore=keystore,
            action="keys.revoked",
            actor=actor,
            at=at,
            details={"key_id": str(row.id), "scope": row.scope},
        )
    return key_info(row)


def key_id_of(text: str) -> uuid.UUID:
    """The key id named by a UUID, a key's prefix or a whole key (what a CLI user may paste)."""
    text = text.strip()
    match = _KEY_REF.fullmatch(text)
    try:
        return uuid.UUID(match[1]) if match else uuid.UUID(text)
    except ValueError as exc:
        raise InvalidInput("not a key id, key prefix or key", field="key_id") from exc


def authenticate(session: Session, *, token: str | None, at: datetime | None = None) -> Principal:
    """The principal of `token`, or NotAuthenticated with the same message for every failure.

    Checked against the database on every call (one primary-key lookup), so a revocation is effective
    everywhere as soon as it commits. With `at`, records when the key was last used (hourly).
    """
    checked = verify(session, token=token)
    if at is not None and use_due(checked, at):
        record_use(session, key_id=checked.principal.key_id, at=at)
    return checked.principal


@dataclass(frozen=True)
class Verified:
    """A key that `verify` let through, and when its use was last recorded."""

    principal: Principal
    last_used_at: datetime | None


def verify(session: Session, *, token: str | None) -> Verified:
    """As `authenticate`, reading only (a unit of work that only reads may check a key); whether
    to record the use is the caller's (`use_due`, `record_use`)."""
    match = _TOKEN.fullmatch(token) if token and len(token) < 200 else None
    row = None
    if match is not None:
        # A Core read of the columns, not the ORM's `get`: every request comes here, and loading
        # an identity-mapped object cost several times the lookup itself.
        row = session.connection().execute(_KEY_ROW, {"key_id": uuid.UUID(match[2])}).first()
    presented = _hash(token) if token else ""
    expected = row.secret_hash if row is not None else _NO_KEY_HASH
    if not hmac.compare_digest(expected, presented) or row is None or row.revoked_at is not None:
        raise NotAuthenticated(INVALID_KEY)
    return Verified(Principal(key_id=row.id, scope=Scope(row.scope), name=row.name), row.last_used_at)


def use_due(checked: Verified, at: datetime) -> bool:
    """Whether the key's use at `at` should be recorded (at most hourly)."""
    return checked.last_used_at is None or at - checked.last_used_at >= LAST_USED_EVERY


def record_use(session: Session, *, key_id: uuid.UUID, at: datetime) -> None:
    """Record that the key was used at `at` (never moving the time back)."""
    session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < at))
        .values(last_used_at=at),
        execution_options={"synchronize_session": "fetch"},
    )
