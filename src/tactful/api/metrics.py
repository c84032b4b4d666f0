"""Prometheus exposition of what the engine counts (no personal data: totals and reason codes only).

Collection's counters are read from the database, so every process reports the same totals; the rate
limiter's and the decision log buffer's are this process's own (scrape each process, as Prometheus
does by default).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from tactful.api.context import Context
from tactful.api.deps import AUTH_RESPONSES, require_admin
from tactful.api.ratelimit import Counts, Limit, limiter_of
from tactful.collect import service as collect_service
from tactful.collect.schemas import IngestStats
from tactful.decide import log as decision_log
from tactful.measure import outcomes as measure_outcomes
from tactful.types import utcnow

router = APIRouter(tags=["operations"], responses=AUTH_RESPONSES)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _IngestCollector(Collector):
    """The collection counters, read from the database so that every process reports the same totals."""

    def __init__(self, stats: IngestStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        outcomes = CounterMetricFamily(
            "tactful_events",
            "Events received, by outcome (received = stored + deduplicated + ...)",
            labels=["outcome"],
        )
        for outcome in ("received", "stored", "deduplicated", "quarantined", "suppressed", "dropped"):
            outcomes.add_metric([outcome], getattr(self.stats, outcome))
        yield outcomes
        quarantined = CounterMetricFamily(
            "tactful_events_quarantined_by_reason", "Quarantined events by reason", labels=["reason"]
        )
        for reason, count in sorted(self.stats.quarantined_by_reason.items()):
            quarantined.add_metric([reason], count)
        yield quarantined
        dropped_events = CounterMetricFamily(
            "tactful_events_dropped_by_reason",
            "Events dropped because the catalog does not declare them, by reason",
            labels=["reason"],
        )
        for reason, count in sorted(self.stats.dropped_by_reason.items()):
            dropped_events.add_metric([reason], count)
        yield dropped_events
        refused = CounterMetricFamily(
            "tactful_claims_refused",
            "Messages and consent requests whose key's word was not proof enough for part of what they asked",
            labels=["reason"],
        )
        for reason, count in sorted(self.stats.refused_by_reason.items()):
            refused.add_metric([reason], count)
        yield refused
        returned = CounterMetricFamily(
            "tactful_events_after_erasure",
            "Events naming an erased identifier, sent after the erasure: each began a new, empty subject",
        )
        returned.add_metric([], self.stats.after_erasure)
        yield returned
        dropped = CounterMetricFamily(
            "tactful_fields_dropped", "Fields dropped because the catalog does not declare them"
        )
        dropped.add_metric([], sum(self.stats.dropped_fields.values()))
        yield dropped
        redacted = CounterMetricFamily(
            "tactful_text_redactions",
            "Removals from free text and URL fields before storage, by what was removed",
            labels=["removed"],
        )
        by_kind: dict[str, int] = {}
        for name, count in self.stats.redacted.items():
            kind = name.partition(":")[0]
            by_kind[kind] = by_kind.get(kind, 0) + count
        for kind, count in sorted(by_kind.items()):
            redacted.add_metric([kind], count)
        yield redacted
        withheld = CounterMetricFamily(
            "tactful_fields_withheld",
            "Declared fields left out of stored events: none of their purposes allowed them",
        )
        withheld.add_metric([], sum(self.stats.withheld_fields.values()))
        yield withheld
        balanced = GaugeMetricFamily(
            "tactful_events_balanced", "1 when received equals the sum of the outcomes (invariant 10)"
        )
        balanced.add_metric([], 1.0 if self.stats.balanced else 0.0)
        yield balanced


class _RateLimitCollector(Collector):
    """The rate limiter's counters, since this process started."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        refused = CounterMetricFamily(
            "tactful_rate_limited_requests",
            "Requests refused with 429 by this process, by the window that was full",
            labels=["limit"],
        )
        for limit in Limit:
            refused.add_metric([limit.value], self.counts.refused.get(limit, 0))
        yield refused
        unavailable = CounterMetricFamily(
            "tactful_rate_limit_store_unavailable",
            "Requests this process admitted unchecked because the rate limit store (Redis) was unreachable",
        )
        unavailable.add_metric([], self.counts.store_unavailable)
        yield unavailable


@dataclass(frozen=True)
class DecisionLogStats:
    """This process's decision log buffer, and the processes found stopped mid-window."""

    served: int
    written: int
    pending: int
    lost: int
    stalled: int
    erased: int = 0


class _DecisionLogCollector(Collector):
    def __init__(self, stats: DecisionLogStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self.stats
        for name, help_text, value in (
            ("tactful_decisions_served", "Decisions this process served", stats.served),
            ("tactful_decisions_logged", "Decisions this process wrote to the decision log", stats.written),
            (
                "tactful_decisions_lost",
                "Decisions this process could not log: dropped beyond the buffer's limit while writes failed",
                stats.lost,
            ),
            (
                "tactful_decisions_erased",
                "Decisions this process served and did not write: their subject was erased first",
                stats.erased,
            ),
        ):
            counter = CounterMetricFamily(name, help_text)
            counter.add_metric([], value)
            yield counter
        pending = GaugeMetricFamily(
            "tactful_decisions_pending", "Decisions served, not yet written to the log"
        )
        pending.add_metric([], stats.pending)
        yield pending
        stalled = GaugeMetricFamily(
            "tactful_decision_log_stalled_processes",
            "Serving processes whose last decision log write is over 5 minutes old and that did not mark "
            "a stop: crashed (losing up to 100 ms or 500 decisions of log, never an event or a consent "
            "change) or idle since",
        )
        stalled.add_metric([], stats.stalled)
        yield stalled


class _OutcomeCollector(Collector):
    """Outcomes (track events naming a decision), read from the database: the same on every process."""

    def __init__(self, totals: measure_outcomes.Totals) -> None:
        self.totals = totals

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        totals = self.totals
        received = CounterMetricFamily("tactful_outcomes_received", "Stored track events naming a decision")
        received.add_metric([], totals.received)
        yield received
        linked = CounterMetricFamily(
            "tactful_outcomes_linked", "Outcomes linked to a decision of the same subject"
        )
        linked.add_metric([], totals.linked)
        yield linked
        unattributed = CounterMetricFamily(
            "tactful_outcomes_unattributed",
            "Outcomes not linked, by reason: malformed, undeclared, no_analytics, unknown_decision, "
            "other_subject, erased, failed",
            labels=["reason"],
        )
        for reason in measure_outcomes.Unattributed:
            unattributed.add_metric([reason.value], totals.unattributed.get(reason.value, 0))
        yield unattributed
        pending = GaugeMetricFamily(
            "tactful_outcomes_unattributed_pending",
            "Outcomes not yet linked: their decision is not written yet (received = linked + "
            "unattributed + pending)",
        )
        pending.add_metric([], totals.pending)
        yield pending


STALLED_AFTER = timedelta(minutes=5)
"""A process whose log mark is older than this and that did not mark its stop counts as stalled."""


@router.get(
    "/metrics",
    summary="Prometheus metrics: ingestion outcomes, quarantine reasons, dropped fields, rate limits, "
    "the decision log, decision outcomes",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request, context: Context, principal: require_admin) -> Response:
    now = utcnow()
    with context.session() as session:
        stats = collect_service.ingest_stats(session)
        stalled = decision_log.stalled(session, at=now, quiet=STALLED_AFTER)
        outcomes = measure_outcomes.totals(session)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_IngestCollector(stats))
    registry.register(_OutcomeCollector(outcomes))
    book = context.logbook
    if book is not None:
        registry.register(
            _DecisionLogCollector(
                DecisionLogStats(
                    book.sequence, book.written, book.pending, book.lost, len(stalled), book.erased
                )
            )
        )
    limiter = limiter_of(request)
    if limiter is not None:
        registry.register(_RateLimitCollector(limiter.counts()))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE)
