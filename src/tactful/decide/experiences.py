"""Manage experiences: drafted, published, paused, rolled back; every step a version.

    create / update ──▶ draft version (unpublished; what serves does not change)
    publish ──────────▶ publishing.check_publish ──▶ status live, a published version
    pause ────────────▶ status paused, a published version (nothing of it serves)
    rollback(n) ──────▶ version n's snapshot, checked and published as a new version

The row is the working copy; the serving version is the latest published one (`service.serving`).
The assignment seed changes only when the variations or their weights change, or on request:
editing content keeps every subject in the variation they were in.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.catalog.model import Catalog
from tactful.crypto import Keystore
from tactful.decide import service as decide_service
from tactful.decide.checks import (
    Code,
    ExperienceData,
    Problem,
    VariationData,
    experience_problems,
    text_problems,
)
from tactful.decide.models import Audience, Experience, Placement, Variation
from tactful.decide.publishing import PublishChecks, check_publish
from tactful.decide.schemas import (
    DEFAULT_HOLDOUT,
    Actor,
    Change,
    ExperienceCreate,
    ExperienceUpdate,
    ExperienceView,
    Kind,
    Status,
    Strategy,
    VariationSpec,
)
from tactful.errors import Conflict, NotFound
from tactful.types import new_id

_CLEARABLE = ("starts_at", "ends_at", "namespace", "audience", "holdout")
_VOLATILE = {"key", "version", "published_version", "created_at", "updated_at"}


def _seed() -> str:
    return secrets.token_hex(16)


def _arms(variations: Sequence[VariationSpec]) -> list[tuple[str, float]]:
    return [(v.key, v.weight) for v in variations]


def default_holdout(variations: int) -> float:
    return DEFAULT_HOLDOUT if variations > 1 else 0.0


def _utc(value: datetime | None, name: str, problems: list[Problem]) -> datetime | None:
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        problems.append(
            Problem(
                (name,),
                Code.TIME_OUT_OF_RANGE,
                f"`{name}` is outside the calendar once in UTC; pick a time between the years 1 and 9999",
            )
        )
        return None


def view(row: Experience) -> ExperienceView:
    return ExperienceView(
        key=row.key, placement=row.placement_key, description=row.description, priority=row.priority,
        status=Status(row.status), starts_at=row.starts_at, ends_at=row.ends_at, holdout=row.holdout,
        strategy=Strategy(row.strategy), significant_effect=row.significant_effect,
        namespace=row.namespace, audience=row.audience_key,
        variations=[
            VariationSpec(key=v.key, content=v.content, templates=v.templates, weight=v.weight)
            for v in row.variations
        ],
        seed=row.seed, version=row.version, published_version=row.published_version,
        created_at=row.created_at, updated_at=row.updated_at,
    )  # fmt: skip


def _snapshot(row: Experience) -> dict[str, Any]:
    return view(row).model_dump(mode="json", exclude=_VOLATILE)


def _data(row: Experience) -> ExperienceData:
    return ExperienceData(
        strategy=row.strategy,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        variations=[VariationData(v.key, v.content, v.templates, v.weight) for v in row.variations],
    )


def _set_variations(row: Experience, variations: Sequence[VariationSpec]) -> None:
    # Replaced as a whole: the old rows go (delete-orphan) before the new ones reuse their keys.
    row.variations.clear()
    _session_of(row).flush()
    row.variations.extend(
        Variation(
            id=new_id(),
            position=index,
            key=v.key,
            content=v.content,
            templates=dict(v.templates),
            weight=v.weight,
        )
        for index, v in enumerate(variations)
    )


def _session_of(row: Experience) -> Session:
    session = Session.object_session(row)
    assert session is not None
    return session


def _references(
    session: Session, *, placement: str, audience: str | None
) -> tuple[str | None, list[Problem]]:
    """The placement's channel (None when it does not exist) and problems with either reference."""
    problems: list[Problem] = []
    channel = session.scalars(select(Placement.channel).where(Placement.key == placement)).first()
    if channel is None:
        problems.append(
            Problem(
                ("placement",),
                Code.PLACEMENT_UNKNOWN,
                f"there is no placement {placement!r}; create it "
                "first (POST /v1/admin/placements) or name an existing one",
            )
        )
    if (
        audience is not None
        and session.scalars(select(Audience.id).where(Audience.key == audience)).first() is None
    ):
        problems.append(
            Problem(
                ("audience",),
                Code.AUDIENCE_UNKNOWN,
                f"there is no audience {audience!r}; create it first "
                "(POST /v1/admin/audiences), or leave `audience` out to show this to everyone",
            )
        )
    return channel, problems


def create_experience(
    session: Session, *, keystore: Keystore, spec: ExperienceCreate, actor: Actor, at: datetime
) -> ExperienceView:
    """A draft experience (version 1, not serving until published)."""
    channel, problems = _references(session, placement=spec.placement, audience=spec.audience)
    problems += text_problems({("description",): spec.description})
    starts_at, ends_at = _utc(spec.starts_at, "starts_at", problems), _utc(spec.ends_at, "ends_at", problems)
    data = ExperienceData(
        spec.strategy, starts_at, ends_at,
        [VariationData(v.key, v.content, v.templates, v.weight) for v in spec.variations],
    )  # fmt: skip
    problems += experience_problems(data, channel=channel or "web")
    decide_service.refuse(problems, what="experience")
    row = Experience(
        id=new_id(), key=spec.key, placement_key=spec.placement, description=spec.description,
        priority=spec.priority, status=Status.DRAFT.value, starts_at=starts_at, ends_at=ends_at,
        holdout=spec.holdout if spec.holdout is not None else default_holdout(len(spec.variations)),
        strategy=spec.strategy.value, significant_effect=spec.significant_effect, namespace=spec.namespace,
        audience_key=spec.audience, seed=_seed(), version=1, published_version=None,
        created_at=at, updated_at=at,
        variations=[
            Variation(id=new_id(), position=i, key=v.key, content=v.content, templates=dict(v.templates),
                      weight=v.weight)
            for i, v in enumerate(spec.variations)
        ],
    )  # fmt: skip
    decide_service.insert(session, row, kind=Kind.EXPERIENCE, key=spec.key)
    decide_service.record(
        session, keystore=keystore, kind=Kind.EXPERIENCE, key=row.key, version=1, change=Change.CREATED,
        published=False, snapshot=_snapshot(row), actor=actor, at=at,
    )  # fmt: skip
    return view(row)


def _locked(session: Session, key: str) -> Experience:
    row: Experience | None = decide_service.locked(session, Experience, key)
    if row is None:
        raise decide_service.not_found(Kind.EXPERIENCE, key)
    return row


def update_experience(
    session: Session, *, keystore: Keystore, key: str, patch: ExperienceUpdate, actor: Actor, at: datetime
) -> ExperienceView:
    """Change the working copy (a new, unpublished version: what serves changes when it is published).
    Members given replace the stored ones; a null clears the schedule, namespace or audience, and sets
    the holdout back to its default."""
    row = _locked(session, key)
    given = patch.model_fields_set
    if not given:
        return view(row)
    problems: list[Problem] = []
    if patch.placement is not None and patch.placement != row.placement_key:
        problems.append(
            Problem(
                ("placement",),
                Code.PLACEMENT_FIXED,
                f"an experience stays on its placement (this one is "
                f"on {row.placement_key!r}); create a new experience for {patch.placement!r}",
            )
        )
    audience = patch.audience if "audience" in given else row.audience_key
    channel, found = _references(session, placement=row.placement_key, audience=audience)
    problems += found + text_problems({("description",): patch.description})
    starts_at = _utc(patch.starts_at, "starts_at", problems) if "starts_at" in given else row.starts_at
    ends_at = _utc(patch.ends_at, "ends_at", problems) if "ends_at" in given else row.ends_at
    variations = patch.variations if patch.variations is not None else view(row).variations
    strategy = patch.strategy.value if patch.strategy is not None else row.strategy
    data = ExperienceData(
        strategy, starts_at, ends_at,
        [VariationData(v.key, v.content, v.templates, v.weight) for v in variations],
    )  # fmt: skip
    problems += experience_problems(data, channel=channel or "web")
    decide_service.refuse(problems, what="experience")

    if patch.variations is not None:
        if _arms(patch.variations) != _arms(view(row).variations):
            row.seed = _seed()
        _set_variations(row, patch.variations)
    if patch.rerandomize:
        row.seed = _seed()
    row.strategy, row.starts_at, row.ends_at, row.audience_key = strategy, starts_at, ends_at, audience
    if "namespace" in given:
        row.namespace = patch.namespace
    if "holdout" in given:
        row.holdout = patch.holdout if patch.holdout is not None else default_holdout(len(variations))
    for name in ("description", "priority", "significant_effect"):
        if getattr(patch, name) is not None:
            setattr(row, name, getattr(patch, name))
    row.version += 1
    row.updated_at = at
    decide_service.record(
        session, keystore=keystore, kind=Kind.EXPERIENCE, key=row.key, version=row.version,
        change=Change.UPDATED, published=False, snapshot=_snapshot(row), actor=actor, at=at,
    )  # fmt: skip
    return view(row)


def get_experience(session: Session, *, key: str) -> ExperienceView:
    row = session.scalars(select(Experience).where(Experience.key == key)).first()
    if row is None:
        raise decide_service.not_found(Kind.EXPERIENCE, key)
    return view(row)


def list_experiences(
    session: Session, *, placement: str | None = None, after: str | None = None, limit: int = 100
) -> list[ExperienceView]:
    statement = select(Experience).order_by(Experience.key).limit(max(1, min(limit, decide_service.MAX_LIST)))
    if placement is not None:
        statement = statement.where(Experience.placement_key == placement)
    if after is not None:
        statement = statement.where(Experience.key > after)
    return [view(row) for row in session.scalars(statement)]


def _publish(
    session: Session, *, keystore: Keystore, row: Experience, change: Change, actor: Actor, at: datetime,
    catalog: Catalog, checks: PublishChecks | None, details: dict[str, str | int | bool | None],
) -> ExperienceView:  # fmt: skip
    channel = session.scalars(select(Placement.channel).where(Placement.key == row.placement_key)).one()
    condition = None
    if row.audience_key is not None:
        condition = session.scalars(select(Audience.condition).where(Audience.key == row.audience_key)).one()
    verdict = check_publish(
        _data(row), channel=channel, significant_effect=row.significant_effect, audience=condition,
        catalog=catalog, now=at, checks=checks,
    )  # fmt: skip
    decide_service.refuse(verdict.problems, what="experience", code="publish_refused")
    row.status = Status.LIVE.value
    row.version += 1
    row.published_version = row.version
    row.updated_at = at
    snapshot = _snapshot(row) | {"level": verdict.level.value, "atoms": sorted(verdict.atoms)}
    decide_service.record(
        session, keystore=keystore, kind=Kind.EXPERIENCE, key=row.key, version=row.version, change=change,
        published=True, snapshot=snapshot, actor=actor, at=at,
        details={"level": verdict.level.value, **details},
    )  # fmt: skip
    return view(row)


def publish_experience(
    session: Session, *, keystore: Keystore, key: str, actor: Actor, at: datetime, catalog: Catalog,
    checks: PublishChecks | None = None,
) -> ExperienceView:  # fmt: skip
    """Put the working copy live after the publish check; already live and unchanged: nothing to do."""
    row = _locked(session, key)
    if row.status == Status.LIVE and row.published_version == row.version:
        return view(row)
    return _publish(
        session, keystore=keystore, row=row, change=Change.PUBLISHED, actor=actor, at=at, catalog=catalog,
        checks=checks, details={},
    )  # fmt: skip


def pause_experience(
    session: Session, *, keystore: Keystore, key: str, actor: Actor, at: datetime
) -> ExperienceView:
    """Stop serving a live experience (a published version with status paused). Paused already:
    nothing to do; a draft was never live, so it cannot be paused."""
    row = _locked(session, key)
    if row.status == Status.PAUSED:
        return view(row)
    if row.status != Status.LIVE:
        raise Conflict(
            f"the experience {key!r} is a draft that never went live; there is nothing to pause",
            code="experience_not_live",
        )
    row.status = Status.PAUSED.value
    row.version += 1
    row.published_version = row.version
    row.updated_at = at
    decide_service.record(
        session, keystore=keystore, kind=Kind.EXPERIENCE, key=row.key, version=row.version,
        change=Change.PAUSED, published=True, snapshot=_snapshot(row), actor=actor, at=at,
    )  # fmt: skip
    return view(row)


def rollback_experience(
    session: Session, *, keystore: Keystore, key: str, version: int, actor: Actor, at: datetime,
    catalog: Catalog, checks: PublishChecks | None = None,
) -> ExperienceView:  # fmt: skip
    """Publish an earlier version's definition again, as a new version. The seed of that version comes
    back with its variations; when the variations and weights are those of now, the seed stays."""
    row = _locked(session, key)
    earlier = decide_service.get_version(session, kind=Kind.EXPERIENCE, key=key, version=version)
    if earlier is None or version >= row.version:
        raise NotFound(
            f"the experience {key!r} has no earlier version {version}; list them at "
            f"/v1/admin/experiences/{key}/versions",
            code="version_not_found",
        )
    snapshot = earlier.snapshot
    variations = [VariationSpec.model_validate(v) for v in snapshot["variations"]]
    if _arms(variations) != _arms(view(row).variations):
        row.seed = snapshot["seed"]
    _set_variations(row, variations)
    row.description, row.priority = snapshot["description"], snapshot["priority"]
    row.starts_at, row.ends_at = (
        datetime.fromisoformat(snapshot[name]) if snapshot[name] else None
        for name in ("starts_at", "ends_at")
    )
    row.holdout, row.strategy = snapshot["holdout"], snapshot["strategy"]
    row.significant_effect, row.namespace = snapshot["significant_effect"], snapshot["namespace"]
    row.audience_key = snapshot["audience"]  # audiences are never deleted
    return _publish(
        session, keystore=keystore, row=row, change=Change.ROLLED_BACK, actor=actor, at=at, catalog=catalog,
        checks=checks, details={"from_version": version},
    )  # fmt: skip
