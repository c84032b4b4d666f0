"""Key management over HTTP (admin scope): list, create (the key is shown once), revoke."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from tactful.api.context import Context
from tactful.api.deps import AUTH_RESPONSES, Problem, require_admin
from tactful.keys import service as keys_service
from tactful.keys.schemas import KeyCreate, KeyCreated, KeyView
from tactful.types import utcnow

router = APIRouter(prefix="/v1/admin/keys", tags=["keys"], responses=AUTH_RESPONSES)


def _actor(principal_key: uuid.UUID) -> str:
    return f"api:key:{principal_key}"


@router.get("", summary="List API keys (never their secrets or hashes)")
def list_keys(context: Context, principal: require_admin) -> list[KeyView]:
    with context.session() as session:
        keys = keys_service.list_keys(session)
    return [KeyView.of(key) for key in keys]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key; the response carries the key, which is not shown again",
    responses={422: {"model": Problem, "description": "Invalid name or scope"}},
)
def create_key(body: KeyCreate, response: Response, context: Context, principal: require_admin) -> KeyCreated:
    with context.session() as session:
        row, token = keys_service.create_key(
            session,
            keystore=context.keystore,
            name=body.name,
            scope=body.scope,
            at=utcnow(),
            actor=_actor(principal.key_id),
        )
        info = keys_service.key_info(row)
    response.headers["Cache-Control"] = "no-store"
    return KeyCreated(**KeyView.of(info).model_dump(), key=token)


@router.delete(
    "/{key_id}",
    summary="Revoke an API key: every process refuses it from the next request on",
    responses={404: {"model": Problem, "description": "No key with this id"}},
)
def revoke_key(key_id: uuid.UUID, context: Context, principal: require_admin) -> KeyView:
    with context.session() as session:
        info = keys_service.revoke_key(
            session, keystore=context.keystore, key_id=key_id, at=utcnow(), actor=_actor(principal.key_id)
        )
    return KeyView.of(info)
