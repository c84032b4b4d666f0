"""`tactful audiences count [--json]`: estimate audience sizes from the stored profiles now.

    count    every 1:many audience that reads only stored atoms, over every stored profile (a
             progress bar over the profiles), as the server's daily pass does and under its lease:
             while a server counts, it says so and exits 1; then a table: audience, how it is
             counted, people matched by this pass, the estimated size over 30 days, serving
    --json   the table as JSON on standard output, for scripts

Audiences that read the request are counted from decisions alone; the table says so.
"""

from __future__ import annotations

import json
import sys

from rich.table import Table

from tactful.api.context import AppContext
from tactful.cli_shared import (
    AsJson,
    DatabaseUrl,
    _Command,
    _context,
    _fail,
    _progress,
    _settings,
    _typer,
    err,
)
from tactful.decide import service as decide_service
from tactful.decide.audience_count import Counted
from tactful.decide.schemas import AudienceView
from tactful.rights.schedule import AudienceSchedule

audiences_app = _typer("Audiences: how many people each one matches.")

HOW = {
    "not_held_to_k": "not held to k",
    "reads_more_than_stored": "decisions only",
    "does_not_compile": "does not compile",
}


def _views(context: AppContext) -> list[AudienceView]:
    views: list[AudienceView] = []
    with context.session() as session:
        while True:
            after = views[-1].key if views else None
            page = decide_service.list_audiences(
                session, after=after, limit=decide_service.MAX_LIST, sizing=context.audience_sizing()
            )
            views += page
            if len(page) < decide_service.MAX_LIST:
                return views


def as_document(counted: Counted, views: list[AudienceView]) -> dict[str, object]:
    rows = [
        {
            "audience": view.key,
            "counted": "stored profiles" if view.key in counted.matched else HOW[counted.left[view.key]],
            "matched": counted.matched.get(view.key),
            "estimated_size": view.estimated_size,
            "serving": view.serving,
        }
        for view in views
        if view.key in counted.matched or view.key in counted.left
    ]
    return {"at": counted.at.isoformat(), "profiles": counted.subjects, "audiences": rows}


def as_table(document: dict[str, object]) -> Table:
    table = Table(title=f"audience sizes: {document['profiles']:,} stored profiles read")
    for column in ("audience", "counted from", "matched now", "estimated (30 days)", "serving"):
        table.add_column(
            column, justify="right" if column in ("matched now", "estimated (30 days)") else "left"
        )
    rows = document["audiences"]
    assert isinstance(rows, list)
    for row in rows:
        matched = "" if row["matched"] is None else f"{row['matched']:,}"
        serving = "yes" if row["serving"] else "no (shadow)"
        table.add_row(row["audience"], row["counted"], matched, f"{row['estimated_size']:,}", serving)
    return table


@audiences_app.command("count", cls=_Command)
def audiences_count(database_url: DatabaseUrl = None, as_json: AsJson = False) -> None:
    """Estimate the size of every 1:many audience over stored atoms from every stored profile (the
    server also does this daily), then show each audience's estimated size and whether it serves."""
    with _context(_settings(database_url)) as context:
        counting = context.audience_counting()
        assert counting is not None  # a process context always measures sizes
        schedule = AudienceSchedule(database=context.db, settings=context.settings, counting=counting)
        with _progress() as progress:
            task = progress.add_task("stored profiles", total=None)

            def on_batch(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            counted = schedule.run_if_due(anyway=True, on_batch=on_batch)
        if counted is None:
            raise _fail("a server is counting audiences now; try again once it has finished")
        document = as_document(counted, _views(context))
    if as_json:
        sys.stdout.write(json.dumps(document) + "\n")
    else:
        err.print(as_table(document))
