"""Appends from several processes at once still form one unbroken chain."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from tactful.audit import verification as audit_verification
from tactful.audit.models import AuditEntry
from tactful.crypto import Keystore
from tactful.db import Database
from tests.audit import workers
from tests.backends import fresh_database

WORKERS = 2
PER_WORKER = 50


@pytest.mark.slow
def test_two_processes_build_one_chain(backend: str, tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with (
        fresh_database(backend, tmp_path) as url,
        fresh_database(backend, tmp_path, migrated=False, name="keys") as keystore_url,
    ):
        keystore = Keystore(keystore_url, secret_key=workers.SECRET)
        keystore.create_schema()
        start = context.Barrier(WORKERS)
        processes = [
            context.Process(target=workers.append_entries, args=(url, keystore_url, n, PER_WORKER, start))
            for n in range(WORKERS)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)
        assert [p.exitcode for p in processes] == [0] * WORKERS

        db = Database(url)
        try:
            with db.session() as session:
                report = audit_verification.verify(session, keystore=keystore)
                actors = Counter(session.scalars(select(AuditEntry.actor)).all())
        finally:
            db.dispose()
            keystore.dispose()
    assert report.ok, report
    assert report.checked == WORKERS * PER_WORKER
    assert actors == {f"worker-{n}": PER_WORKER for n in range(WORKERS)}
