"""What newly received data may be stored for, under each subject's consent at receipt: the gate's
answer for a batch of arrivals, turned into purposes per atom (issue 3, part 7; issue 9, part 2).

    arrivals (carried choices, GPC, proof) ─▶ intake.receive ─▶ ledgers, then the gate's seam
                                                                     │ Allowance per subject
                                                                     ▼
    Item (subject, the atom it is, user traits, may widen) ─▶ Decisions.decide ─▶ Decision
        purposes: the atom's declared purposes that hold for storage (none: nothing stored)
        traits: the user traits some allowed purpose keeps, less what a claim may not widen
    Decisions.withheld_computed ─▶ the computed atoms a subject may not have stored
    newcomer(policy, at) ─▶ the purposes of someone never seen before (an empty ledger)

Consent knows atoms, not messages: the caller says which atom each arrival is (`Item.atom`), or that
it links identities (`Item.links`, always `essential`). A claim that may not widen (an identified
person's data sent without proof, DESIGN §4) keeps no direct identifier, no age that lifts an age
protection and no place of residence that takes a regime away (a regime added only restricts: the
strictest answer wins); `Decision.needs_proof` says which it tried.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from tactful.consent import intake, ledger, withdrawal
from tactful.consent.gatekeeper import PLACE_ATOMS, PolicyContext, allowance_from, applicable_regimes
from tactful.consent.schemas import SubjectFlags
from tactful.crypto import Keystore
from tactful.policy import AGE_ATOMS, Allowance
from tactful.types import Purpose

LINK_PURPOSES = frozenset({Purpose.ESSENTIAL})
"""What linking identities (identify, alias) is done for."""
_CLAIMED = frozenset(AGE_ATOMS) | PLACE_ATOMS


class NeedsProof(StrEnum):
    """What a claim that may not widen tried to write about an identified person, and did not."""

    IDENTIFIER = "identifier"
    """A direct identifier (e-mail, name, phone)."""
    AGE = "age"
    """An age that would lift an age protection (a younger age is kept)."""
    PLACE = "place"
    """A country or region that would take a regime away from the person (one that only adds a
    regime is kept): moving an EU resident to a regime of opt-outs would widen what is done."""


@dataclass(frozen=True)
class Item:
    """One arrival as consent sees it: its subject, the atom it is, and the user traits it carries."""

    subject_id: uuid.UUID
    atom: str | None
    """The name of the event atom it is (None when there is no such name: it serves no purpose)."""
    traits: Mapping[str, Any]
    """User traits by name (`first_name`, not `traits.first_name`)."""
    links: bool = False
    """It links identities (identify, alias): `essential`, whatever `atom` says."""
    may_widen: bool = True
    """Whether it may write an identified person's identifiers or lift their age protections: the
    person is anonymous, or the message proves who they are (DESIGN §4)."""


@dataclass(frozen=True)
class Decision:
    """What an arrival may be stored for, and which of the user traits it carries may be kept."""

    purposes: frozenset[Purpose]
    traits: frozenset[str] = frozenset()
    needs_proof: tuple[NeedsProof, ...] = ()
    """What it carried and may not write without proof (those traits are not in `traits`)."""


def _atom_purposes(finder: intake.Purposes, policy: PolicyContext, atom: str | None) -> frozenset[Purpose]:
    found = policy.catalog.atoms.get(atom) if atom is not None else None
    return finder.of(found) if found is not None else frozenset()


class Decisions:
    """A batch's allowances at `at`, and the purposes of each item under them."""

    def __init__(
        self,
        policy: PolicyContext,
        allowances: Mapping[uuid.UUID, Allowance],
        *,
        at: datetime,
        traits: Mapping[uuid.UUID, Mapping[str, object]] | None = None,
        refused_grants: Mapping[int, int] | None = None,
        versions: Mapping[uuid.UUID, str] | None = None,
    ) -> None:
        self.policy = policy
        self.allowances = allowances
        self.refused_grants: Mapping[int, int] = refused_grants or {}
        """By arrival index, the grants not recorded because the arrival may not grant."""
        self._gate_traits = traits or {}
        self._versions = versions or {}
        self._at = at
        # One finder per distinct answer: subjects the gate answered alike (every newcomer gets
        # the answer it keeps for an empty ledger) share its work, and `decide`'s answers.
        finders: dict[int, intake.Purposes] = {}
        self._purposes: dict[uuid.UUID, intake.Purposes] = {}
        for subject, allowance in allowances.items():
            finder = finders.get(id(allowance))
            if finder is None:
                finder = finders[id(allowance)] = intake.Purposes(allowance)
            self._purposes[subject] = finder
        self._computed = tuple(a.name for a in policy.catalog.atom_list if a.name.startswith("computed."))
        self._decided: dict[tuple[object, ...], Decision] = {}
        self._session: dict[int, frozenset[str]] = {}

    def version(self, subject_id: uuid.UUID) -> str:
        """The version of the subject's refusals as read for these answers (`GateInputs.version`)."""
        return self._versions.get(subject_id, "0")

    def session_atoms(self, subject_id: uuid.UUID) -> frozenset[str]:
        """The session atoms this subject's behaviour may be counted for: those its storage
        Allowance keeps for personalization.behavioral."""
        finder = self._purposes[subject_id]
        found = self._session.get(id(finder))
        if found is None:
            found = self._session[id(finder)] = frozenset(
                a.name for a in self.policy.catalog.session_atoms if Purpose.BEHAVIORAL in finder.of(a)
            )
        return found

    def decide(self, item: Item) -> Decision:
        # Arrivals repeat themselves (page after page, the same traits in context): the answer
        # depends on nothing else than the subject's Allowance (its finder), the atom and the
        # trait names.
        finder = self._purposes[item.subject_id]
        key: tuple[object, ...] = (finder, item.links, item.atom, item.may_widen, *item.traits)
        if not item.may_widen:
            # Then the subject's stored age and place and a claim's values decide too: a younger age
            # is kept, an older one is not; a place that adds a regime is kept, one that drops one not.
            key += (item.subject_id,)
            key += tuple(repr(item.traits[n]) for n in item.traits if f"traits.{n}" in _CLAIMED)
        found = self._decided.get(key)
        if found is None:
            found = self._decided[key] = self._decide(item)
        return found

    def _decide(self, item: Item) -> Decision:
        finder = self._purposes[item.subject_id]
        atoms = self.policy.catalog.trait_atoms
        kept = frozenset(
            name for name in item.traits if (atom := atoms.get(name)) is not None and finder.of(atom)
        )
        needs: tuple[NeedsProof, ...] = ()
        if not item.may_widen:
            kept, needs = self._without_widening(item, kept)
        if item.links:
            return Decision(LINK_PURPOSES, kept, needs)
        return Decision(_atom_purposes(finder, self.policy, item.atom), kept, needs)

    def age_declared(self, item: Item, decision: Decision) -> bool:
        """Whether the item keeps an age atom that changes what is stored (an age gate, a sign-up):
        the caller records how the age was declared, as age assurance asks."""
        stored = self._gate_traits.get(item.subject_id, {})
        return any(
            f"traits.{name}" in AGE_ATOMS and stored.get(f"traits.{name}") != item.traits[name]
            for name in decision.traits
        )

    def _without_widening(
        self, item: Item, kept: frozenset[str]
    ) -> tuple[frozenset[str], tuple[NeedsProof, ...]]:
        """Of the traits `kept`, those a claim without proof may write about an identified person:
        no direct identifier, no age that lifts an age protection (a younger age is accepted), and no
        place that takes a regime away (one that adds a regime is accepted)."""
        atoms = self.policy.catalog.trait_atoms
        needs: list[NeedsProof] = []
        identifiers = {n for n in kept if (atom := atoms.get(n)) is not None and atom.identifier}
        if identifiers:
            needs.append(NeedsProof.IDENTIFIER)
        before = dict(self._gate_traits.get(item.subject_id, {}))
        ages = {n for n in kept if f"traits.{n}" in AGE_ATOMS}
        if ages:
            after = before | {f"traits.{n}": item.traits[n] for n in ages}
            if self.policy.lifts_age_protection(before, after, at=self._at):
                needs.append(NeedsProof.AGE)
            else:
                ages = set()
        places = {n for n in kept if f"traits.{n}" in PLACE_ATOMS}
        if places:
            after = before | {f"traits.{n}": item.traits[n] for n in places}
            was, now = applicable_regimes(self.policy, before), applicable_regimes(self.policy, after)
            if set(was) <= set(now):
                places = set()
            else:
                needs.append(NeedsProof.PLACE)
        return kept - identifiers - ages - places, tuple(needs)

    def unsupported_computed(self, subject_id: uuid.UUID) -> frozenset[str]:
        """The computed atoms this subject may not have stored."""
        storable = withdrawal.storable_purposes(self.allowances[subject_id])
        return withdrawal.unsupported(self.policy.catalog, self._computed, storable)

    def withheld_computed(self, subject_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, frozenset[str]]:
        """For each of `subject_ids` that has some, the computed atoms it may not have stored."""
        found = {s: self.unsupported_computed(s) for s in dict.fromkeys(subject_ids)}
        return {s: atoms for s, atoms in found.items() if atoms}


def newcomer(policy: PolicyContext, at: datetime) -> Callable[[str | None], frozenset[Purpose]]:
    """The purposes an event atom may serve for someone never seen before whose arrival says nothing
    about consent: the gate's answer for an empty ledger, no traits and no signals, the same for
    every such person (what `Decisions.decide` answers for them once created)."""
    allowance = allowance_from(
        policy, consent=ledger.fold_entries(()), flags=SubjectFlags(), traits={}, at=at
    )
    finder = intake.Purposes(allowance)
    return lambda atom: _atom_purposes(finder, policy, atom)


def receive(
    session: Session,
    *,
    keystore: Keystore,
    policy: PolicyContext,
    arrivals: Sequence[intake.Arrival],
    at: datetime,
    actor: str,
    nothing_stored: frozenset[uuid.UUID] = frozenset(),
) -> Decisions:
    """Fold the consent the arrivals carry into the ledger (GPC first), then answer the gate for every
    subject once (`intake.receive`). `nothing_stored`: subjects the caller just created, which no
    earlier record can belong to."""
    received = intake.receive(
        session, keystore=keystore, policy=policy, arrivals=arrivals, at=at, actor=actor,
        nothing_stored=nothing_stored,
    )  # fmt: skip
    traits = {s: given.traits for s, given in received.inputs.items()}
    versions = {s: given.version for s, given in received.inputs.items()}
    return Decisions(
        policy, received.allowances, at=at, traits=traits, refused_grants=received.refused, versions=versions
    )
