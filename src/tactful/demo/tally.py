"""What a simulation counts, from what the engine answered: every request's status and key scope,
each message's answer, each decision's level, variation and ceiling, and the engine's own counters
(`/metrics`: events by outcome, refused claims, outcomes kept) before and after the run. Pure
bookkeeping, no I/O.

The summary is built from these answers, never from the simulator's plan: a decision counts at the
level the engine said it reached, a click under the variation the engine said it showed. A page's
write key reads only what each message alone decides (`accepted`, a fault, an undeclared event), so
what became of the messages (stored or suppressed, claims refused, clicks kept as outcomes) comes
from the counters the operator reads with the admin key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tactful.demo.visitors import Choice

LEVELS = ("1:all", "1:many", "1:some", "1:few", "1:1")
OUTCOMES = ("received", "stored", "deduplicated", "quarantined", "suppressed", "dropped")
"""The engine's event counters (invariant 10: received is the sum of the other five)."""
STATUSES = ("accepted", "quarantined", "dropped")
"""What the collection endpoint answers a page (write key) for each message."""
REFUSED = "refused:"
"""The counters of refused claims (`tactful_claims_refused` by reason) are named `refused:<reason>`."""
OUTCOMES_RECEIVED = "outcomes_received"
"""The counter of stored track events naming a decision (`tactful_outcomes_received`)."""
GPC = "with GPC"
MINORS = "minors (13-17)"
BROWSER_PATHS = ("/v1/batch", "/v1/consent", "/v1/decisions/")
"""What a page sends: with the public write key only."""
BACKEND_PATHS = ("/v1/decide",)
"""What a site's backend asks: with its server key."""


@dataclass(frozen=True, slots=True)
class Sent:
    """One request as it went out and came back."""

    method: str
    path: str
    scope: str
    status: int


@dataclass(frozen=True, slots=True)
class Shown:
    """One decision as the engine answered it, and whether the visitor clicked it."""

    placement: str
    variation: str
    level: str
    ceiling: str
    clicked: bool = False
    choice: Choice = Choice.NO_ANSWER
    """The visitor's banner answer, and below, whether they sent GPC and are a minor."""
    gpc: bool = False
    minor: bool = False


@dataclass
class Tally:
    """The run's counts, filled in as answers arrive."""

    requests: list[Sent] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    decisions: list[Shown] = field(default_factory=list)
    clicks_answered: Counter[str] = field(default_factory=Counter)
    """Click events by the collection's answer to the page (`accepted` whether kept or not)."""
    visitors: Counter[Choice] = field(default_factory=Counter)
    gpc: int = 0
    minors: int = 0
    consent_recorded: Counter[Choice] = field(default_factory=Counter)
    consent_refused: Counter[Choice] = field(default_factory=Counter)
    explanations: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    """Visits cut short by a refused call, by the problem code the engine answered."""
    counters_before: dict[str, float] = field(default_factory=dict)
    counters_after: dict[str, float] = field(default_factory=dict)

    def sent(self, request: Sent) -> None:
        self.requests.append(request)

    def outcomes(self, statuses: Iterable[str]) -> None:
        self.statuses.update(statuses)

    def decided(self, shown: Shown) -> None:
        self.decisions.append(shown)


@dataclass(frozen=True)
class Rate:
    """Clicks of the decisions of one group (a level, or a placement's variation)."""

    name: str
    decisions: int
    clicks: int

    @property
    def rate(self) -> float:
        return self.clicks / self.decisions if self.decisions else 0.0


@dataclass(frozen=True)
class Summary:
    """The figures `tactful simulate` prints, all read from the engine's answers."""

    visitors: int
    visits: int
    messages: int
    statuses: Mapping[str, int]
    """The pages' answers, by status."""
    refused: Mapping[str, int]
    """Claims the engine refused over the run, by reason (its counters: never told to a page)."""
    counters: Mapping[str, int]
    """The engine's event counters over the run (after minus before)."""
    decisions_by_level: Mapping[str, int]
    consent: tuple[tuple[str, int, int, Mapping[str, int]], ...]
    """(choice, visitors, choices acknowledged, ceilings the engine reported for their decisions); then
    the visitors who sent GPC, and the minors, with theirs."""
    clicks_by_level: tuple[Rate, ...]
    clicks_by_variation: tuple[Rate, ...]
    clicks_answered: Mapping[str, int]
    outcomes_kept: int
    """Track events naming a decision that the engine stored over the run (clicks, and orders
    after a click): those the visitor's consent does not cover are not kept, nor learned from."""
    consent_refused: int
    """Banner choices the engine refused (none expected: a page may grant for an anonymous id)."""
    explanations: Mapping[int, int]
    failures: Mapping[str, int]
    server_errors: int
    """Answers with a 5xx status (there should be none)."""
    wrong_scope: int
    """Requests a page would send that went with another key than the write key, or a backend's
    that went without the server key (there should be none)."""

    @property
    def balanced(self) -> bool:
        """Invariant 10 over the run, by the engine's own counters."""
        c = self.counters
        return c.get("received", 0) == sum(c.get(o, 0) for o in OUTCOMES[1:])


def wrong_scope(request: Sent) -> bool:
    if request.path.startswith(BROWSER_PATHS):
        return request.scope != "write"
    if request.path.startswith(BACKEND_PATHS):
        return request.scope != "server"
    return request.scope != "admin"


def _rates(groups: Mapping[str, list[Shown]]) -> tuple[Rate, ...]:
    return tuple(
        Rate(name, len(shown), sum(s.clicked for s in shown)) for name, shown in groups.items() if shown
    )


def _ceilings(decisions: Iterable[Shown]) -> dict[str, int]:
    counts = Counter(d.ceiling for d in decisions)
    return {level: counts[level] for level in LEVELS if counts.get(level)}


def summarise(tally: Tally, *, clickable: frozenset[str], visits: int) -> Summary:
    by_level: dict[str, list[Shown]] = {level: [] for level in LEVELS}
    by_variation: dict[str, list[Shown]] = {}
    for shown in tally.decisions:
        if shown.placement in clickable:
            by_level.setdefault(shown.level, []).append(shown)
            by_variation.setdefault(f"{shown.placement} / {shown.variation}", []).append(shown)
    levels = Counter(s.level for s in tally.decisions)
    before, after = tally.counters_before, tally.counters_after

    def delta(name: str) -> int:
        return round(after.get(name, 0.0) - before.get(name, 0.0))

    refused = {name.removeprefix(REFUSED): delta(name) for name in sorted(after) if name.startswith(REFUSED)}
    return Summary(
        visitors=sum(tally.visitors.values()),
        visits=visits,
        messages=sum(tally.statuses.values()),
        statuses={s: tally.statuses.get(s, 0) for s in STATUSES},
        refused={code: n for code, n in refused.items() if n},
        counters={o: delta(o) for o in OUTCOMES},
        decisions_by_level={level: levels.get(level, 0) for level in LEVELS},
        consent=(
            *(
                (
                    str(choice),
                    tally.visitors.get(choice, 0),
                    tally.consent_recorded.get(choice, 0),
                    _ceilings(d for d in tally.decisions if d.choice is choice),
                )
                for choice in Choice
            ),
            (GPC, tally.gpc, 0, _ceilings(d for d in tally.decisions if d.gpc)),
            (MINORS, tally.minors, 0, _ceilings(d for d in tally.decisions if d.minor)),
        ),
        clicks_by_level=_rates(by_level),
        clicks_by_variation=_rates(dict(sorted(by_variation.items()))),
        clicks_answered=dict(tally.clicks_answered),
        outcomes_kept=delta(OUTCOMES_RECEIVED),
        consent_refused=sum(tally.consent_refused.values()),
        explanations=dict(tally.explanations),
        failures=dict(tally.failures),
        server_errors=sum(r.status >= 500 for r in tally.requests),
        wrong_scope=sum(wrong_scope(r) for r in tally.requests),
    )
