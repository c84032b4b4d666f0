"""Privacy requests run in the server itself: the job worker over this process's context (its
databases, the gate's inputs, the buffers an export or an erasure must reach), with the sweep of
expired export packages as its chore.

    AppContext ──job_context──▶ JobContext ──▶ JobRunner ──▶ JobWorker (polls; sweeps packages)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tactful.api.context import AppContext
from tactful.rights import exports
from tactful.rights.jobs import JobContext, JobRunner, JobWorker
from tactful.types import utcnow


def job_context(context: AppContext) -> JobContext:
    return JobContext(
        database=context.db,
        keystore=context.keystore,
        settings=context.settings,
        policy=context.policy_context,
        redis=context.redis,
        logbook=context.logbook,
        counters=context.counters,
        audience_sizes=context.lineups.sizes if context.lineups is not None else None,
    )


SWEEP_SECONDS = 60.0
"""How often the job worker deletes expired export packages (at most)."""


def export_sweep(context: AppContext, *, every: float = SWEEP_SECONDS) -> Callable[[], int]:
    """The job worker's chore: delete the export packages past their expiry, at most every `every`
    seconds; how many went this time."""
    last = [-every]

    def sweep() -> int:
        if time.monotonic() - last[0] < every:
            return 0
        last[0] = time.monotonic()
        with context.session() as session:
            return exports.sweep(session, keystore=context.keystore, settings=context.settings, at=utcnow())

    return sweep


def start_jobs(context: AppContext) -> JobWorker | None:
    """The server's job runner, started (None when the settings leave jobs to another process)."""
    if not context.settings.privacy.run_jobs:
        return None
    worker = JobWorker(
        JobRunner(job_context(context)),
        interval=context.settings.privacy.job_poll_seconds,
        chores=(export_sweep(context),),
    )
    worker.start()
    return worker
