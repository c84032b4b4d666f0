"""Prometheus exposition of what the engine counts (no personal data: totals and reason codes only)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from tactful.api.context import Context
from tactful.api.deps import AUTH_RESPONSES, require_admin
from tactful.collect import service as collect_service
from tactful.collect.schemas import IngestStats

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
        for outcome in ("received", "stored", "deduplicated", "quarantined", "suppressed"):
            outcomes.add_metric([outcome], getattr(self.stats, outcome))
        yield outcomes
        quarantined = CounterMetricFamily(
            "tactful_events_quarantined_by_reason", "Quarantined events by reason", labels=["reason"]
        )
        for reason, count in sorted(self.stats.quarantined_by_reason.items()):
            quarantined.add_metric([reason], count)
        yield quarantined
        dropped = CounterMetricFamily(
            "tactful_fields_dropped", "Fields dropped because the catalog does not declare them"
        )
        dropped.add_metric([], sum(self.stats.dropped_fields.values()))
        yield dropped
        balanced = GaugeMetricFamily(
            "tactful_events_balanced", "1 when received equals the sum of the outcomes (invariant 10)"
        )
        balanced.add_metric([], 1.0 if self.stats.balanced else 0.0)
        yield balanced


@router.get(
    "/metrics",
    summary="Prometheus metrics: ingestion outcomes, quarantine reasons, dropped fields",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
)
def metrics(context: Context, principal: require_admin) -> Response:
    with context.session() as session:
        stats = collect_service.ingest_stats(session)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_IngestCollector(stats))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE)
