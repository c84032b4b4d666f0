"""`tactful simulate` (and `tactful demo --simulate N`): traffic through the demo shop's API, in process.

    the process context ──▶ open_run: the run's keys ──▶ create_app over the context
        ▼ its decision log buffer written on its own thread, as a server's is
    demo.simulate.simulate over httpx's ASGI transport (one client address per visitor), progress bar
        ▼
    the log's last window written, the keys revoked, the run audited ──▶ the summary's tables

The summary goes to standard error with the progress bar: nothing here is meant for a script to
capture (the audit entry `demo.simulated` keeps the run's figures).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import httpx
import typer
from rich.table import Table

from tactful.cli_shared import _context, _fail, _progress, _settings, err
from tactful.demo.simulate import SimulationConfig
from tactful.demo.tally import GPC, MINORS, Summary
from tactful.types import utcnow

if TYPE_CHECKING:
    from tactful.api.context import AppContext

Visitors = Annotated[
    int, typer.Option(metavar="N", min=1, max=1_000_000, help="Visitors who arrive during the window.")
]
Days = Annotated[
    float, typer.Option(metavar="DAYS", min=0.01, max=365, help="The window before now that visits fall in.")
]
Seed = Annotated[
    int, typer.Option(metavar="SEED", help="On a fresh database, the same seed brings the same visitors.")
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        help="SQLAlchemy URL of the main database [default: TACTFUL_DATABASE_URL]",
    ),
]


def simulate(
    visitors: Visitors = 300, days: Days = 7.0, seed: Seed = 7, database_url: DatabaseUrl = None
) -> None:
    """Drive realistic traffic through the demo shop's API: visitors arrive, answer the consent
    banner, browse, get decisions, click and buy. Prints what the engine answered."""
    with _context(_settings(database_url)) as context:
        summary = run_simulation(context, SimulationConfig(seed=seed, visitors=visitors, days=days))
    print_summary(summary)


def run_simulation(context: AppContext, config: SimulationConfig) -> Summary:
    """Run one simulation against `context`'s databases through the app's HTTP API."""
    from tactful.demo import simulate as simulation
    from tactful.demo.placements import placements_seeded
    from tactful.main import create_app, stop_logbook

    with context.session() as session:
        if not placements_seeded(session):
            raise _fail("the demo shop's placements are missing: run `tactful demo` first")
    now = utcnow()
    run = simulation.open_run(context, at=now)
    app = create_app(context.settings, context=context)

    def transport_for(address: str) -> httpx.AsyncBaseTransport:
        return httpx.ASGITransport(app=app, client=(address, 49152), raise_app_exceptions=False)

    logbook = context.logbook
    assert logbook is not None  # every context has one
    logbook.start()
    summary: Summary | None = None
    try:
        with _progress() as progress:
            task = progress.add_task(f"simulating {config.visitors:,} visitors", total=None)
            summary = asyncio.run(
                simulation.simulate(
                    transport_for=transport_for,
                    keys=run.keys,
                    token_secret=context.settings.subject_token_secret.get_secret_value(),
                    config=config,
                    run=run.number,
                    now=now,
                    progress=lambda done, total: progress.update(task, completed=done, total=total),
                )
            )
    finally:
        logbook.stop()  # the last window of decisions, written before the summary
        stop_logbook(context.db, logbook)
        simulation.close_run(context, run=run, config=config, summary=summary, at=utcnow())
    assert summary is not None  # the run ended without an exception
    return summary


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def summary_tables(summary: Summary) -> list[Table]:
    """The summary as tables: traffic, consent, decisions and clicks."""
    traffic = Table(title=f"simulated {summary.visitors:,} visitors, {summary.visits:,} visits")
    traffic.add_column("messages")
    traffic.add_column("pages' answers", justify="right")
    traffic.add_column("engine counter (admin key)", justify="right")
    counters = summary.counters
    traffic.add_row("sent", f"{summary.messages:,}", f"{counters.get('received', 0):,} received")
    taken = ", ".join(f"{counters.get(o, 0):,} {o}" for o in ("stored", "deduplicated", "suppressed"))
    traffic.add_row("accepted", f"{summary.statuses.get('accepted', 0):,}", taken)
    for status in ("quarantined", "dropped"):
        traffic.add_row(status, f"{summary.statuses.get(status, 0):,}", f"{counters.get(status, 0):,}")
    for code, count in sorted(summary.refused.items()):
        traffic.add_row(f"claim refused: {code}", "", f"{count:,}")

    consent = Table(title="consent choices (and the ceilings the engine reported for their decisions)")
    for column in ("banner answer", "visitors", "share", "choices acknowledged", "ceilings"):
        consent.add_column(column, justify="left" if column in ("banner answer", "ceilings") else "right")
    for group, visitors, recorded, ceilings in summary.consent:
        shown = ", ".join(f"{level} {count:,}" for level, count in ceilings.items())
        answered = f"{recorded:,}" if group not in (GPC, MINORS) else ""
        consent.add_row(group, f"{visitors:,}", _percent(visitors, summary.visitors), answered, shown)

    decisions = Table(title="decisions and clicks, by the level the engine reached")
    for column in ("level", "decisions", "clickable", "clicks", "click rate"):
        decisions.add_column(column, justify="left" if column == "level" else "right")
    rates = {rate.name: rate for rate in summary.clicks_by_level}
    for level, count in summary.decisions_by_level.items():
        rate = rates.get(level)
        decisions.add_row(
            level, f"{count:,}", f"{rate.decisions:,}" if rate else "0", f"{rate.clicks:,}" if rate else "0",
            _percent(rate.clicks, rate.decisions) if rate else "-",
        )  # fmt: skip

    variations = Table(title="clicks by the variation the engine showed")
    for column in ("placement / variation", "decisions", "clicks", "click rate"):
        variations.add_column(column, justify="left" if column.startswith("placement") else "right")
    for rate in summary.clicks_by_variation:
        variations.add_row(
            rate.name, f"{rate.decisions:,}", f"{rate.clicks:,}", _percent(rate.clicks, rate.decisions)
        )
    return [traffic, consent, decisions, variations]


def print_summary(summary: Summary) -> None:
    for table in summary_tables(summary):
        err.print(table)
    clicks = sum(summary.clicks_answered.values())
    err.print(
        f"click events: {clicks:,} sent; {summary.outcomes_kept:,} outcomes kept, clicks and orders naming "
        "a decision (one the visitor's consent does not cover is not kept)"
    )
    asked = sum(summary.explanations.values())
    err.print(f'"why am I seeing this?" asked {asked:,} times: {summary.explanations.get(200, 0):,} answered')
    balance = "holds" if summary.balanced else "[bold red]does not hold[/]"
    err.print(f"received = stored + deduplicated + quarantined + suppressed + dropped: {balance}")
    if summary.consent_refused:
        err.print(f"[bold red]{summary.consent_refused} banner choices refused by the engine[/]")
    if summary.server_errors or summary.wrong_scope or summary.failures:
        err.print(
            f"[bold red]{summary.server_errors} server errors, {summary.wrong_scope} requests with the wrong "
            f"key scope, visits cut short: {dict(summary.failures)}[/]"
        )
