"""The erasure's own steps: the request completes only once every model has unlearned (waiting uses
up no attempt, and the person is out of every store meanwhile); the recipients of what a person
holds get a tracked task, for an erasure, a rectification and a restriction, shown in the request's
answer; the hook is called once per task."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from tactful.crypto import Keystore
from tactful.profiles import service as profiles_service
from tactful.profiles.counters import InProcessCounters
from tactful.rights import recipients as recipients_service
from tactful.rights.due import RequestType
from tactful.rights.jobs import JobRunner, RunOutcome
from tactful.rights.recipients import NoticeStatus, Telling
from tactful.rights.schemas import RequestRecord, RequestStatus
from tactful.rights.steps import PLANS, NotifyRecipients, Step, Unlearn
from tactful.rights.unlearning import NothingLearned, Unlearned
from tactful.types import utcnow
from tests.backends import migrated_database
from tests.rights.builders import person
from tests.rights.requesting import Jobs, file, held, jobs

NOW = utcnow().replace(microsecond=0)


@pytest.fixture(scope="module")
def env(backend: str, tmp_path_factory: pytest.TempPathFactory, keystore: Keystore) -> Iterator[Jobs]:
    with migrated_database(backend, tmp_path_factory.mktemp("erasure-steps")) as db:
        yield jobs(db, keystore)


def filed(env: Jobs, kind: RequestType, **named: object) -> RequestRecord:
    with env.database.session() as session:
        return file(session, env.keystore, env.policy, kind, at=NOW, **named)  # type: ignore[arg-type]


def status(env: Jobs, record: RequestRecord) -> RequestRecord:
    from tactful.rights import requests as requests_service

    with env.database.session() as session:
        found = requests_service.get_request(session, public_id=record.public_id)
    assert found is not None
    return found


@dataclass
class SlowModel:
    """A model that needs `rounds` calls before it has forgotten."""

    rounds: int
    name: str = "slow"
    asked: list[tuple[uuid.UUID, ...]] = field(default_factory=list)

    def forget(self, *, subject_ids: Sequence[uuid.UUID], at: datetime) -> Unlearned:
        self.asked.append(tuple(subject_ids))
        return Unlearned.FINISHED if len(self.asked) >= self.rounds else Unlearned.PENDING


def with_unlearning(*hooks: object) -> tuple[Step, ...]:
    return tuple(Unlearn(hooks=hooks) if s.name == "unlearn" else s for s in PLANS[RequestType.ERASURE])  # type: ignore[arg-type]


def test_completed_only_once_every_model_has_unlearned(env: Jobs) -> None:
    with env.database.session() as session:
        ada = person(session, env.keystore, InProcessCounters())
    slow = SlowModel(rounds=4)  # more rounds than a job has attempts
    runner = JobRunner(env.context, plans={RequestType.ERASURE: with_unlearning(NothingLearned(), slow)})
    record = filed(env, RequestType.ERASURE, user_id=ada.user_id)
    for _ in range(3):
        assert runner.run(record.id) is RunOutcome.WAITING
        waiting = status(env, record)
        assert waiting.status is RequestStatus.RUNNING
        assert set(waiting.steps) == {"suppress", "erase_stores"}
        assert waiting.attempts == 0
        # Out of every store already: nothing can serve or export her while the model works.
        with env.database.session() as session:
            assert profiles_service.find_subject(session, keystore=env.keystore, user_id=ada.user_id) is None
    assert runner.run(record.id) is RunOutcome.COMPLETED
    done = status(env, record)
    assert done.status is RequestStatus.COMPLETED
    assert done.receipt is not None
    assert done.receipt["steps"]["unlearn"] == {"models": ["none", "slow"]}
    assert set(slow.asked) == {(ada.survivor, ada.merged)}
    assert not env.keystore.has_subject(ada.survivor)


@dataclass
class Mailer:
    told: list[tuple[str, str, str]] = field(default_factory=list)

    def notify(self, telling: Telling) -> NoticeStatus:
        self.told.append((telling.request_public_id, telling.request_type.value, telling.recipient.key))
        return NoticeStatus.SENT


def test_rectification_tells_the_recipients_of_the_atoms_corrected(env: Jobs) -> None:
    user, _ = held_person(env, email="ada@example.com", first_name="Ada", country="FR")
    mailer = Mailer()
    plan = (PLANS[RequestType.RECTIFICATION][0], NotifyRecipients(notifier=mailer))
    record = filed(env, RequestType.RECTIFICATION, user_id=user, changes={"first_name": "Augusta"})
    runner = JobRunner(env.context, plans={RequestType.RECTIFICATION: plan})
    assert runner.run(record.id) is RunOutcome.COMPLETED
    with env.database.session() as session:
        tasks = recipients_service.tasks(session, catalog=env.policy.catalog, request_id=record.id)
    expected = recipients_service.recipients_of(env.policy.catalog, ["traits.first_name"])
    assert expected == ["carrier", "email_provider", "hosting"]  # not the e-mail address's alone
    assert [t.recipient for t in tasks] == expected
    assert {t.status for t in tasks} == {NoticeStatus.SENT}
    assert mailer.told == [(record.public_id, "rectification", key) for key in expected]
    # Asked again (a rerun), no task is opened twice and the hook is not called again.
    with env.database.session() as session:
        statuses = recipients_service.open_tasks(
            session, catalog=env.policy.catalog, notifier=mailer, request_id=record.id,
            request_public_id=record.public_id, request_type=record.type, recipients=expected, at=NOW,
        )  # fmt: skip
    assert statuses == dict.fromkeys(expected, "sent")
    assert len(mailer.told) == len(expected)


def test_an_operator_marks_what_became_of_a_task(env: Jobs) -> None:
    user, _ = held_person(env, email="grace@example.com")
    record = filed(env, RequestType.RESTRICTION, user_id=user, verified_by=None)
    assert JobRunner(env.context).run(record.id) is RunOutcome.COMPLETED
    with env.database.session() as session:
        [first, *_] = recipients_service.tasks(session, catalog=env.policy.catalog, request_id=record.id)
        assert first.status is NoticeStatus.PENDING
        recipients_service.mark(
            session, request_id=record.id, recipient=first.recipient, status=NoticeStatus.NOT_REQUIRED,
            detail="no longer a recipient", at=NOW,
        )  # fmt: skip
    with env.database.session() as session:
        [again, *_] = recipients_service.tasks(session, catalog=env.policy.catalog, request_id=record.id)
    assert (again.recipient, again.status, again.detail) == (first.recipient, NoticeStatus.NOT_REQUIRED,
                                                           "no longer a recipient")  # fmt: skip


def held_person(env: Jobs, **traits: object) -> tuple[str, uuid.UUID]:
    with env.database.session() as session:
        return held(session, env.keystore, at=NOW, **traits)
