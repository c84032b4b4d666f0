"""Manage placements and audiences, and the versions of everything the decision model holds.

    create / update ──▶ checks (field path + sentence) ──▶ row ──▶ version row ──▶ audit entry
    an audience's new condition ──▶ its size estimated from stored profiles, within a bound
                                    (`audience_count`) ──▶ the view reports it, and whether it serves

Every change makes a version (a snapshot, the admin key's id, the time) and an audit entry naming
the resource and the version, never a person. Placements and audiences serve as soon as they change:
each of their versions is published. Experiences are drafted and published (`decide.experiences`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.crypto import Keystore
from tactful.db import Base
from tactful.decide.audience_size import NOT_MEASURED, Size, Sizing
from tactful.decide.checks import (
    MAX_CONDITION_BYTES,
    Code,
    Problem,
    content_problems,
    json_problems,
    text_problems,
)
from tactful.decide.models import Audience, DecideVersion, Experience, Placement
from tactful.decide.publishing import condition_problems
from tactful.decide.schemas import (
    Actor,
    AudienceCreate,
    AudienceUpdate,
    AudienceView,
    Change,
    Channel,
    DefaultVariation,
    Kind,
    PlacementCreate,
    PlacementUpdate,
    PlacementView,
    VersionView,
)
from tactful.errors import Conflict, FieldProblem, InvalidDefinition, NotFound
from tactful.types import new_id

MAX_LIST = 500
_ROWS: dict[Kind, type[Placement] | type[Audience] | type[Experience]] = {
    Kind.PLACEMENT: Placement,
    Kind.AUDIENCE: Audience,
    Kind.EXPERIENCE: Experience,
}


# -- shared ------------------------------------------------------------------------------------------


def refuse(problems: Sequence[Problem], *, what: str, code: str | None = None) -> None:
    """Raise `InvalidDefinition` listing `problems`, if there are any."""
    if not problems:
        return
    first = problems[0]
    said = first.message if first.message.startswith(first.field) else f"{first.field}: {first.message}"
    more = f" (and {len(problems) - 1} more, listed in `errors`)" if len(problems) > 1 else ""
    raise InvalidDefinition(
        f"the {what} cannot be {'published' if code == 'publish_refused' else 'saved'}: {said}{more}",
        code=code,
        problems=[FieldProblem(p.path, p.message, p.code.value) for p in problems],
    )


def not_found(kind: Kind, key: str) -> NotFound:
    return NotFound(f"no {kind} with the key {key!r}", code=f"{kind}_not_found")


def insert(session: Session, row: Base, *, kind: Kind, key: str) -> None:
    """Add `row`; a key taken meanwhile by another transaction is the same 409 as one taken before."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"a {kind} with the key {key!r} exists already; change it with PATCH, or choose another key",
            code=f"{kind}_exists",
        ) from exc


def locked(session: Session, model: type[Any], key: str) -> Any:
    """The row of `key`, locked for this transaction (its version number comes next), or None."""
    statement = select(model).where(model.key == key).with_for_update()
    return session.scalars(statement.execution_options(populate_existing=True)).first()


def record(
    session: Session,
    *,
    keystore: Keystore,
    kind: Kind,
    key: str,
    version: int,
    change: Change,
    published: bool,
    snapshot: dict[str, Any],
    actor: Actor,
    at: datetime,
    details: dict[str, str | int | bool | None] | None = None,
) -> None:
    """The version row of a change, and its audit entry (the resource and the version; no person)."""
    session.add(
        DecideVersion(
            id=new_id(), kind=kind.value, key=key, version=version, change=change.value,
            published=published, snapshot=snapshot, actor_key_id=actor.key_id, at=at,
        )
    )  # fmt: skip
    session.flush()
    audit_service.append(
        session,
        keystore=keystore,
        action=f"decide.{kind.value}.{change.value}",
        actor=actor.name,
        at=at,
        details={"key": key, "version": version, "published": published, **(details or {})},
    )


def page(session: Session, model: type[Any], *, after: str | None, limit: int) -> list[Any]:
    """Rows of `model` by key, from after `after`, at most `limit` (capped at `MAX_LIST`)."""
    statement = select(model).order_by(model.key).limit(max(1, min(limit, MAX_LIST)))
    if after is not None:
        statement = statement.where(model.key > after)
    return list(session.scalars(statement))


# -- placements --------------------------------------------------------------------------------------


def _placement_view(row: Placement) -> PlacementView:
    return PlacementView(
        key=row.key,
        channel=Channel(row.channel),
        description=row.description,
        default=DefaultVariation(content=row.default_content, templates=row.default_templates),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _placement_snapshot(row: Placement) -> dict[str, Any]:
    return _placement_view(row).model_dump(mode="json", exclude={"version", "created_at", "updated_at"})


def _default_problems(default: DefaultVariation, *, channel: str) -> list[Problem]:
    return content_problems(default.content, default.templates, ("default",), channel=channel)


def create_placement(
    session: Session, *, keystore: Keystore, spec: PlacementCreate, actor: Actor, at: datetime
) -> PlacementView:
    """A placement and its default variation (version 1, serving at once)."""
    problems = text_problems({("description",): spec.description})
    refuse(problems + _default_problems(spec.default, channel=spec.channel), what="placement")
    row = Placement(
        id=new_id(), key=spec.key, channel=spec.channel.value, description=spec.description,
        default_content=spec.default.content, default_templates=dict(spec.default.templates),
        version=1, created_at=at, updated_at=at,
    )  # fmt: skip
    insert(session, row, kind=Kind.PLACEMENT, key=spec.key)
    record(
        session, keystore=keystore, kind=Kind.PLACEMENT, key=row.key, version=1, change=Change.CREATED,
        published=True, snapshot=_placement_snapshot(row), actor=actor, at=at,
    )  # fmt: skip
    return _placement_view(row)


def update_placement(
    session: Session, *, keystore: Keystore, key: str, patch: PlacementUpdate, actor: Actor, at: datetime
) -> PlacementView:
    """Change a placement's description or default variation; its channel is fixed."""
    row: Placement | None = locked(session, Placement, key)
    if row is None:
        raise not_found(Kind.PLACEMENT, key)
    if not patch.model_fields_set:
        return _placement_view(row)
    problems = text_problems({("description",): patch.description})
    if patch.channel is not None and patch.channel != row.channel:
        problems.append(
            Problem(
                ("channel",),
                Code.CHANNEL_FIXED,
                f"a placement's channel is fixed (this one is {row.channel!r}); create a new placement "
                f"for the {patch.channel} channel",
            )
        )
    if patch.default is not None:
        problems += _default_problems(patch.default, channel=row.channel)
    refuse(problems, what="placement")
    if patch.description is not None:
        row.description = patch.description
    if patch.default is not None:
        row.default_content = patch.default.content
        row.default_templates = dict(patch.default.templates)
    row.version += 1
    row.updated_at = at
    record(
        session, keystore=keystore, kind=Kind.PLACEMENT, key=row.key, version=row.version,
        change=Change.UPDATED, published=True, snapshot=_placement_snapshot(row), actor=actor, at=at,
    )  # fmt: skip
    return _placement_view(row)


def get_placement(session: Session, *, key: str) -> PlacementView:
    row = session.scalars(select(Placement).where(Placement.key == key)).first()
    if row is None:
        raise not_found(Kind.PLACEMENT, key)
    return _placement_view(row)


def list_placements(session: Session, *, after: str | None = None, limit: int = 100) -> list[PlacementView]:
    return [_placement_view(row) for row in page(session, Placement, after=after, limit=limit)]


# -- audiences ---------------------------------------------------------------------------------------


def _audience_views(session: Session, rows: Sequence[Audience], sizing: Sizing | None) -> list[AudienceView]:
    # Sizes are read from the sketches that decisions and the stored profiles count into
    # (`audience_size`, `audience_count`); without a measure, none.
    sizes = sizing(session, {row.key: row.condition for row in rows}) if sizing is not None else {}
    return [_audience_view(row, sizes.get(row.key, NOT_MEASURED)) for row in rows]


def _audience_view(row: Audience, size: Size) -> AudienceView:
    return AudienceView(
        key=row.key,
        name=row.name,
        condition=row.condition,
        estimated_size=size.estimated,
        serving=size.serving,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _audience_snapshot(row: Audience) -> dict[str, Any]:
    return {"name": row.name, "condition": row.condition}


def _condition_problems(condition: dict[str, Any] | None) -> list[Problem]:
    # Size and depth first; then the condition language, whose own codes name what it refuses (nulls too).
    if condition is None:
        return []
    problems = json_problems(condition, ("condition",), max_bytes=MAX_CONDITION_BYTES, nulls=True)
    return problems or condition_problems(condition, path=("condition",))[1]


def create_audience(
    session: Session,
    *,
    keystore: Keystore,
    spec: AudienceCreate,
    actor: Actor,
    at: datetime,
    sizing: Sizing | None = None,
) -> AudienceView:
    """An audience (version 1). Its condition is stored as given; the condition language analyses it.
    Its size is estimated from stored profiles once it is committed (`audience_count.Recount`)."""
    refuse(text_problems({("name",): spec.name}) + _condition_problems(spec.condition), what="audience")
    row = Audience(
        id=new_id(), key=spec.key, name=spec.name, condition=spec.condition, version=1,
        created_at=at, updated_at=at,
    )  # fmt: skip
    insert(session, row, kind=Kind.AUDIENCE, key=spec.key)
    record(
        session, keystore=keystore, kind=Kind.AUDIENCE, key=row.key, version=1, change=Change.CREATED,
        published=True, snapshot=_audience_snapshot(row), actor=actor, at=at,
    )  # fmt: skip
    return _audience_views(session, [row], sizing)[0]


def update_audience(
    session: Session,
    *,
    keystore: Keystore,
    key: str,
    patch: AudienceUpdate,
    actor: Actor,
    at: datetime,
    sizing: Sizing | None = None,
) -> tuple[AudienceView, bool]:
    """Change an audience's name or condition (a new version); with whether its condition changed.
    A new condition is counted afresh (its sketch key is new): once committed, from stored profiles
    (`audience_count.Recount`)."""
    row: Audience | None = locked(session, Audience, key)
    if row is None:
        raise not_found(Kind.AUDIENCE, key)
    if not patch.model_fields_set:
        return _audience_views(session, [row], sizing)[0], False
    refuse(text_problems({("name",): patch.name}) + _condition_problems(patch.condition), what="audience")
    if patch.name is not None:
        row.name = patch.name
    changed = patch.condition is not None and patch.condition != row.condition
    if patch.condition is not None:
        row.condition = patch.condition
    row.version += 1
    row.updated_at = at
    record(
        session, keystore=keystore, kind=Kind.AUDIENCE, key=row.key, version=row.version,
        change=Change.UPDATED, published=True, snapshot=_audience_snapshot(row), actor=actor, at=at,
    )  # fmt: skip
    return _audience_views(session, [row], sizing)[0], changed


def get_audience(session: Session, *, key: str, sizing: Sizing | None = None) -> AudienceView:
    row = session.scalars(select(Audience).where(Audience.key == key)).first()
    if row is None:
        raise not_found(Kind.AUDIENCE, key)
    return _audience_views(session, [row], sizing)[0]


def list_audiences(
    session: Session, *, after: str | None = None, limit: int = 100, sizing: Sizing | None = None
) -> list[AudienceView]:
    return _audience_views(session, list(page(session, Audience, after=after, limit=limit)), sizing)


# -- versions ----------------------------------------------------------------------------------------


def _version_view(row: DecideVersion) -> VersionView:
    return VersionView(
        kind=Kind(row.kind), key=row.key, version=row.version, change=Change(row.change),
        published=row.published, snapshot=row.snapshot, actor_key_id=row.actor_key_id, at=row.at,
    )  # fmt: skip


def list_versions(
    session: Session, *, kind: Kind, key: str, before: int | None = None, limit: int = 100
) -> list[VersionView]:
    """The versions of one resource, newest first (before version `before`, at most `limit`)."""
    model = _ROWS[kind]
    if session.scalars(select(model.id).where(model.key == key)).first() is None:
        raise not_found(kind, key)
    statement = (
        select(DecideVersion)
        .where(DecideVersion.kind == kind.value, DecideVersion.key == key)
        .order_by(DecideVersion.version.desc())
        .limit(max(1, min(limit, MAX_LIST)))
    )
    if before is not None:
        statement = statement.where(DecideVersion.version < before)
    return [_version_view(row) for row in session.scalars(statement)]


def get_version(session: Session, *, kind: Kind, key: str, version: int) -> VersionView | None:
    row = session.scalars(
        select(DecideVersion).where(
            DecideVersion.kind == kind.value, DecideVersion.key == key, DecideVersion.version == version
        )
    ).first()
    return None if row is None else _version_view(row)


def serving(session: Session, *, kind: Kind, key: str) -> VersionView | None:
    """The version that serves: the latest published one (None: nothing of this key serves)."""
    row = session.scalars(
        select(DecideVersion)
        .where(DecideVersion.kind == kind.value, DecideVersion.key == key, DecideVersion.published)
        .order_by(DecideVersion.version.desc())
        .limit(1)
    ).first()
    return None if row is None else _version_view(row)
