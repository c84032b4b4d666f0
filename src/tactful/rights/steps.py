"""The steps of a privacy request's job, and each type's plan: which steps, in which order.

    opt_out_sale_share ─▶ opt_out      (consent ledger: sale_or_share refused)
    limit_sensitive ────▶ limit        (ledger flag: limit on sensitive data)
    objection ──────────▶ object       (ledger flag: legitimate interest refused, Art. 21)
    restriction ────────▶ restrict     (ledger flag: restriction, Art. 18)
    access, portability ▶ export       (registry.export_all: counts per store; the document goes to
                                        the plan's `ExportSink`: exports.PackagedExport seals the
                                        package the person downloads)
    erasure ────────────▶ suppress     (the identifiers' HMACs and the time in the keystore's
                                        erasure log, before any deletion; the recipients to tell)
                          erase_stores (every store but the keystore, committed)
                          unlearn      (each model's hook; the job waits while one still works)
                          destroy_keys (the subject ids in the erasure log, for re-application;
                                        then the keys: backups of the rows become unreadable;
                                        both databases' write-ahead logs emptied)
                          notify_recipients (a tracked task per recipient, Art. 19)
    rectification ──────▶ rectify, notify_recipients
    restriction ────────▶ restrict, notify_recipients

A step is anything with a `name` and a `run` (the `Step` protocol). The job runner commits each
step's work together with its result, so a finished step is never run again; what one step hands to
the next (`Outcome.carry`) is kept only until that next step commits. Results name stores, atoms
and counts, never a value or an identifier: they make the receipt.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import update

from tactful.consent import service as consent_service
from tactful.consent.fold import ConsentAction
from tactful.consent.gatekeeper import PolicyContext
from tactful.consent.schemas import ConsentChange, TargetKind
from tactful.policy.state import ConsentSource, ConsentStatus
from tactful.profiles import service as profiles_service
from tactful.rights import recipients as recipients_service
from tactful.rights import registry
from tactful.rights.due import RequestType
from tactful.rights.erasure import StepPending, atoms_held, identifiers_of
from tactful.rights.exports import PackagedExport
from tactful.rights.models import PrivacyRequest
from tactful.rights.package import PackageKind
from tactful.rights.recipients import LeaveToOperator, Notifier
from tactful.rights.registry import RightsContext
from tactful.rights.schemas import RequestRecord, VerifiedBy
from tactful.rights.unlearning import NO_MODELS, Unlearned, Unlearning
from tactful.types import Purpose

_NO_CARRY: Mapping[str, Any] = {}
NOTHING_HELD: Mapping[str, Any] = {"nothing_held": True}


@dataclass(frozen=True)
class StepContext:
    """What a step may reach: the stores (through `rights`, whose session is the step's transaction),
    the gate's inputs, the request, and what the step before handed on."""

    rights: RightsContext
    policy: PolicyContext
    request: RequestRecord
    subject_id: uuid.UUID | None
    """The request's subject as it is now (the survivor, when it was merged since); None once it is
    gone (an erasure's later steps run after it, on what the step before carried)."""
    changes: Mapping[str, object]
    carry: Mapping[str, Any]
    at: datetime
    actor: str


@dataclass(frozen=True)
class Outcome:
    result: Mapping[str, Any]
    """For the receipt: stores, atoms, counts."""
    carry: Mapping[str, Any] = field(default_factory=lambda: _NO_CARRY)
    """For the next step only; dropped when it commits."""


class Step(Protocol):
    @property
    def name(self) -> str: ...

    def run(self, ctx: StepContext) -> Outcome: ...


# -- narrowing: the ledger flags that exist --------------------------------------------------------


@dataclass(frozen=True)
class LedgerRefusal:
    """Record a refusal in the consent ledger through consent's service (which audits it and purges
    what the refusal leaves without a purpose)."""

    name: str
    kind: TargetKind
    purpose: Purpose | None = None

    def run(self, ctx: StepContext) -> Outcome:
        if ctx.subject_id is None:
            return Outcome(NOTHING_HELD)
        session = ctx.rights.session
        proof = {"privacy_request": ctx.request.public_id}
        if self.purpose is not None:
            current = consent_service.state(session, subject_id=ctx.subject_id).state(self.purpose, at=ctx.at)
            # A "no" after a "yes" is a withdrawal, as everywhere else in the ledger.
            granted = current.status is ConsentStatus.GRANTED
            action = ConsentAction.WITHDRAWN if granted else ConsentAction.DENIED
            change = ConsentChange.for_purpose(self.purpose, action, ConsentSource.API, proof=proof)
        else:
            change = ConsentChange(self.kind, ConsentAction.DENIED, ConsentSource.API, proof=proof)
        consent_service.record(
            session,
            keystore=ctx.rights.keystore,
            subject_id=ctx.subject_id,
            changes=[change],
            at=ctx.at,
            actor=ctx.actor,
            policy=ctx.policy,
        )
        return Outcome({"recorded": change.label, "action": change.action.value})


# -- access and portability ------------------------------------------------------------------------


class ExportSink(Protocol):
    """Where an export's document goes. The packaged, sealed download (a later part) is one; what it
    returns joins the step's result (a file's name and size, never its content)."""

    def keep(self, ctx: StepContext, document: Mapping[str, object]) -> Mapping[str, Any]: ...


class CountsOnly:
    """The do-nothing sink: the receipt says what each store holds; no document is kept."""

    def keep(self, ctx: StepContext, document: Mapping[str, object]) -> Mapping[str, Any]:
        return {}


def _size(value: object) -> int:
    if isinstance(value, list | tuple | dict):
        return len(value)
    return 0 if value is None else 1


def counts(document: Mapping[str, object]) -> dict[str, Any]:
    """How much each store holds, per part (items of a list or mapping, else one)."""
    found: dict[str, Any] = {}
    for store, held in document.items():
        if store == "merged" and isinstance(held, list):
            found["merged_profiles"] = len(held)
        elif isinstance(held, Mapping) and held:
            found[store] = {part: _size(value) for part, value in sorted(held.items())}
    return found


@dataclass(frozen=True)
class Export:
    name: str = "export"
    sink: ExportSink = field(default_factory=CountsOnly)

    def run(self, ctx: StepContext) -> Outcome:
        if ctx.subject_id is None:
            return Outcome(NOTHING_HELD)
        document = registry.export_all(ctx.rights, ctx.subject_id)
        kept = self.sink.keep(ctx, document)
        return Outcome({"held": counts(document), **kept})


# -- erasure ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suppress:
    """The first step: log the erasure (keyed digests of the identifiers, its time) before any row
    goes, so that a message sent before it can no longer bring the person back; and name, while
    the data still exists, the recipients to tell."""

    name: str = "suppress"

    def run(self, ctx: StepContext) -> Outcome:
        if ctx.subject_id is None:
            return Outcome(NOTHING_HELD)
        ids = registry.subject_ids(ctx.rights, ctx.subject_id)
        logged = ctx.rights.keystore.erasure_log.suppress(
            identifiers_of(ctx.rights, ctx.policy.catalog, ids),
            at=ctx.at,
            until=ctx.at + timedelta(days=ctx.rights.settings.dedup_retention_days),
        )
        told = recipients_service.recipients_of(ctx.policy.catalog, atoms_held(ctx.rights, ids))
        return Outcome({"identifiers_suppressed": logged, "recipients": told})


@dataclass(frozen=True)
class EraseStores:
    """Every store but the keystore: committed before any key goes."""

    name: str = "erase_stores"

    def run(self, ctx: StepContext) -> Outcome:
        if ctx.subject_id is None:
            return Outcome(NOTHING_HELD)
        ids = registry.subject_ids(ctx.rights, ctx.subject_id)
        removed = registry.erase_stores(ctx.rights, ids)
        ctx.rights.session.flush()  # a deletion that fails must fail here, before the keys
        return Outcome({"removed": removed, "profiles": len(ids)}, carry={"ids": [str(i) for i in ids]})


@dataclass(frozen=True)
class DestroyKeys:
    """The keys, salts and blind-index entries of the profiles the step before erased. The result is
    how many of them hold no key afterwards: the same whether this ran once or again after a crash
    between the keystore's commit and the main database's."""

    name: str = "destroy_keys"

    def run(self, ctx: StepContext) -> Outcome:
        ids = [uuid.UUID(i) for i in ctx.carry.get("ids", [])]
        # Logged only now that their rows' deletion has committed (a request that never got this far
        # must not be completed by a re-application), and before the keys, which it then covers.
        keep = timedelta(days=ctx.rights.settings.privacy.erasure_log_days)
        ctx.rights.keystore.erasure_log.log_subjects(ids, at=ctx.at, keep_until=ctx.at + keep)
        registry.erase_keys(ctx.rights, ids)
        # No copy of a destroyed key (or of a deleted row) may stay in a write-ahead log: the main
        # database's was emptied when the deletions committed; the keystore's now (SQLite only).
        ctx.rights.keystore.truncate_log()
        gone = sum(1 for i in ids if not ctx.rights.keystore.has_subject(i))
        return Outcome({"keys_destroyed": gone, "backups": "beyond use for this person: their key is gone"})


@dataclass(frozen=True)
class Unlearn:
    """Each model's unlearning hook, for the subjects the step before erased. Serving sees them no
    more (their rows are gone); the request completes only once every hook has finished."""

    name: str = "unlearn"
    hooks: tuple[Unlearning, ...] = NO_MODELS

    def run(self, ctx: StepContext) -> Outcome:
        ids = [uuid.UUID(i) for i in ctx.carry.get("ids", [])]
        waiting = [h.name for h in self.hooks if h.forget(subject_ids=ids, at=ctx.at) is Unlearned.PENDING]
        if waiting:
            raise StepPending(f"{len(waiting)} model(s) still unlearning")
        # The keys' step needs the ids as well: handed on again.
        return Outcome({"models": sorted(h.name for h in self.hooks)}, carry=dict(ctx.carry))


@dataclass(frozen=True)
class NotifyRecipients:
    """A tracked task for each recipient of the subject's data (Art. 19). For an erasure they were
    named by `suppress`, while the data still existed; otherwise from what the subject holds now."""

    name: str = "notify_recipients"
    notifier: Notifier = field(default_factory=LeaveToOperator)

    def run(self, ctx: StepContext) -> Outcome:
        done = ctx.request.steps
        if Suppress.name in done:
            named = done[Suppress.name].get("result", {}).get("recipients", [])
        elif Rectify.name in done:  # those who received the atoms corrected
            result = done[Rectify.name].get("result", {})
            changed = [*result.get("corrected", []), *result.get("removed", [])]
            named = recipients_service.recipients_of(ctx.policy.catalog, changed)
        elif ctx.subject_id is not None:
            ids = registry.subject_ids(ctx.rights, ctx.subject_id)
            named = recipients_service.recipients_of(ctx.policy.catalog, atoms_held(ctx.rights, ids))
        else:
            return Outcome(NOTHING_HELD)
        statuses = recipients_service.open_tasks(
            ctx.rights.session,
            catalog=ctx.policy.catalog,
            notifier=self.notifier,
            request_id=ctx.request.id,
            request_public_id=ctx.request.public_id,
            request_type=ctx.request.type,
            recipients=[str(r) for r in named],
            at=ctx.at,
        )
        return Outcome({"recipients": sorted(statuses)})


# -- rectification ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rectify:
    """Correct the traits the subject holds (null removes one); a trait not held is left alone and
    named in the result, since storing it anew would need a purpose the request does not give."""

    name: str = "rectify"

    def run(self, ctx: StepContext) -> Outcome:
        if ctx.subject_id is None:
            return Outcome(NOTHING_HELD)
        session, keystore = ctx.rights.session, ctx.rights.keystore
        catalog = ctx.policy.catalog
        held = set(profiles_service.stored_atoms(session, subject_id=ctx.subject_id))
        apply: dict[str, object] = {}
        not_held: list[str] = []
        for name, value in sorted(ctx.changes.items()):
            atom = catalog.trait_atoms.get(name)
            if atom is not None and atom.name in held:
                apply[name] = value
            else:
                not_held.append(name)
        # Corrected values are kept as collection keeps an identify's traits, by the catalog's own
        # rule for each field (a URL without its unnamed parameters, free text without addresses).
        kept = catalog.filter_message({"type": "identify", "traits": apply}).kept.get("traits", {})
        # The operator vouches for a corrected address; a person's own request (a subject token) is
        # not proof that an address another subject holds is theirs (profiles.traits).
        vouched = ctx.request.verified_by is VerifiedBy.OPERATOR
        changed = profiles_service.apply_traits(
            session, keystore=keystore, catalog=catalog, subject_id=ctx.subject_id, traits=kept, at=ctx.at,
            vouched=vouched,
        )  # fmt: skip
        # Applied: the sealed new values are not kept a moment longer.
        session.execute(
            update(PrivacyRequest).where(PrivacyRequest.id == ctx.request.id).values(changes_enc=None)
        )
        return Outcome(
            {
                "corrected": sorted((*changed.stored, *changed.encrypted)),
                "removed": sorted(changed.removed),
                "not_held": not_held,
            }
        )


PLANS: Mapping[RequestType, tuple[Step, ...]] = {
    RequestType.OPT_OUT_SALE_SHARE: (
        LedgerRefusal("opt_out", TargetKind.PURPOSE, purpose=Purpose.SALE_OR_SHARE),
    ),
    RequestType.LIMIT_SENSITIVE: (LedgerRefusal("limit", TargetKind.LIMIT_SENSITIVE),),
    RequestType.OBJECTION: (LedgerRefusal("object", TargetKind.LEGITIMATE_INTEREST),),
    RequestType.RESTRICTION: (LedgerRefusal("restrict", TargetKind.RESTRICTION), NotifyRecipients()),
    # The document goes into a sealed package the person downloads (exports.PackagedExport);
    # portability's holds only what the person provided or was observed (package.build).
    RequestType.ACCESS: (Export(sink=PackagedExport(PackageKind.ACCESS)),),
    RequestType.PORTABILITY: (Export(sink=PackagedExport(PackageKind.PORTABILITY)),),
    RequestType.ERASURE: (Suppress(), EraseStores(), Unlearn(), DestroyKeys(), NotifyRecipients()),
    RequestType.RECTIFICATION: (Rectify(), NotifyRecipients()),
}
"""Every type's plan. `tests/rights/test_jobs.py` checks that each type has one."""
