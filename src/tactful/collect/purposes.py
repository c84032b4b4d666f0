"""The purposes each new event may serve at receipt, decided once per request (issue 3, part 7).

    new events ─▶ Arrival (consent context, GPC) ─▶ consent.intake.receive ─▶ ledgers, then the
                                                  gate's seam ─▶ Allowance per subject
    event atom (catalog) + Allowance ─▶ purposes ─┬─ some ─▶ stored with them (`events.purposes`)
                                                  └─ none ─▶ suppressed, reason `no_purpose`

Which atom an event is:
- track, page, screen, group: its event atom; an event type the catalog does not declare has no
  purpose, and `essential` counts only for the event types the catalog marks essential;
- identify: linking identities is `essential`; each trait it carries is kept only for its own
  atom's purposes (the others are left out of the event and of the profile);
- the user traits any call repeats in `context.traits` (analytics.js does) follow the same rule;
- alias: linking identities, `essential`.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tactful.catalog.filtering import event_atom_name
from tactful.catalog.model import Catalog
from tactful.collect import store
from tactful.collect.message import MessageType
from tactful.collect.schemas import CollectCatalog, Refusal, Source
from tactful.collect.validate import ValidEvent
from tactful.config import PolicySettings
from tactful.consent import intake, ledger, withdrawal
from tactful.consent.gatekeeper import PolicyContext, allowance_from
from tactful.consent.regimes import configured_regimes
from tactful.consent.schemas import SubjectFlags
from tactful.crypto import Keystore
from tactful.policy import AGE_ATOMS, Allowance, Regime
from tactful.profiles import service as profiles_service
from tactful.types import Purpose

_LINK = frozenset({Purpose.ESSENTIAL})


@dataclass(frozen=True)
class Arriving:
    """One new event on its way in: its subject, what validation read, its message id, and the user
    traits it carries (an identify's own, and those repeated in `context.traits`)."""

    subject_id: uuid.UUID
    event: ValidEvent
    message_id: str
    traits: Mapping[str, Any]
    may_grant: bool = True
    """Whether its consent context may grant (see `intake.Arrival.may_grant`)."""
    may_widen: bool = True
    """Whether it may write an identified person's identifiers or lift their age protections: the
    person is anonymous, or the message proves who they are (DESIGN §4)."""


@dataclass(frozen=True)
class Decision:
    """What an event may be stored for, and which of the user traits it carries may be kept."""

    purposes: frozenset[Purpose]
    traits: frozenset[str] = frozenset()
    refused: tuple[str, ...] = ()
    """Reason codes of what the event carried and may not do without proof (traits not kept)."""


class Decisions:
    """The request's allowances, and the purposes of each event under them."""

    def __init__(
        self,
        policy: PolicyContext,
        allowances: Mapping[uuid.UUID, Allowance],
        *,
        traits: Mapping[uuid.UUID, Mapping[str, object]] | None = None,
        at: datetime | None = None,
    ) -> None:
        self.policy = policy
        self.allowances = allowances
        self._gate_traits = traits or {}
        self._at = at
        self.refused_grants: dict[str, int] = {}
        """Grants not recorded for want of proof, by message id."""
        self._purposes = {s: intake.Purposes(a) for s, a in allowances.items()}
        self._computed = tuple(a.name for a in policy.catalog.atom_list if a.name.startswith("computed."))
        self._decided: dict[tuple[object, ...], Decision] = {}

    def decide(self, item: Arriving) -> Decision:
        # A subject's events repeat themselves (page after page, the same traits in context): the
        # answer depends on nothing else than the subject, the kind, the name and the trait names.
        key: tuple[object, ...] = (
            item.subject_id,
            item.event.type,
            item.event.name,
            item.may_widen,
            *item.traits,
        )
        if not item.may_widen:
            # Then an age claim's values decide too: a younger age is kept, an older one is not.
            key += tuple(repr(item.traits[n]) for n in item.traits if f"traits.{n}" in AGE_ATOMS)
        found = self._decided.get(key)
        if found is None:
            found = self._decided[key] = self._decide(item)
        return found

    def _decide(self, item: Arriving) -> Decision:
        finder = self._purposes[item.subject_id]
        catalog = self.policy.catalog
        kind = item.event.type
        kept = frozenset(
            name
            for name in item.traits
            if (atom := catalog.trait_atoms.get(name)) is not None and finder.of(atom)
        )
        refused: tuple[str, ...] = ()
        if not item.may_widen:
            kept, refused = self._without_widening(item, kept)
        if kind in (MessageType.ALIAS, MessageType.IDENTIFY):
            return Decision(_LINK, kept, refused)
        return Decision(_event_purposes(finder, catalog, item.event), kept, refused)

    def age_declared(self, item: Arriving, decision: Decision) -> bool:
        """Whether the event keeps an age atom that changes what is stored (an age gate, a sign-up):
        collection records how the age was declared, as age assurance asks."""
        stored = self._gate_traits.get(item.subject_id, {})
        return any(
            f"traits.{name}" in AGE_ATOMS and stored.get(f"traits.{name}") != item.traits[name]
            for name in decision.traits
        )

    def _without_widening(
        self, item: Arriving, kept: frozenset[str]
    ) -> tuple[frozenset[str], tuple[str, ...]]:
        """Of the traits `kept`, those a claim without proof may write about an identified person:
        no direct identifier, and no age that lifts an age protection (a younger age is accepted)."""
        atoms = self.policy.catalog.trait_atoms
        refused: list[str] = []
        identifiers = {n for n in kept if (atom := atoms.get(n)) is not None and atom.identifier}
        if identifiers:
            refused.append(Refusal.IDENTIFIER_TRAIT.value)
        ages = {n for n in kept if f"traits.{n}" in AGE_ATOMS}
        if ages:
            before = dict(self._gate_traits.get(item.subject_id, {}))
            after = before | {f"traits.{n}": item.traits[n] for n in ages}
            at = self._at or item.event.timestamp
            if self.policy.lifts_age_protection(before, after, at=at):
                refused.append(Refusal.AGE_CLAIM.value)
            else:
                ages = set()
        return kept - identifiers - ages, tuple(refused)

    def unsupported_computed(self, subject_id: uuid.UUID) -> frozenset[str]:
        """The computed atoms this subject may not have stored (collection computes them all)."""
        storable = withdrawal.storable_purposes(self.allowances[subject_id])
        return withdrawal.unsupported(self.policy.catalog, self._computed, storable)


def _event_purposes(finder: intake.Purposes, catalog: Catalog, event: ValidEvent) -> frozenset[Purpose]:
    name = event_atom_name(event.type.value, event.name)
    atom = catalog.atoms.get(name) if name is not None else None
    return finder.of(atom) if atom is not None else frozenset()


def newcomer(policy: PolicyContext, at: datetime) -> Callable[[ValidEvent], frozenset[Purpose]]:
    """The purposes a track, page, screen or group event may serve when it comes from someone never
    seen before and says nothing about consent: the gate's answer for an empty ledger, no traits and
    no signals, the same for every such person (what `decide` answers for them once created)."""
    allowance = allowance_from(
        policy, consent=ledger.fold_entries(()), flags=SubjectFlags(), traits={}, at=at
    )
    finder = intake.Purposes(allowance)
    return lambda event: _event_purposes(finder, policy.catalog, event)


@functools.cache
def _default_policy() -> tuple[PolicySettings, tuple[Regime, ...]]:
    policy = PolicySettings()
    return policy, configured_regimes(policy)


def policy_for(catalog: CollectCatalog, given: PolicyContext | None) -> PolicyContext | None:
    """The gate's inputs: those given, else the default policy over a real catalog; None for a
    stand-in catalog, which has no purposes to decide with (tests of collection alone)."""
    if not isinstance(catalog, Catalog):
        return None
    global _last_default  # a one-entry cache; swapping the reference is atomic
    if given is not None:
        return given
    last = _last_default
    if last is not None and last.catalog is catalog:
        return last  # its gate compiled once, as an application's context holds one
    settings, regimes = _default_policy()
    made = PolicyContext(catalog, settings, regimes, on_withdrawal=store.withdrawal_hook(catalog))
    _last_default = made
    return made


_last_default: PolicyContext | None = None
"""The default context last made, for the catalog it was made for: compiling a gate takes longer
than a batch's whole ingestion, so it is not done again for every call with the same catalog."""


def decide(
    session: Session,
    *,
    keystore: Keystore,
    policy: PolicyContext,
    items: Sequence[Arriving],
    source: Source,
    at: datetime,
    nothing_stored: frozenset[uuid.UUID] = frozenset(),
) -> Decisions:
    """Fold the consent the items carry into the ledger (GPC before the response), then answer the
    gate for every subject once. `nothing_stored`: subjects this request created, which no earlier
    event or atom can belong to."""
    base = {"request_id": source.request_id or ""}
    if source.write_key_id is not None:
        base["key_id"] = str(source.write_key_id)
    arrivals = [
        intake.Arrival(
            subject_id=item.subject_id,
            consent=item.event.consent,
            gpc=source.gpc or item.event.gpc is True,
            proof={**base, "message_id": item.message_id},
            may_grant=item.may_grant,
        )
        for item in items
    ]
    actor = f"collect:key:{source.write_key_id}" if source.write_key_id else "collect"
    received = intake.receive(
        session, keystore=keystore, policy=policy, arrivals=arrivals, at=at, actor=actor,
        nothing_stored=nothing_stored,
    )  # fmt: skip
    traits = {s: given.traits for s, given in received.inputs.items()}
    decisions = Decisions(policy, received.allowances, traits=traits, at=at)
    refused = received.refused
    decisions.refused_grants = {items[i].message_id: n for i, n in refused.items()}
    return decisions


def withheld_computed(
    decisions: Decisions, subject_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, frozenset[str]]:
    """For each subject, the computed atoms it may not have stored: collection does not compute them."""
    found = {s: decisions.unsupported_computed(s) for s in dict.fromkeys(subject_ids)}
    return {s: atoms for s, atoms in found.items() if atoms}


def purge_computed(session: Session, withheld: Mapping[uuid.UUID, frozenset[str]]) -> None:
    """Remove withheld computed atoms stored before (say, before an identify told the subject's age
    and made it a minor, who is not profiled): one statement per distinct set of atoms."""
    groups: dict[frozenset[str], list[uuid.UUID]] = {}
    for subject, atoms in withheld.items():
        groups.setdefault(atoms, []).append(subject)
    for atoms, subjects in groups.items():
        profiles_service.purge_atoms_many(session, subject_ids=subjects, atoms=atoms, computed_only=True)
