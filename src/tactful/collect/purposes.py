"""The purposes each new event may serve at receipt, decided once per request (issue 3, part 7).

    new events ─▶ Arrival (consent context, GPC) ─▶ consent.intake.record_arrivals ─▶ ledgers
                                                  └▶ consent.intake.allowances ─▶ Allowance per subject
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
from tactful.collect.schemas import CollectCatalog, Source
from tactful.collect.validate import ValidEvent
from tactful.config import PolicySettings
from tactful.consent import intake, ledger, withdrawal
from tactful.consent.gatekeeper import PolicyContext, allowance_from
from tactful.consent.regimes import configured_regimes
from tactful.consent.schemas import SubjectFlags
from tactful.crypto import Keystore
from tactful.policy import Allowance, Regime
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


@dataclass(frozen=True)
class Decision:
    """What an event may be stored for, and which of the user traits it carries may be kept."""

    purposes: frozenset[Purpose]
    traits: frozenset[str] = frozenset()


class Decisions:
    """The request's allowances, and the purposes of each event under them."""

    def __init__(self, policy: PolicyContext, allowances: Mapping[uuid.UUID, Allowance]) -> None:
        self.policy = policy
        self.allowances = allowances
        self._purposes = {s: intake.Purposes(a) for s, a in allowances.items()}
        self._computed = tuple(a.name for a in policy.catalog.atom_list if a.name.startswith("computed."))
        self._decided: dict[tuple[object, ...], Decision] = {}

    def decide(self, item: Arriving) -> Decision:
        # A subject's events repeat themselves (page after page, the same traits in context): the
        # answer depends on nothing else than the subject, the kind, the name and the trait names.
        key = (item.subject_id, item.event.type, item.event.name, *item.traits)
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
        if kind in (MessageType.ALIAS, MessageType.IDENTIFY):
            return Decision(_LINK, kept)
        return Decision(_event_purposes(finder, catalog, item.event), kept)

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
    if given is not None:
        return given
    settings, regimes = _default_policy()
    return PolicyContext(catalog, settings, regimes, on_withdrawal=store.withdrawal_hook(catalog))


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
        )
        for item in items
    ]
    actor = f"collect:key:{source.write_key_id}" if source.write_key_id else "collect"
    histories = intake.record_arrivals(
        session, keystore=keystore, policy=policy, arrivals=arrivals, at=at, actor=actor,
        nothing_stored=nothing_stored,
    )  # fmt: skip
    gpc_subjects = frozenset(a.subject_id for a in arrivals if a.gpc)
    allowances = intake.allowances(
        session, keystore=keystore, policy=policy, histories=histories, gpc_subjects=gpc_subjects, at=at
    )
    return Decisions(policy, allowances)


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
