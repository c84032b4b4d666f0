"""Why an atom may not be read: the gate's atom rules, one atom at a time, as reason codes.

The gate decides with integer masks over groups of atoms (`gate.py`); this module reads the same
rules atom by atom, and is asked only when someone wants the reason (an explanation, a view refusing
an atom). The tests hold the two readings to each other: an atom is outside the Allowance exactly
when it has a reason here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tactful.policy.index import PERSONALIZATION, PURPOSE_LEVEL, CatalogIndex
from tactful.policy.purposes import RESTRICTED, Evaluation
from tactful.policy.state import PURPOSE_BIT, SPECIAL_FEATURE_1, ConsentSnapshot
from tactful.policy.verdicts import Code, Reason
from tactful.types import Purpose


class AtomRules:
    """The atom-level rules, over one evaluation of the purposes."""

    def __init__(
        self,
        index: CatalogIndex,
        snapshot: ConsentSnapshot,
        evals: Mapping[Purpose, Evaluation],
        ceiling: int,
        *,
        limit_sensitive: bool,
        restricted: bool,
    ) -> None:
        self.index, self.snapshot, self.evals, self.ceiling = index, snapshot, evals, ceiling
        self.limit_sensitive, self.restricted = limit_sensitive, restricted
        top = ceiling < len(PERSONALIZATION)
        self.blocker = evals[PERSONALIZATION[ceiling]].reason if top else Reason(Code.NOT_ALLOWED)

    def decide_refusal(self, name: str) -> Reason | None:
        """Why `name` may not be read to decide (None: it may)."""
        if self.restricted:
            return RESTRICTED
        index, evals = self.index, self.evals
        routes = index.routes[name]
        if not routes:
            return Reason.of(Code.NO_PERSONALIZATION_PURPOSE, atom=name)
        if index.rank[name] > self.ceiling:
            return self.blocker
        usable = tuple(p for p in routes if evals[p].allowed and PURPOSE_LEVEL[p] <= self.ceiling)
        if not usable:
            first = evals[routes[0]]
            return first.reason if not first.allowed else self.blocker
        if all(evals[p].request_only for p in usable) and not index.bit[name] & index.request_context:
            return evals[usable[0]].reason.with_params(Code.STORING_NEEDS_CONSENT, atom=name)
        return self.atom_refusal(name, usable)

    def atom_refusal(self, name: str, usable: Sequence[Purpose]) -> Reason | None:
        """The rules of one atom whatever its level: explicit consent for special categories,
        device identifiers, CPRA limits, and TCF special feature 1 for precise location."""
        index, snapshot = self.index, self.snapshot
        bit = index.bit[name]
        for category, covering in index.explicit_needed.get(name, ()):
            if not any(c in snapshot.explicit_given for c in covering):
                return Reason.of(Code.EXPLICIT_MISSING, category=category)
        if bit & index.device and not any(self.evals[p].device_ok for p in usable):
            return Reason.of(Code.DEVICE_IDENTIFIER, atom=name)
        if self.limit_sensitive and bit & index.sensitive:
            return Reason(Code.LIMIT_SENSITIVE)
        if bit & index.precise:
            refused = SPECIAL_FEATURE_1 in snapshot.explicit_refused
            from_tcf = all(PURPOSE_BIT[p] & snapshot.tcf for p in usable)
            if refused or (from_tcf and SPECIAL_FEATURE_1 not in snapshot.explicit_given):
                return Reason(Code.SPECIAL_FEATURE_1)
        return None

    def refusal(self, name: str) -> Reason:
        """The reason for an atom the gate refused."""
        # The gate's masks and these rules are one policy read two ways (the tests check that
        # they agree); should they ever part, the atom stays refused and says so.
        return self.decide_refusal(name) or Reason(Code.NOT_ALLOWED)
