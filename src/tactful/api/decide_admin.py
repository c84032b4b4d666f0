"""The decision model over HTTP (admin scope): placements, audiences and experiences, their versions,
and publishing.

    POST/GET  /v1/admin/{placements|audiences|experiences}          create, list
    GET/PATCH /v1/admin/{placements|audiences|experiences}/{key}    read, change (a new version)
    GET       /v1/admin/{placements|audiences|experiences}/{key}/versions
    POST      /v1/admin/experiences/{key}/publish | pause | rollback
    POST      /v1/admin/placements/{key}/preview     a made-up subject under a chosen consent (and, if
                                                     said, the explicit consent significant decisions need)

A definition with faults answers 422 `invalid_definition` (publishing: `publish_refused`) listing each
in `errors`: the path of the field, the fault's code, and a sentence that says how to fix it.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, cast

from fastapi import APIRouter, Query, Response, status
from fastapi import Path as PathParam
from pydantic import JsonValue

from tactful.api.context import AppContext, Context
from tactful.api.deps import AUTH_RESPONSES, Problem, require_admin
from tactful.catalog.model import Catalog
from tactful.decide import experiences as experiences_service
from tactful.decide import preview as decide_preview
from tactful.decide import service as decide_service
from tactful.decide.publishing import PublishChecks
from tactful.decide.schemas import (
    KEY_PATTERN,
    Actor,
    AudienceCreate,
    AudienceUpdate,
    AudienceView,
    ExperienceCreate,
    ExperienceUpdate,
    ExperienceView,
    Kind,
    PlacementCreate,
    PlacementUpdate,
    PlacementView,
    PreviewRequest,
    PreviewView,
    Rollback,
    VersionView,
)
from tactful.decide.wording import Language, language_of, sentences
from tactful.types import Level, utcnow

KeyPath = Annotated[str, PathParam(pattern=KEY_PATTERN, max_length=64, description="The resource's key")]
After = Annotated[
    str | None,
    Query(
        pattern=KEY_PATTERN, max_length=64, description="List the keys after this one (the last of a page)"
    ),
]
Limit = Annotated[int, Query(ge=1, le=decide_service.MAX_LIST, description="At most this many")]
Before = Annotated[
    int | None, Query(ge=1, le=2**31 - 1, description="List the versions before this one (newest first)")
]

Responses = dict[int | str, dict[str, Any]]
_NOT_FOUND: Responses = {
    404: {"model": Problem, "description": "No resource with this key (`<kind>_not_found`)"}
}
_DEFINITION: Responses = {
    422: {
        "model": Problem,
        "description": "The request does not match the schema (`invalid_input`), or the definition has "
        "faults to fix (`invalid_definition`): each in `errors` with its field path and how to fix it",
    }
}
_EXISTS: Responses = {409: {"model": Problem, "description": "The key is taken (`<kind>_exists`)"}}

placements = APIRouter(prefix="/v1/admin/placements", tags=["placements"], responses=AUTH_RESPONSES)
audiences = APIRouter(prefix="/v1/admin/audiences", tags=["audiences"], responses=AUTH_RESPONSES)
experiences = APIRouter(prefix="/v1/admin/experiences", tags=["experiences"], responses=AUTH_RESPONSES)


def _catalog(context: AppContext) -> Catalog:
    return context.gate().catalog if context.gates is not None else context.catalog


def publish_checks(context: AppContext) -> PublishChecks:
    """What this deployment offers to publishing: human review of significant decisions and its
    admin queue (`api/reviews.py`), so a significant-effect experience may be published."""
    return PublishChecks(human_review=True)


def _versions(context: AppContext, kind: Kind, key: str, before: int | None, limit: int) -> list[VersionView]:
    with context.session() as session:
        return decide_service.list_versions(session, kind=kind, key=key, before=before, limit=limit)


# -- placements --------------------------------------------------------------------------------------


@placements.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a placement with its default variation (serves at once)",
    responses={**_EXISTS, **_DEFINITION},
)
def create_placement(body: PlacementCreate, context: Context, principal: require_admin) -> PlacementView:
    with context.changing() as session:
        return decide_service.create_placement(
            session, keystore=context.keystore, spec=body, actor=Actor.of_key(principal.key_id), at=utcnow()
        )


@placements.get("", summary="List placements by key")
def list_placements(
    response: Response, context: Context, principal: require_admin, after: After = None, limit: Limit = 100
) -> list[PlacementView]:
    response.headers["Cache-Control"] = "no-store"
    with context.session() as session:
        return decide_service.list_placements(session, after=after, limit=limit)


@placements.get("/{key}", summary="Read a placement", responses=_NOT_FOUND)
def get_placement(
    key: KeyPath, response: Response, context: Context, principal: require_admin
) -> PlacementView:
    response.headers["Cache-Control"] = "no-store"
    with context.session() as session:
        return decide_service.get_placement(session, key=key)


@placements.patch(
    "/{key}",
    summary="Change a placement's description or default variation (a new version, serving at once)",
    responses={**_NOT_FOUND, **_DEFINITION},
)
def update_placement(
    key: KeyPath, body: PlacementUpdate, context: Context, principal: require_admin
) -> PlacementView:
    with context.changing() as session:
        return decide_service.update_placement(
            session, keystore=context.keystore, key=key, patch=body, actor=Actor.of_key(principal.key_id),
            at=utcnow(),
        )  # fmt: skip


@placements.get("/{key}/versions", summary="A placement's versions, newest first", responses=_NOT_FOUND)
def placement_versions(
    key: KeyPath, context: Context, principal: require_admin, before: Before = None, limit: Limit = 100
) -> list[VersionView]:
    return _versions(context, Kind.PLACEMENT, key, before, limit)


@placements.post(
    "/{key}/preview",
    summary="Preview what a placement shows a made-up subject under a chosen consent (nothing logged)",
    description="The subject is made up from the request alone (no person's data is read, nothing is "
    "written): consent granted for every pyramid purpose up to `ceiling`, the `atoms` and `context` "
    "given. With `significant_decisions`, the subject also gave that explicit consent and is an adult, "
    "so that an experience with a significant effect (a price, an eligibility) can be checked, with "
    "the explanation and the sentences its person would read, before it is published.",
    responses={
        422: {
            "model": Problem,
            "description": "No such placement (`unknown_placement`), an atom the catalog does not "
            "declare (`undeclared_atom`), or a body that does not match the schema",
        }
    },
)
def preview_placement(
    key: KeyPath, body: PreviewRequest, context: Context, principal: require_admin
) -> PreviewView:
    lineup = context.lineup()
    served = decide_preview.preview(
        policy=context.policy_context(), lineup=lineup, placement=key, ceiling=Level(body.ceiling),
        atoms=body.atoms, context=body.context, unit=body.unit, at=utcnow(),
        significant=body.significant_decisions,
    )  # fmt: skip
    answer, explanation = served.answer, served.explanation
    words = sentences(explanation, language_of(body.context.get("locale")) or Language.EN)
    return PreviewView(
        placement=answer.placement, experience=answer.experience, variation=answer.variation,
        content=cast(JsonValue, answer.content), level=str(answer.level), strategy=str(answer.strategy),
        propensity=answer.propensity, explanation=cast(dict[str, JsonValue], explanation.to_json()),
        significant=explanation.significant,
        sentences={part.name: list(getattr(words, part.name)) for part in dataclasses.fields(words)},
    )  # fmt: skip


# -- audiences ---------------------------------------------------------------------------------------


_SIZE = (
    "A `1:many` audience that reads only stored traits or computed atoms has its size estimated from "
    "the stored profiles at once: up to `decide.audience_count_inline` subjects in this request, the rest "
    "by the server's scheduled pass; one that reads the request is counted from decisions, in shadow, "
    "until it has matched k people. `estimated_size` and `serving` say where it stands."
)


def _sized(context: AppContext, made: AudienceView, condition: dict[str, Any] | None) -> AudienceView:
    """`made`, once committed, with its size estimated from stored profiles at once (within the
    inline bound, each batch in a short unit of work of its own, so that the admin's write holds
    no lock across the count), then read again; as it was when there is no new condition to count."""
    counting = context.audience_counting()
    if counting is None or condition is None:
        return made
    limit = context.settings.decide.audience_count_inline
    counting.bounded(context.session, limit=limit, at=utcnow())({made.key: condition})
    with context.reading() as session:
        return decide_service.get_audience(session, key=made.key, sizing=context.audience_sizing())


@audiences.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an audience (its condition is stored as given)",
    description=_SIZE,
    responses={**_EXISTS, **_DEFINITION},
)
def create_audience(body: AudienceCreate, context: Context, principal: require_admin) -> AudienceView:
    with context.changing() as session:
        made = decide_service.create_audience(
            session, keystore=context.keystore, spec=body, actor=Actor.of_key(principal.key_id), at=utcnow(),
            sizing=context.audience_sizing(),
        )  # fmt: skip
    return _sized(context, made, body.condition)


@audiences.get("", summary="List audiences by key")
def list_audiences(
    response: Response, context: Context, principal: require_admin, after: After = None, limit: Limit = 100
) -> list[AudienceView]:
    response.headers["Cache-Control"] = "no-store"
    with context.session() as session:
        return decide_service.list_audiences(
            session, after=after, limit=limit, sizing=context.audience_sizing()
        )


@audiences.get("/{key}", summary="Read an audience", responses=_NOT_FOUND)
def get_audience(
    key: KeyPath, response: Response, context: Context, principal: require_admin
) -> AudienceView:
    response.headers["Cache-Control"] = "no-store"
    with context.session() as session:
        return decide_service.get_audience(session, key=key, sizing=context.audience_sizing())


@audiences.patch(
    "/{key}",
    summary="Change an audience's name or condition (a new version, serving at once)",
    description="A new condition is counted afresh (its size starts from zero). " + _SIZE,
    responses={**_NOT_FOUND, **_DEFINITION},
)
def update_audience(
    key: KeyPath, body: AudienceUpdate, context: Context, principal: require_admin
) -> AudienceView:
    with context.changing() as session:
        made, changed = decide_service.update_audience(
            session, keystore=context.keystore, key=key, patch=body, actor=Actor.of_key(principal.key_id),
            at=utcnow(), sizing=context.audience_sizing(),
        )  # fmt: skip
    return _sized(context, made, body.condition if changed else None)


@audiences.get("/{key}/versions", summary="An audience's versions, newest first", responses=_NOT_FOUND)
def audience_versions(
    key: KeyPath, context: Context, principal: require_admin, before: Before = None, limit: Limit = 100
) -> list[VersionView]:
    return _versions(context, Kind.AUDIENCE, key, before, limit)


# -- experiences -------------------------------------------------------------------------------------


@experiences.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a draft experience (it serves once published)",
    responses={**_EXISTS, **_DEFINITION},
)
def create_experience(body: ExperienceCreate, context: Context, principal: require_admin) -> ExperienceView:
    with context.changing() as session:
        return experiences_service.create_experience(
            session, keystore=context.keystore, spec=body, actor=Actor.of_key(principal.key_id), at=utcnow()
        )


@experiences.get("", summary="List experiences by key, optionally of one placement")
def list_experiences(
    response: Response,
    context: Context,
    principal: require_admin,
    placement: Annotated[str | None, Query(pattern=KEY_PATTERN, max_length=64)] = None,
    after: After = None,
    limit: Limit = 100,
) -> list[ExperienceView]:
    response.headers["Cache-Control"] = "no-store"
    with context.session() as session:
        return experiences_service.list_experiences(session, placement=placement, after=after, limit=limit)


@experiences.get("/{key}", summary="Read an experience's working copy", responses=_NOT_FOUND)
def get_experience(
    key: KeyPath, response: Response, context: Context, principal: require_admin
) -> ExperienceView:
    response.headers["Cache-Control"] = "no-store"
    with context.session() as session:
        return experiences_service.get_experience(session, key=key)


@experiences.patch(
    "/{key}",
    summary="Change an experience (a new version; what serves changes when it is published)",
    responses={**_NOT_FOUND, **_DEFINITION},
)
def update_experience(
    key: KeyPath, body: ExperienceUpdate, context: Context, principal: require_admin
) -> ExperienceView:
    with context.changing() as session:
        return experiences_service.update_experience(
            session, keystore=context.keystore, key=key, patch=body, actor=Actor.of_key(principal.key_id),
            at=utcnow(),
        )  # fmt: skip


_PUBLISH_REFUSED: Responses = {
    422: {
        "model": Problem,
        "description": "The experience cannot be published (`publish_refused`): each fault in `errors` "
        "with its field path and how to fix it",
    }
}


@experiences.post(
    "/{key}/publish",
    summary="Publish the working copy: it serves from now on (checked first)",
    responses={**_NOT_FOUND, **_PUBLISH_REFUSED},
)
def publish_experience(key: KeyPath, context: Context, principal: require_admin) -> ExperienceView:
    with context.changing() as session:
        return experiences_service.publish_experience(
            session, keystore=context.keystore, key=key, actor=Actor.of_key(principal.key_id), at=utcnow(),
            catalog=_catalog(context), checks=publish_checks(context),
        )  # fmt: skip


@experiences.post(
    "/{key}/pause",
    summary="Stop serving a live experience",
    responses={**_NOT_FOUND, 409: {"model": Problem, "description": "A draft (`experience_not_live`)"}},
)
def pause_experience(key: KeyPath, context: Context, principal: require_admin) -> ExperienceView:
    with context.changing() as session:
        return experiences_service.pause_experience(
            session, keystore=context.keystore, key=key, actor=Actor.of_key(principal.key_id), at=utcnow()
        )


@experiences.post(
    "/{key}/rollback",
    summary="Publish an earlier version again, as a new version",
    responses={
        404: {"model": Problem, "description": "No such experience, or no such earlier version"},
        **_PUBLISH_REFUSED,
    },
)
def rollback_experience(
    key: KeyPath, body: Rollback, context: Context, principal: require_admin
) -> ExperienceView:
    with context.changing() as session:
        return experiences_service.rollback_experience(
            session, keystore=context.keystore, key=key, version=body.version,
            actor=Actor.of_key(principal.key_id), at=utcnow(), catalog=_catalog(context),
            checks=publish_checks(context),
        )  # fmt: skip


@experiences.get("/{key}/versions", summary="An experience's versions, newest first", responses=_NOT_FOUND)
def experience_versions(
    key: KeyPath, context: Context, principal: require_admin, before: Before = None, limit: Limit = 100
) -> list[VersionView]:
    return _versions(context, Kind.EXPERIENCE, key, before, limit)


routers = (placements, audiences, experiences)
