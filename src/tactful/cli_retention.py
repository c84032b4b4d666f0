"""`tactful retention run [--dry-run]`: the retention sweep by hand, with what it did per store.

    run             delete or anonymise what outlived its retention (a progress bar over the
                    stores), then a table: store, category, action, rows; one audit entry. It
                    takes the server's lease: while a server sweeps, it says so and exits 1
    run --dry-run   the same table of what would go, counted with the same conditions; nothing
                    changes and nothing is audited
    --json          the table as JSON on standard output, for scripts

The server runs the same sweep on its own schedule (`retention.schedule`, daily by default).
"""

from __future__ import annotations

import json
import sys

from rich.table import Table

from tactful.cli_shared import _context, _fail, _progress, err
from tactful.config import Settings
from tactful.rights.retention import SweepReport, run_retention
from tactful.rights.schedule import RetentionSchedule
from tactful.types import utcnow


def run_sweep(settings: Settings, *, dry_run: bool, as_json: bool) -> SweepReport:
    with _context(settings) as context, _progress() as progress:
        task = progress.add_task("retention sweep", total=None)

        def on_step(name: str, done: int, total: int) -> None:
            progress.update(task, description=f"retention: {name}", completed=done, total=total)

        if dry_run:
            with context.session() as session:
                report: SweepReport | None = run_retention(
                    session, catalog=context.catalog, settings=context.settings, at=utcnow(),
                    keystore=context.keystore, dry_run=True, on_step=on_step,
                )  # fmt: skip
        else:
            # Under the server's lease, so that a run by hand never overlaps a scheduled one.
            schedule = RetentionSchedule(
                database=context.db, keystore=context.keystore, settings=context.settings,
                catalog=lambda: context.catalog,
            )  # fmt: skip
            report = schedule.run_if_due(anyway=True, actor="retention:cli", on_step=on_step)
    if report is None:
        raise _fail("a server is running the retention sweep now; try again once it has finished")
    if as_json:
        sys.stdout.write(json.dumps(as_document(report)) + "\n")
    else:
        err.print(as_table(report))
    return report


def as_document(report: SweepReport) -> dict[str, object]:
    rows = [
        {"store": r.store, "category": r.category, "action": r.action.value, "rows": r.count}
        for r in report.rows
    ]
    return {"at": report.at.isoformat(), "dry_run": report.dry_run, "total": report.total(), "rows": rows}


def as_table(report: SweepReport) -> Table:
    title = (
        "retention sweep: what would go (dry run, nothing changed)" if report.dry_run else "retention sweep"
    )
    table = Table(title=title)
    table.add_column("store")
    table.add_column("category")
    table.add_column("action")
    table.add_column("would go" if report.dry_run else "rows", justify="right")
    for r in report.rows:
        table.add_row(r.store, r.category, r.action.value, f"{r.count:,}")
    table.add_section()
    table.add_row("all stores", "", "", f"{report.total():,}")
    return table
