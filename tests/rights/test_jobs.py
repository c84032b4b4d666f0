"""Running privacy requests: each type's steps and receipt, nothing held, one runner per job under a
lease, a rerun after a step raised ending with the receipt of a run that never stopped, and failure
after the last attempt."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from tactful.audit.models import AuditEntry
from tactful.catalog.loader import load_catalog
from tactful.config import Settings
from tactful.consent import service as consent_service
from tactful.consent.fold import ConsentAction
from tactful.consent.gatekeeper import PolicyContext
from tactful.consent.models import ConsentEventRow
from tactful.consent.regimes import configured_regimes
from tactful.consent.schemas import ConsentChange
from tactful.crypto import Keystore
from tactful.policy.state import ConsentSource, ConsentStatus
from tactful.profiles import service as profiles_service
from tactful.profiles.counters import InProcessCounters
from tactful.profiles.models import Subject
from tactful.rights import requests as requests_service
from tactful.rights.due import RequestType
from tactful.rights.jobs import JobRunner, RunOutcome
from tactful.rights.models import PrivacyRequest, RecipientNotice
from tactful.rights.retention import run_retention
from tactful.rights.schemas import RequestRecord, RequestStatus
from tactful.rights.steps import PLANS, Outcome, Step, StepContext
from tactful.types import Purpose, utcnow
from tests.backends import migrated_database
from tests.catalog.builders import DEMO_PATH
from tests.profiles.builders import unique
from tests.rights.builders import Person, person
from tests.rights.requesting import Jobs, file, held, jobs

NOW = utcnow().replace(microsecond=0)


@pytest.fixture(scope="module")
def env(backend: str, tmp_path_factory: pytest.TempPathFactory, keystore: Keystore) -> Iterator[Jobs]:
    with migrated_database(backend, tmp_path_factory.mktemp("jobs")) as db:
        yield jobs(db, keystore)


def filed(env: Jobs, kind: RequestType, **named: object) -> RequestRecord:
    with env.database.session() as session:
        return file(session, env.keystore, env.policy, kind, at=NOW, **named)  # type: ignore[arg-type]


def someone(env: Jobs, **traits: object) -> tuple[str, uuid.UUID]:
    with env.database.session() as session:
        return held(session, env.keystore, at=NOW, **traits)


def family(env: Jobs) -> Person:
    with env.database.session() as session:
        return person(session, env.keystore, InProcessCounters())


def reread(env: Jobs, record: RequestRecord) -> RequestRecord:
    with env.database.session() as session:
        found = requests_service.get_request(session, public_id=record.public_id)
    assert found is not None
    return found


def test_every_type_has_a_plan() -> None:
    assert set(PLANS) == set(RequestType)
    for plan in PLANS.values():
        names = [step.name for step in plan]
        assert names
        assert len(names) == len(set(names))


# -- each type ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "flag"),
    [
        (RequestType.OBJECTION, "objection"),
        (RequestType.RESTRICTION, "restriction"),
        (RequestType.LIMIT_SENSITIVE, "limit_sensitive"),
    ],
)
def test_narrowing_requests_set_the_ledger_flags(env: Jobs, kind: RequestType, flag: str) -> None:
    user, subject = someone(env)
    record = filed(env, kind, user_id=user, verified_by=None)
    assert JobRunner(env.context).run(record.id) is RunOutcome.COMPLETED
    done = reread(env, record)
    assert done.status is RequestStatus.COMPLETED
    assert done.receipt is not None
    assert done.receipt["nothing_held"] is False
    with env.database.session() as session:
        flags = consent_service.flags(session, subject_id=subject, at=utcnow())
    assert getattr(flags, flag) is True


def test_an_opt_out_of_sale_withdraws_a_grant(env: Jobs) -> None:
    user, subject = someone(env)
    with env.database.session() as session:
        grant = ConsentChange.for_purpose(Purpose.SALE_OR_SHARE, ConsentAction.GRANTED, ConsentSource.API)
        consent_service.record(
            session, keystore=env.keystore, subject_id=subject, changes=[grant], at=NOW, actor="tests"
        )
    record = filed(env, RequestType.OPT_OUT_SALE_SHARE, user_id=user, verified_by=None)
    JobRunner(env.context).run(record.id)
    assert reread(env, record).receipt["steps"] == {  # type: ignore[index]
        "opt_out": {"recorded": "sale_or_share", "action": "withdrawn"}
    }
    with env.database.session() as session:
        state = consent_service.state(session, subject_id=subject).state(Purpose.SALE_OR_SHARE, at=utcnow())
    assert state.status is ConsentStatus.WITHDRAWN


def test_an_access_request_counts_what_each_store_holds(env: Jobs) -> None:
    ada = family(env)
    record = filed(env, RequestType.ACCESS, user_id=ada.user_id)
    assert JobRunner(env.context).run(record.id) is RunOutcome.COMPLETED
    receipt = reread(env, record).receipt
    assert receipt is not None
    held = receipt["steps"]["export"]["held"]
    assert held["profiles"]["identities"] == 2
    assert held["profiles"]["traits"] == 3
    assert held["merged_profiles"] == 1
    assert held["privacy_requests"]["requests"] == 1  # this very request
    assert ada.email not in str(receipt)


def test_an_erasure_removes_the_person_and_keeps_the_request_unlinked(env: Jobs) -> None:
    ada = family(env)
    record = filed(env, RequestType.ERASURE, email=ada.email)
    assert record.subject_id == ada.survivor
    assert JobRunner(env.context).run(record.id) is RunOutcome.COMPLETED
    done = reread(env, record)
    assert done.subject_id is None
    assert done.receipt is not None
    steps = done.receipt["steps"]
    assert steps["erase_stores"]["profiles"] == 2
    assert steps["erase_stores"]["removed"]["profiles"] > 0
    assert steps["destroy_keys"]["keys_destroyed"] == 2
    assert "carry" not in str(done.steps)
    assert str(ada.survivor) not in str(done.steps)
    with env.database.session() as session:
        assert profiles_service.find_subject(session, keystore=env.keystore, user_id=ada.user_id) is None
        assert session.get(Subject, ada.survivor) is None
    assert not env.keystore.has_subject(ada.survivor)
    assert not env.keystore.has_subject(ada.merged)


def test_a_rectification_corrects_held_traits_only(env: Jobs) -> None:
    user, subject = someone(env, first_name="Ada", country="FR")
    changes: dict[str, object] = {"first_name": "Augusta", "country": None, "city": "London"}
    record = filed(env, RequestType.RECTIFICATION, user_id=user, changes=changes)
    with env.database.session() as session:
        row = session.get(PrivacyRequest, record.id)
        assert row is not None
        assert row.changes_enc is not None
        assert b"Augusta" not in row.changes_enc
    JobRunner(env.context).run(record.id)
    done = reread(env, record)
    assert done.receipt is not None
    assert done.receipt["steps"]["rectify"] == {
        "corrected": ["traits.first_name"],
        "removed": ["traits.country"],
        "not_held": ["city"],
    }
    with env.database.session() as session:
        profile = profiles_service.get_profile(session, keystore=env.keystore, subject_id=subject)
        row = session.get(PrivacyRequest, record.id)
        assert row is not None
        assert row.changes_enc is None
    assert profile.traits == {"traits.first_name": "Augusta"}


@pytest.mark.parametrize("kind", list(RequestType))
def test_an_identity_not_held_completes_as_nothing_held(env: Jobs, kind: RequestType) -> None:
    with env.database.session() as session:
        before = int(session.scalar(select(func.count()).select_from(Subject)) or 0)
    changes = {"first_name": "Ada"} if kind is RequestType.RECTIFICATION else None
    record = filed(env, kind, user_id=unique("nobody"), changes=changes)
    assert JobRunner(env.context).run(record.id) is RunOutcome.COMPLETED
    done = reread(env, record)
    assert done.receipt == {"type": kind.value, "regimes": ["gdpr"], "nothing_held": True, "steps": {}}
    with env.database.session() as session:
        assert int(session.scalar(select(func.count()).select_from(Subject)) or 0) == before


def test_pending_jobs_are_run_and_closed_ones_left(env: Jobs) -> None:
    user, _ = someone(env)
    record = filed(env, RequestType.ACCESS, user_id=user)
    runner = JobRunner(env.context)
    runner.run_pending(limit=1000)
    assert reread(env, record).status is RequestStatus.COMPLETED
    assert runner.run(record.id) is RunOutcome.CLOSED


# -- one runner per job -----------------------------------------------------------------------------


@dataclass
class Counting:
    name: str = "count"
    runs: list[str] = field(default_factory=list)

    def run(self, ctx: StepContext) -> Outcome:
        self.runs.append(ctx.actor)
        return Outcome({"ran": True})


def test_of_two_runners_one_runs_the_job(env: Jobs) -> None:
    counting = Counting()
    plans = dict.fromkeys(RequestType, (counting,))
    for _ in range(5):
        user, _ = someone(env)
        record = filed(env, RequestType.ACCESS, user_id=user)
        start = threading.Barrier(2)
        outcomes: list[RunOutcome] = []

        def race(
            owner: str,
            record: RequestRecord = record,
            start: threading.Barrier = start,
            outcomes: list[RunOutcome] = outcomes,
        ) -> None:
            runner = JobRunner(env.context, owner=owner, plans=plans)
            start.wait()
            outcomes.append(runner.run(record.id))

        threads = [threading.Thread(target=race, args=(owner,)) for owner in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        [won, lost] = sorted(outcomes, key=lambda o: o is not RunOutcome.COMPLETED)
        assert won is RunOutcome.COMPLETED
        assert lost in (RunOutcome.BUSY, RunOutcome.CLOSED)  # held by the other, or finished by it
    assert len(counting.runs) == 5


def test_a_live_lease_keeps_others_out_until_it_expires(env: Jobs) -> None:
    user, _ = someone(env)
    record = filed(env, RequestType.ACCESS, user_id=user)
    first = JobRunner(env.context, owner="first")
    lease = first.lease
    assert first.acquire(record.id)
    assert not JobRunner(env.context, owner="second").acquire(record.id)
    later = JobRunner(env.context, owner="third", clock=lambda: utcnow() + lease + timedelta(seconds=1))
    assert later.acquire(record.id)
    assert first.run(record.id) is RunOutcome.BUSY  # its lease was taken over: it does nothing
    assert reread(env, record).steps == {}


# -- crashes and failures ---------------------------------------------------------------------------


@dataclass
class CrashOnce:
    """A step that does its work, then raises the first time: the transaction rolls back."""

    inner: Step
    crashed: list[bool] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.inner.name

    def run(self, ctx: StepContext) -> Outcome:
        outcome = self.inner.run(ctx)
        if not self.crashed:
            self.crashed.append(True)
            raise RuntimeError("the process died here")
        return outcome


ERASURE_STEPS = [step.name for step in PLANS[RequestType.ERASURE]]


@pytest.mark.parametrize("crashing", ERASURE_STEPS)
def test_a_rerun_after_a_crash_ends_with_the_same_receipt(env: Jobs, crashing: str) -> None:
    twin, ada = family(env), family(env)
    clean = filed(env, RequestType.ERASURE, user_id=twin.user_id)
    JobRunner(env.context).run(clean.id)
    steps: tuple[Step, ...] = tuple(PLANS[RequestType.ERASURE])
    plan = tuple(CrashOnce(s) if s.name == crashing else s for s in steps)
    record = filed(env, RequestType.ERASURE, user_id=ada.user_id)
    runner = JobRunner(env.context, plans={RequestType.ERASURE: plan})
    assert runner.run(record.id) is RunOutcome.RETRY
    stopped = reread(env, record)
    assert stopped.status is RequestStatus.RUNNING
    assert set(stopped.steps) == set(ERASURE_STEPS[: ERASURE_STEPS.index(crashing)])
    assert runner.run(record.id) is RunOutcome.COMPLETED
    assert reread(env, record).receipt == reread(env, clean).receipt
    assert not env.keystore.has_subject(ada.survivor)


@dataclass(frozen=True)
class Broken:
    name: str = "broken"

    def run(self, ctx: StepContext) -> Outcome:
        raise RuntimeError("always")


def test_a_step_that_keeps_failing_fails_the_request_with_a_code(env: Jobs) -> None:
    user, _ = someone(env)
    record = filed(env, RequestType.ACCESS, user_id=user)
    runner = JobRunner(env.context, plans={RequestType.ACCESS: (Broken(),)}, max_attempts=2)
    assert runner.run(record.id) is RunOutcome.RETRY
    assert runner.run(record.id) is RunOutcome.FAILED
    failed = reread(env, record)
    assert failed.status is RequestStatus.FAILED
    assert failed.failure_code == "step_failed"
    assert failed.receipt == {"failed": {"step": "broken", "code": "step_failed"}}


def test_the_steps_are_audited_without_identifiers(env: Jobs) -> None:
    user, _ = someone(env)
    record = filed(env, RequestType.ACCESS, user_id=user)
    JobRunner(env.context).run(record.id)
    with env.database.session() as session:
        entries = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.actor == f"privacy:{record.public_id}")
            .order_by(AuditEntry.seq)
        ).all()
        written = [(e.action, dict(e.details or {})) for e in entries]
    assert [action for action, _ in written] == ["rights.request_step", "rights.request_completed"]
    assert user not in str(written)


def test_what_an_erasure_keeps_as_proof_goes_after_its_own_period(env: Jobs) -> None:
    ada = family(env)
    grant = ConsentChange.for_purpose(Purpose.ANALYTICS, ConsentAction.GRANTED, ConsentSource.API)
    with env.database.session() as session:
        consent_service.record(
            session,
            keystore=env.keystore,
            subject_id=ada.survivor,
            changes=[grant],
            at=utcnow(),
            actor="tests",
        )
    record = filed(env, RequestType.ERASURE, email=ada.email)
    assert JobRunner(env.context).run(record.id) is RunOutcome.COMPLETED
    proof = select(func.count()).select_from(ConsentEventRow).where(ConsentEventRow.erased_at.is_not(None))
    with env.database.session() as session:
        row = session.get(PrivacyRequest, record.id)
        assert row is not None
        assert row.closed_at is not None
        closed = row.closed_at.replace(tzinfo=UTC) if row.closed_at.tzinfo is None else row.closed_at
        assert (session.scalar(proof) or 0) > 0, "her consent records stay as proof, pseudonymised"
    privacy = Settings().privacy

    def sweep(at: datetime, *, dry_run: bool = False) -> dict[str, int]:
        with env.database.session() as session:
            report = run_retention(
                session, catalog=env.policy.catalog, settings=Settings(), at=at, keystore=env.keystore,
                dry_run=dry_run,
            )  # fmt: skip
        return {store: report.total(store) for store in ("privacy requests", "consent")}

    tasks = select(func.count()).select_from(RecipientNotice).where(RecipientNotice.request_id == record.id)

    def held() -> tuple[bool, int, int]:
        with env.database.session() as session:
            request_kept = session.get(PrivacyRequest, record.id) is not None
            return request_kept, int(session.scalar(proof) or 0), int(session.scalar(tasks) or 0)

    kept = held()
    assert kept[2] > 0, "the recipients named for her data each have a task"
    # Within 24 months the request stays; within the limitation period the consent proof stays.
    assert sweep(closed + timedelta(days=privacy.request_record_days - 1)) == {
        "privacy requests": 0,
        "consent": 0,
    }
    assert held() == kept
    past = closed + timedelta(days=max(privacy.request_record_days, privacy.consent_proof_days) + 1)
    # (The module's other tests closed requests too: each goes by the same rule.)
    would = sweep(past, dry_run=True)
    assert would["privacy requests"] >= 1
    assert would["consent"] == kept[1]
    assert held() == kept  # a dry run changes nothing
    assert sweep(past) == would
    assert held() == (False, 0, 0)  # the request's recipient tasks went with it


def test_a_corrected_trait_is_kept_by_the_catalogs_rule_for_its_text(
    backend: str, tmp_path: Path, keystore: Keystore
) -> None:
    # A rectification writes traits without collection's filter in front: a URL trait keeps only
    # the parameters the catalog names, as an identify's would.
    document = yaml.safe_load(Path(DEMO_PATH).read_text(encoding="utf-8"))
    document["atoms"]["traits.homepage"] = {
        "text": "url", "category": "user.behavior.browsing", "purposes": ["essential"], "retention": "3y",
    }  # fmt: skip
    (tmp_path / "shop.yaml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    chosen = PolicyContext(
        load_catalog(tmp_path / "shop.yaml"), Settings().policy, configured_regimes(Settings().policy)
    )
    with migrated_database(backend, tmp_path) as db:
        env = jobs(db, keystore, chosen)
        user = unique("user")
        with env.database.session() as session:
            subject = profiles_service.resolve(
                session, keystore=keystore, anonymous_id=None, user_id=user, at=NOW
            ).subject_id
            profiles_service.apply_traits(
                session, keystore=keystore, catalog=chosen.catalog, subject_id=subject,
                traits={"homepage": "https://ada.example/"}, at=NOW,
            )  # fmt: skip
        secret = "https://ada.example/reset?token=s3cret-from-a-mail#inbox"
        record = filed(env, RequestType.RECTIFICATION, user_id=user, changes={"homepage": secret})
        assert JobRunner(env.context).run(record.id) is RunOutcome.COMPLETED
        with env.database.session() as session:
            profile = profiles_service.get_profile(session, keystore=keystore, subject_id=subject)
    assert profile.traits["traits.homepage"] == "https://ada.example/reset"
