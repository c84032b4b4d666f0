"""Two processes resolving the same new identifiers at once end with one subject, not an error."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from tactful.crypto import Keystore
from tactful.db import Database
from tactful.profiles import service as profiles_service
from tactful.profiles.schemas import Resolution
from tests.profiles.builders import T0, unique


@pytest.fixture
def committing(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


def test_concurrent_first_sightings_resolve_to_one_subject(committing: Database, keystore: Keystore) -> None:
    anon, user = unique("anon"), unique("user")
    results: dict[str, Resolution] = {}
    errors: list[BaseException] = []
    first_resolved = threading.Event()

    def first() -> None:
        try:
            with committing.session() as session:
                results["first"] = profiles_service.resolve(
                    session, keystore=keystore, anonymous_id=anon, user_id=user, at=T0
                )
                first_resolved.set()
                time.sleep(0.3)  # hold the uncommitted rows while the second one resolves
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            first_resolved.set()

    def second() -> None:
        first_resolved.wait(10)
        try:
            with committing.session() as session:
                results["second"] = profiles_service.resolve(
                    session, keystore=keystore, anonymous_id=anon, user_id=user, at=T0
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert results["first"].created
    assert not results["second"].created
    assert results["second"].subject_id == results["first"].subject_id
    with committing.session() as session:
        found = profiles_service.find_subject(session, keystore=keystore, anonymous_id=anon)
        assert isinstance(found, uuid.UUID)
        assert found == results["first"].subject_id
        profiles_service.erase_subject(session, keystore=keystore, subject_id=found)
