"""An erasure job whose process is killed between two steps (a real process, SIGKILL) completes when
run again, with the receipt of a run that never stopped: each step committed with its result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tactful.rights import requests as requests_service
from tactful.rights.due import RequestType
from tactful.rights.jobs import JobRunner, RunOutcome
from tactful.rights.schemas import RequestRecord, RequestStatus
from tactful.rights.steps import PLANS
from tactful.types import utcnow
from tests.backends import REDIS_URL
from tests.rights.erasing import POLICY, Place, place, seed, subject_of
from tests.rights.requesting import file

ROOT = Path(__file__).resolve().parents[2]
NOW = utcnow().replace(microsecond=0)
STEPS = [step.name for step in PLANS[RequestType.ERASURE]]


@pytest.fixture
def where(backend: str, tmp_path: Path) -> Iterator[Place]:
    with place(backend, tmp_path) as found:
        yield found


def filed(where: Place, user_id: str) -> RequestRecord:
    with where.database.session() as session:
        return file(session, where.keystore, POLICY, RequestType.ERASURE, at=NOW, user_id=user_id)


def reread(where: Place, record: RequestRecord) -> RequestRecord:
    with where.database.session() as session:
        found = requests_service.get_request(session, public_id=record.public_id)
    assert found is not None
    return found


@pytest.mark.parametrize("crash_after", ["suppress", "erase_stores"])
def test_a_job_killed_between_steps_completes_with_the_same_receipt(where: Place, crash_after: str) -> None:
    twin, ada = seed(where, at=NOW, tag="twin"), seed(where, at=NOW, tag="ada")
    clean = filed(where, twin.user_id)
    assert JobRunner(where.jobs()).run(clean.id) is RunOutcome.COMPLETED
    record = filed(where, ada.user_id)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TACTFUL_")}
    killed = subprocess.run(
        [sys.executable, "-m", "tests.rights.crash_job", where.settings.database_url,
         where.settings.keystore_url, REDIS_URL or "-", where.settings.redis_prefix, str(record.id),
         crash_after],
        cwd=ROOT, env=env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    stopped = reread(where, record)
    assert stopped.status is RequestStatus.RUNNING
    assert set(stopped.steps) == set(STEPS[: STEPS.index(crash_after) + 1])
    # The dead process still holds the lease: a later run takes it once it has expired.
    lease = timedelta(seconds=where.settings.privacy.job_lease_seconds)
    later = JobRunner(where.jobs(), clock=lambda: utcnow() + lease + timedelta(seconds=1))
    assert later.run(record.id) is RunOutcome.COMPLETED
    done = reread(where, record)
    assert done.status is RequestStatus.COMPLETED
    assert json.dumps(done.receipt, sort_keys=True) == json.dumps(
        reread(where, clean).receipt, sort_keys=True
    )
    assert subject_of(where, user_id=ada.user_id) is None
    assert not where.keystore.has_subject(ada.subject_id)
