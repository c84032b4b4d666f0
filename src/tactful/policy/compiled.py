"""The compiled gate: a catalog and a deployment's regimes, worked out once into what every call reads.

    catalog ──build_index──▶ CatalogIndex (atom groups as masks) ───────┐
    regimes ──every set applicable_regimes can answer──▶ PurposeTables ─┼──▶ Gate(version)
    age policy ─────────────────────────────────────────────────────────┘
    Gate.evaluate(consent, facts, signals, at) ──▶ Allowance   (kept when the ledger holds nothing)

A `Gate` is plain data built by `compile_gate`; the application holds one and replaces it when the
catalog changes (its `version`, derived from the catalog's content). Nothing is kept between calls
in modules: two gates over two catalogs share no table.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from itertools import combinations

from tactful.catalog.model import Catalog
from tactful.policy.allowance import Allowance
from tactful.policy.gate import DEFAULT_AGE_POLICY, allowance_of
from tactful.policy.index import CatalogIndex, build_index
from tactful.policy.inputs import AgePolicy, RequestSignals, SubjectFacts
from tactful.policy.purposes import PurposeTable, build_table
from tactful.policy.regimes import GDPR, Regime, applicable_regimes
from tactful.policy.state import ConsentState

DEFAULT_REGIMES: tuple[Regime, ...] = (GDPR,)
"""What `applicable_regimes` answers when no configured regime covers a subject."""
_UNRECORDED_KEPT = 256
"""At most this many answers for subjects with nothing recorded are kept by one gate."""
_EVERY_SUBSET = 6
"""Up to this many configured regimes, a table is compiled for every set of them that can apply
(63 at most); past it, a set's table is compiled the first time it applies."""


@dataclass(frozen=True, eq=False)
class Gate:
    """The policy gate compiled for one catalog (of `version`) and one deployment's regimes."""

    catalog: Catalog
    regimes: tuple[Regime, ...]
    age_policy: AgePolicy
    given_version: str | None
    index: CatalogIndex
    tables: dict[tuple[Regime, ...], PurposeTable]
    """By set of regimes, in their configured order; a set not compiled is added when it first applies."""
    unrecorded: dict[tuple[object, ...], Allowance] = field(default_factory=dict, repr=False)
    """Answers for subjects whose ledger holds nothing, by (regimes, facts, signals): what every
    newcomer gets, asked for on every request (`evaluate`)."""

    @cached_property
    def version(self) -> str:
        """The catalog's version: the one given at compile time, else its content's digest (worked
        out when first asked: a gate that is never compared with another needs none)."""
        return self.given_version or catalog_version(self.catalog)

    def applicable(
        self, establishment: str | None, country: str | None, region: str | None
    ) -> tuple[Regime, ...]:
        """The configured regimes that cover a subject (`applicable_regimes`)."""
        return applicable_regimes(
            establishment, country, region, regimes=self.regimes, default=DEFAULT_REGIMES
        )

    def evaluate(
        self,
        *,
        consent: ConsentState,
        regimes: Sequence[Regime],
        facts: SubjectFacts,
        signals: RequestSignals,
        at: datetime,
    ) -> Allowance:
        """What may be read about the subject at `at` under `regimes` (those that apply; not empty).

        With nothing recorded and no age that needs the date, the answer does not depend on `at`:
        it is the same for every such subject, worked out once per gate and kept (`unrecorded`)."""
        chosen = tuple(regimes)
        key: tuple[object, ...] | None = None
        if consent.empty and facts.birthdate is None and facts.age_range is None:
            key = (chosen, facts, signals)
            found = self.unrecorded.get(key)
            if found is not None:
                return found
        table = self.tables.get(chosen)
        if table is None:
            table = self._late_table(chosen)
        answer = allowance_of(
            self.index,
            table,
            consent=consent,
            facts=facts,
            signals=signals,
            at=at,
            age_policy=self.age_policy,
        )
        # Facts and signals come from what subjects send (a country trait): the kept answers are
        # bounded, past which they are worked out each time.
        if key is not None and len(self.unrecorded) < _UNRECORDED_KEPT:
            self.unrecorded[key] = answer
        return answer

    def _late_table(self, regimes: tuple[Regime, ...]) -> PurposeTable:
        if not regimes:
            raise ValueError("the gate needs at least one regime (applicable_regimes never returns none)")
        # A set no compiled table covers (many configured regimes, or a caller's own set): its table
        # is built from the same rule and kept with this gate.
        table = self.tables[regimes] = build_table(regimes)
        return table


def regime_sets(regimes: Sequence[Regime]) -> Iterable[tuple[Regime, ...]]:
    """Every set of `regimes` that `applicable_regimes` can answer, in their order, and its default."""
    yield DEFAULT_REGIMES
    if len(regimes) > _EVERY_SUBSET:
        return
    for size in range(1, len(regimes) + 1):
        yield from combinations(regimes, size)


def compile_gate(
    catalog: Catalog,
    *,
    regimes: Sequence[Regime],
    age_policy: AgePolicy = DEFAULT_AGE_POLICY,
    version: str | None = None,
) -> Gate:
    """The gate for `catalog` under the deployment's `regimes`: everything that does not depend on a
    subject, worked out now. `version` defaults to the catalog's content digest."""
    configured = tuple(regimes)
    tables = {chosen: build_table(chosen) for chosen in regime_sets(configured)}
    return Gate(
        catalog=catalog,
        regimes=configured,
        age_policy=age_policy,
        given_version=version,
        index=build_index(catalog),
        tables=tables,
    )


def evaluate(
    *,
    catalog: Catalog,
    consent: ConsentState,
    regimes: Sequence[Regime],
    facts: SubjectFacts,
    signals: RequestSignals,
    at: datetime,
    age_policy: AgePolicy = DEFAULT_AGE_POLICY,
) -> Allowance:
    """One answer from a gate compiled for this call alone: for tools and tests. A process compiles
    its gate once (`compile_gate`) and calls `Gate.evaluate`."""
    if not regimes:
        raise ValueError("evaluate needs at least one regime (applicable_regimes never returns none)")
    chosen = tuple(regimes)
    gate = Gate(
        catalog=catalog,
        regimes=chosen,
        age_policy=age_policy,
        given_version=None,
        index=build_index(catalog),
        tables={chosen: build_table(chosen)},
    )
    return gate.evaluate(consent=consent, regimes=chosen, facts=facts, signals=signals, at=at)


# -- the catalog's version ------------------------------------------------------------------------


def catalog_version(catalog: Catalog) -> str:
    """A digest of the catalog's content in a canonical form: equal catalogs, equal versions, in
    every process (sets are sorted, so the order of a hash never shows). Private fields are what
    the catalog derives from its public ones, and are left out."""
    text = json.dumps(_canonical(catalog), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _canonical(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        public = (f.name for f in dataclasses.fields(value) if not f.name.startswith("_"))
        fields = {name: _canonical(getattr(value, name)) for name in public}
        return {"__type__": type(value).__name__, **fields}
    if isinstance(value, enum.Enum):
        return _canonical(value.value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, frozenset | set):
        items = [_canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, timedelta):
        return {"__timedelta__": value.total_seconds()}
    if isinstance(value, date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    # A repr may name a memory address: never part of a version.
    raise TypeError(f"no canonical form for {type(value).__name__} in a catalog")
