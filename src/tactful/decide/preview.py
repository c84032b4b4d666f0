"""The admin preview: what a placement would show a synthetic subject, never a real person.

    chosen ceiling ──▶ consent granted up to it (made up, never stored) ─┐
    significant decisions? ──▶ that explicit consent, and an adult's age ┤
        for the gate (unless the atoms give an age)                      │
    made-up atoms (traits, computed) + a context ────────────────────────┼──▶ the real gate ──▶
    a made-up id for splits ─────────────────────────────────────────────┘     Allowance + view
        ──▶ the same walk, conditions, assignment and sandbox as serving ──▶ Served (not logged)

A marketer checks an experience before and after publishing it: which level it reaches under which
consent, how its templates render with these values, why it does not apply. The subject is built
from the request alone: no store is read for it and nothing is written, so a preview can never show
a real person's data; it is not a decision, so it gets no decision log entry.

An experience with a significant effect (DESIGN §1) serves only a subject who gave the explicit
consent `significant_decisions` and is an adult, so the preview can say the subject gave it. The
age the gate then reads is one past every protection of age the configured regimes give (the
minors' cap, consent and opt-in ages); it is the gate's alone, never an atom the walk may read. An
age among the atoms is kept as given: a minor's preview shows why the experience does not serve.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from tactful.consent.fold import ConsentAction, ConsentEvent, fold
from tactful.consent.gatekeeper import PolicyContext, allowance_from
from tactful.consent.schemas import SubjectFlags
from tactful.decide import assignment, engine
from tactful.decide.context import request_atoms
from tactful.decide.engine import Served
from tactful.decide.lineup import Lineup
from tactful.decide.steps import ServingSteps
from tactful.errors import InvalidInput
from tactful.policy import AGE_ATOMS, SIGNIFICANT_DECISIONS, ProfileSnapshot, RequestSignals, build_view
from tactful.policy.state import ConsentSource
from tactful.types import LEVEL_PURPOSE, Level


def preview(
    *,
    policy: PolicyContext,
    lineup: Lineup,
    placement: str,
    ceiling: Level,
    atoms: Mapping[str, object],
    context: Mapping[str, object],
    unit: str,
    at: datetime,
    significant: bool = False,
) -> Served:
    """What `placement` shows a made-up subject who granted every pyramid purpose up to `ceiling`,
    holds `atoms` and sends `context`; `unit` is hashed for splits as a user id would be. With
    `significant`, the subject also gave the explicit consent `significant_decisions` and is an
    adult (unless `atoms` give an age)."""
    if placement not in lineup.placements:
        raise InvalidInput(f"no placement is called {placement!r}", code="unknown_placement")
    catalog = policy.catalog
    undeclared = sorted(name for name in atoms if name not in catalog.atoms)
    if undeclared:
        raise InvalidInput(
            f"the catalog does not declare {undeclared[0]!r}; give atoms by their catalog names",
            code="undeclared_atom",
            field="atoms",
        )
    granted = [
        ConsentEvent(ConsentAction.GRANTED, at, ConsentSource.API, purpose=purpose)
        for level, purpose in LEVEL_PURPOSE.items()
        if level <= ceiling
    ]
    gate_traits = atoms
    if significant:
        granted.append(
            ConsentEvent(ConsentAction.GRANTED, at, ConsentSource.API, explicit=SIGNIFICANT_DECISIONS)
        )
        if not any(name in atoms for name in AGE_ATOMS):
            gate_traits = {**atoms, "traits.age": adult_age(policy)}
    allowance = allowance_from(
        policy,
        consent=fold(granted),
        flags=SubjectFlags(),
        traits=gate_traits,
        at=at,
        signals=RequestSignals(),
    )
    view = build_view(allowance, ProfileSnapshot(values=atoms, request=request_atoms(catalog, context)))
    chosen = lineup.placements[placement]
    [served] = engine.decide(
        [chosen],
        allowance=allowance,
        view=view,
        at=at,
        steps=lambda p: ServingSteps(
            lineup, lineup.renderer, assignment.Unit.of(user_id=unit, anonymous_id=None), True, p.channel
        ),
        uses=lineup.atom_uses,
    )
    return served


def adult_age(policy: PolicyContext) -> int:
    """An age past every protection of age: the minors' cap and each regime's consent and opt-in age."""
    limits = [r.consent_age for r in policy.regimes] + [r.opt_in_age or 0 for r in policy.regimes]
    return max(policy.policy.minor_age, *limits)
