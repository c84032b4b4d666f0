"""`tactful simulate` against a fresh database through the real HTTP API: what it reports is what the
engine answered and counted, every key is used for what its scope is for, and a seed brings the
same visitors again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tactful.api.context import AppContext
from tactful.audit.models import AuditEntry
from tactful.catalog.loader import load_catalog
from tactful.cli import app as cli
from tactful.collect.models import Event
from tactful.config import DecideSettings, Settings
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.decide.lineup_store import LineupHolder
from tactful.decide.models import DecisionLog
from tactful.demo import simulate as simulation
from tactful.demo.placements import seed_placements
from tactful.demo.simulate import SimulationConfig
from tactful.demo.tally import MINORS, Summary, Tally, summarise
from tactful.demo.visitors import Choice, make_visitors
from tactful.keys import service as keys_service
from tactful.main import create_app, default_catalog_path
from tactful.measure import outcomes as measure_outcomes
from tests.backends import fresh_database

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
SMALL = SimulationConfig(seed=127, visitors=40, days=3)
"""A plan with Swedes on phones, outdoor fans who accept personalization, minors and GPC."""


@contextmanager
def shop_context(backend: str, tmp_path: Path, *, audience_k: int = 50) -> Iterator[AppContext]:
    """A process context over fresh databases holding the demo's placements and nothing else."""
    with (
        fresh_database(backend, tmp_path) as url,
        fresh_database(backend, tmp_path, migrated=False, name="keys") as keys_url,
    ):
        db = Database(url)
        keystore = Keystore(keys_url, secret_key="test-secret-key-of-sufficient-length-000")
        keystore.create_schema()
        settings = Settings(
            database_url=url, keystore_url=keys_url, decide=DecideSettings(audience_k=audience_k)
        )
        # Outcomes reach measurement as in a served process (`main.build_context`): counted in /metrics.
        context = AppContext(
            settings=settings, db=db, keystore=keystore, catalog=load_catalog(default_catalog_path()),
            on_outcome=measure_outcomes.record,
        )  # fmt: skip
        # Shadow matches are settled on every decision, not once a second, so that when an audience
        # reaches k depends on the seed alone, never on how fast this machine runs the visits.
        context.lineups = LineupHolder(
            session=db.session, clock=time.monotonic, interval=0.0, sizes=context.audience_sizes()
        )
        seed_placements(context, catalog=context.catalog, now=NOW)
        try:
            yield context
        finally:
            db.dispose()
            keystore.dispose()


@dataclass(frozen=True)
class Ran:
    summary: Summary
    tally: Tally
    run: simulation.Run


def simulate(context: AppContext, config: SimulationConfig = SMALL) -> Ran:
    """One run as `tactful simulate` makes it, with the decision log written at the end."""
    app = create_app(context.settings, context=context)
    run = simulation.open_run(context, at=NOW)
    tally = Tally()
    summary = asyncio.run(
        simulation.simulate(
            transport_for=lambda address: httpx.ASGITransport(
                app=app, client=(address, 49152), raise_app_exceptions=False
            ),
            keys=run.keys,
            token_secret=context.settings.subject_token_secret.get_secret_value(),
            config=config,
            run=run.number,
            now=NOW,
            tally=tally,
        )
    )
    assert context.logbook is not None
    context.logbook.flush()
    simulation.close_run(context, run=run, config=config, summary=summary, at=NOW)
    return Ran(summary, tally, run)


def utc(moment: datetime) -> datetime:
    """A stored time as UTC (SQLite gives it back naive)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def route(path: str) -> str:
    """A request's path with a decision id as its template names it."""
    return "/v1/decisions/{id}/explanation" if path.startswith("/v1/decisions/") else path


@pytest.fixture(scope="module")
def runs(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppContext, Ran, Ran]]:
    """A run of `SMALL`, then a small second one on the same database."""
    # k = 2, so that the 1:many audience (Swedish visitors on a phone) serves within a small run.
    with shop_context(backend, tmp_path_factory.mktemp("simulate"), audience_k=2) as context:
        first = simulate(context)
        yield context, first, simulate(context, SimulationConfig(seed=SMALL.seed, visitors=5, days=1))


@pytest.fixture
def ran(runs: tuple[AppContext, Ran, Ran]) -> tuple[AppContext, Ran]:
    return runs[0], runs[1]


def test_every_message_is_accounted_for_by_the_engines_counters(ran: tuple[AppContext, Ran]) -> None:
    _, result = ran
    summary = result.summary
    counters = summary.counters
    assert summary.messages > 0
    assert counters["received"] == summary.messages
    # The pages read what each message alone decides; the engine's counters tell what became of it.
    assert counters["stored"] > 0
    assert counters["suppressed"] > 0, "some visitors' consent keeps their events out"
    assert counters["deduplicated"] == 0
    assert summary.statuses["accepted"] == counters["stored"] + counters["suppressed"]
    assert counters["quarantined"] == summary.statuses["quarantined"] == 0
    assert counters["dropped"] == summary.statuses["dropped"] == 0, "the catalog declares every event sent"
    assert summary.balanced
    assert counters["received"] == sum(counters[o] for o in ("stored", "deduplicated", "quarantined",
                                                              "suppressed", "dropped"))  # fmt: skip


def test_no_answer_is_a_server_error_and_no_visit_is_cut_short(ran: tuple[AppContext, Ran]) -> None:
    _, result = ran
    assert result.tally.requests
    assert {r.status for r in result.tally.requests} <= {200}
    assert result.summary.server_errors == 0
    assert result.summary.failures == {}


def test_pages_use_the_write_key_backends_the_server_key_and_only_metrics_the_admin_key(
    ran: tuple[AppContext, Ran],
) -> None:
    _, result = ran
    by_path: dict[str, set[str]] = {}
    for request in result.tally.requests:
        by_path.setdefault(f"{request.method} {route(request.path)}", set()).add(request.scope)
    assert by_path.pop("POST /v1/batch") == {"write"}
    assert by_path.pop("PUT /v1/consent") == {"write"}
    assert by_path.pop("POST /v1/decide") == {"server"}
    assert by_path.pop("GET /metrics") == {"admin"}
    assert by_path.pop("GET /v1/decisions/{id}/explanation", {"write"}) == {"write"}
    assert by_path == {}
    assert result.summary.wrong_scope == 0


def test_decisions_reach_every_level_and_each_is_logged(runs: tuple[AppContext, Ran, Ran]) -> None:
    context, first, second = runs
    levels = first.summary.decisions_by_level
    assert all(levels[level] > 0 for level in ("1:all", "1:many", "1:some", "1:few", "1:1")), levels
    for result in (first, second):
        decisions = sum(result.summary.decisions_by_level.values())
        assert decisions == 3 * result.summary.visits, "three placements answered on every visit"
    logged = sum(sum(r.summary.decisions_by_level.values()) for r in (first, second))
    with context.session() as session:
        assert session.scalar(select(func.count()).select_from(DecisionLog)) == logged


def test_consent_choices_show_in_the_ceilings_the_engine_reports(ran: tuple[AppContext, Ran]) -> None:
    _, result = ran
    consent = {
        choice: (visitors, recorded, ceilings)
        for choice, visitors, recorded, ceilings in result.summary.consent
    }
    assert sum(consent[str(choice)][0] for choice in Choice) == SMALL.visitors
    visitors, recorded, ceilings = consent["necessary only"]
    assert visitors > 0
    assert recorded == 5 * visitors, "each refusal is recorded"
    assert set(ceilings) == {"1:all"}, "refusing personalization leaves nothing above 1:all"
    assert result.summary.consent_refused == 0, "a page may grant for an anonymous id"
    _, recorded, _ = consent["no answer"]
    assert recorded == 0
    assert "1:1" in consent["accept all"][2]


def test_minors_and_gpc_without_a_grant_stay_at_or_below_1_many(ran: tuple[AppContext, Ran]) -> None:
    _, result = ran
    minors = [d for d in result.tally.decisions if d.minor]
    assert minors
    assert {d.ceiling for d in minors} | {d.level for d in minors} <= {"1:all", "1:many"}
    # GPC caps at 1:many until personalization is granted after it (DESIGN §1): those who granted
    # on the banner may climb, the others may not.
    silent = [
        d for d in result.tally.decisions if d.gpc and d.choice in (Choice.NO_ANSWER, Choice.NECESSARY_ONLY)
    ]
    assert silent
    assert {d.ceiling for d in silent} | {d.level for d in silent} <= {"1:all", "1:many"}
    consent = {group: ceilings for group, _, _, ceilings in result.summary.consent}
    assert set(consent[MINORS]) <= {"1:all", "1:many"}


def test_clicks_are_counted_under_what_the_engine_showed(ran: tuple[AppContext, Ran]) -> None:
    _, result = ran
    summary = result.summary
    shown = {(d.placement, d.variation) for d in result.tally.decisions}
    assert {r.name for r in summary.clicks_by_variation} == {
        f"{p} / {v}" for p, v in shown if p != "greeting"
    }
    assert sum(r.clicks for r in summary.clicks_by_level) == sum(
        r.clicks for r in summary.clicks_by_variation
    )
    clicks = sum(r.clicks for r in summary.clicks_by_level)
    assert clicks > 0
    assert summary.clicks_answered == {"accepted": clicks}, "every click was sent and answered"
    assert clicks <= summary.visits, "one click a visit at most"
    assert summary.outcomes_kept > 0


def test_stored_outcomes_name_a_logged_decision_and_keep_the_time_of_the_visit(
    runs: tuple[AppContext, Ran, Ran],
) -> None:
    context, first, second = runs
    with context.session() as session:
        logged = set(session.scalars(select(DecisionLog.decision_id)))
        outcomes = session.execute(
            select(Event.event, Event.properties, Event.timestamp, Event.received_at).where(
                Event.event.in_(("Promotion Clicked", "Product Clicked", "Order Completed"))
            )
        ).all()
    clicks = [o for o in outcomes if o.event != "Order Completed"]
    assert clicks
    named = [o for o in outcomes if "decision_id" in o.properties]
    assert len(named) == sum(r.summary.outcomes_kept for r in (first, second))  # the engine's count
    for outcome in outcomes:
        if outcome.event != "Order Completed" or "decision_id" in outcome.properties:
            assert outcome.properties["decision_id"] in logged
    # Events carry when they happened in the simulated visit (the window before NOW), not receipt time.
    assert all(utc(o.timestamp) < NOW for o in outcomes)
    assert all(utc(o.received_at) > NOW for o in outcomes)


def test_each_run_leaves_its_keys_revoked_and_an_audit_entry(runs: tuple[AppContext, Ran, Ran]) -> None:
    context, first, second = runs
    with context.session() as session:
        keys = {str(k.id): k for k in keys_service.list_keys(session)}
        assert all(keys[key_id].revoked_at is not None for key_id in first.run.key_ids + second.run.key_ids)
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == simulation.MARKER)).all()
    assert [e.details["run"] for e in entries] == [0, 1]


def test_the_same_seed_brings_the_same_visitors_and_requests(backend: str, tmp_path: Path) -> None:
    config = SimulationConfig(seed=5, visitors=10, days=2)
    runs = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        with shop_context(backend, tmp_path / name) as context:
            runs.append(simulate(context, config))
    first, second = runs
    assert [(r.method, route(r.path), r.scope) for r in first.tally.requests] == [
        (r.method, route(r.path), r.scope) for r in second.tally.requests
    ]
    assert first.summary.consent == second.summary.consent
    assert first.summary.decisions_by_level == second.summary.decisions_by_level
    assert first.summary.visits == second.summary.visits
    start = NOW - timedelta(days=config.days)
    assert make_visitors(5, 0, 10, start=start, end=NOW) == make_visitors(5, 0, 10, start=start, end=NOW)
    assert make_visitors(5, 0, 10, start=start, end=NOW) != make_visitors(6, 0, 10, start=start, end=NOW)
    assert make_visitors(5, 0, 10, start=start, end=NOW) != make_visitors(5, 1, 10, start=start, end=NOW)


def test_a_second_run_on_the_same_database_brings_new_visitors(runs: tuple[AppContext, Ran, Ran]) -> None:
    _, first, second = runs
    assert (first.run.number, second.run.number) == (0, 1)
    assert second.summary.messages > 0
    assert second.summary.counters["deduplicated"] == 0, "no message of the first run is sent again"
    assert second.summary.counters["received"] == second.summary.messages


def test_the_command_refuses_a_database_without_the_demo_and_prints_the_summary_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TACTFUL_KEYSTORE_URL", f"sqlite:///{tmp_path / 'keys.db'}")
    monkeypatch.setenv("TACTFUL_SECRET_KEY", "cli-test-secret-key-of-sufficient-length")
    monkeypatch.delenv("TACTFUL_CONFIG_FILE", raising=False)
    url = f"sqlite:///{tmp_path / 'main.db'}"
    runner = CliRunner()
    assert runner.invoke(cli, ["migrate", "--database-url", url]).exit_code == 0
    refused = runner.invoke(cli, ["simulate", "--visitors", "3", "--database-url", url])
    assert refused.exit_code == 1
    assert "the demo shop's placements are missing: run `tactful demo` first" in refused.stderr
    settings = Settings(database_url=url)
    keystore = Keystore(settings.keystore_url, secret_key=settings.secret_key.get_secret_value())
    context = AppContext(
        settings=settings, db=Database(url), keystore=keystore, catalog=load_catalog(default_catalog_path())
    )
    seed_placements(context, catalog=context.catalog, now=NOW)
    context.db.dispose()
    context.keystore.dispose()
    result = runner.invoke(
        cli,
        ["simulate", "--visitors", "6", "--days", "1", "--seed", "3", "--database-url", url],
        env={"COLUMNS": "160"},
    )
    assert result.exit_code == 0, result.stderr
    assert "simulated 6 visitors" in result.stderr
    assert "received = stored + deduplicated + quarantined + suppressed + dropped: holds" in result.stderr
    assert "server errors" not in result.stderr


def test_what_a_page_is_not_told_is_read_from_the_operators_metrics() -> None:
    page = "\n".join(
        (
            "# TYPE tactful_events counter",
            'tactful_events_total{outcome="stored"} 7.0',
            'tactful_events_total{outcome="suppressed"} 2.0',
            "# TYPE tactful_claims_refused counter",
            'tactful_claims_refused_total{reason="link_unverified"} 3.0',
            "# TYPE tactful_outcomes_received counter",
            "tactful_outcomes_received_total 4.0",
            "",
        )
    )
    assert simulation.counters(page) == {
        "stored": 7.0,
        "suppressed": 2.0,
        "refused:link_unverified": 3.0,
        "outcomes_received": 4.0,
    }
    tally = Tally(counters_before={"refused:link_unverified": 1.0}, counters_after=simulation.counters(page))
    summary = summarise(tally, clickable=frozenset(), visits=0)
    assert (summary.refused, summary.outcomes_kept) == ({"link_unverified": 2}, 4)
