"""The catalog over HTTP (admin scope): its drift, the undeclared fields that senders send."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from tactful.api.context import Context
from tactful.api.deps import AUTH_RESPONSES, require_admin
from tactful.collect import service as collect_service

router = APIRouter(prefix="/v1/admin/catalog", tags=["catalog"], responses=AUTH_RESPONSES)


class DroppedField(BaseModel):
    model_config = ConfigDict(frozen=True)

    field: str = Field(
        description="The field's path as sent (`properties.color`), or an aggregate in parentheses"
    )
    count: int = Field(ge=1, description="How many times it was dropped")
    aggregate: bool = Field(
        description="True for `(unnamed field)` (names that did not look like field names, never kept "
        "as they could be personal data) and `(other fields)` (names past a request's first hundred)"
    )


class CatalogDrift(BaseModel):
    """Fields received that the catalog does not declare: dropped before storage and counted. Declare
    the ones you need in the catalog, or stop sending them."""

    model_config = ConfigDict(frozen=True)

    total: int = Field(ge=0, description="Dropped fields in all")
    fields: list[DroppedField] = Field(description="By field, most frequent first")


@router.get("/drift", summary="Undeclared fields dropped at collection, by field name, most frequent first")
def catalog_drift(response: Response, context: Context, principal: require_admin) -> CatalogDrift:
    with context.session() as session:
        found = collect_service.catalog_drift(session)
    response.headers["Cache-Control"] = "no-store"
    return CatalogDrift(
        total=found.total,
        fields=[DroppedField(field=f.field, count=f.count, aggregate=f.aggregate) for f in found.fields],
    )
