"""Code run in child processes by the cross-process tests (importable, so `spawn` can find it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from tactful.audit import service as audit_service
from tactful.crypto import Keystore
from tactful.db import Database

SECRET = "test-secret-key-of-sufficient-length-000"


def append_entries(url: str, keystore_url: str, worker: int, count: int, start: Any) -> None:
    """Append `count` entries, one transaction each, after waiting at `start` for the other workers."""
    db = Database(url)
    keystore = Keystore(keystore_url, secret_key=SECRET)
    subjects = [uuid.uuid4() for _ in range(3)]
    try:
        start.wait(timeout=60)
        for i in range(count):
            with db.session() as session:
                audit_service.append(
                    session,
                    keystore=keystore,
                    action="tests.concurrent",
                    actor=f"worker-{worker}",
                    at=datetime.now(UTC),
                    subject_id=subjects[i % 3] if i % 2 else None,
                    details={"worker": worker, "i": i},
                )
    finally:
        db.dispose()
        keystore.dispose()
