"""Run one privacy request's job in a process of its own and kill that process (SIGKILL, no clean
up of any kind) right after the step named on the command line has committed:

    python -m tests.rights.crash_job MAIN_URL KEYSTORE_URL REDIS_URL|- REDIS_PREFIX REQUEST_ID STEP
"""

from __future__ import annotations

import os
import signal
import sys
import uuid

from redis import Redis

from tactful.config import Settings
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.rights.jobs import JobContext, JobRunner
from tests.rights.erasing import POLICY, SECRET


def main(main_url: str, keys_url: str, redis_url: str, prefix: str, request_id: str, crash_after: str) -> int:
    database = Database(main_url)
    keystore = Keystore(keys_url, secret_key=SECRET)
    settings = Settings(database_url=main_url, keystore_url=keys_url, redis_prefix=prefix)
    redis = None if redis_url == "-" else Redis.from_url(redis_url)
    context = JobContext(
        database=database, keystore=keystore, settings=settings, policy=lambda: POLICY, redis=redis
    )

    def after(step: str, done: int, total: int) -> None:
        if step == crash_after:
            os.kill(os.getpid(), signal.SIGKILL)

    JobRunner(context, owner="doomed").run(uuid.UUID(request_id), on_step=after)
    return 0  # only when the step never came


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:7]))
