"""Pydantic models of the catalog file, section by section. They check shapes and types only; the
rules that relate fields and atoms to each other live in `loader.py` and `checks.py`, which turn
every failure into a `CatalogProblem` that names the fix."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ControllerSchema(_Section):
    name: str = Field(min_length=1)
    contact: str = Field(min_length=1)
    establishment: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 country code")
    dpo: str | None = None
    representative: str | None = None


class DataSubjectSchema(_Section):
    name: str = Field(min_length=1)
    description: str = ""


class RecipientSchema(_Section):
    name: str = Field(min_length=1)
    role: Literal["processor", "controller", "internal"] = "processor"
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    safeguard: str | None = None
    description: str = ""


class CategorySchema(_Section):
    parent: str
    description: str = ""


class PropertySchema(_Section):
    category: str | None = None
    description: str = ""
    text: Literal["free", "url"] | None = None
    reference: bool = False


class SessionSchema(_Section):
    event: str = Field(min_length=1)
    measure: Literal["count", "last", "since"] = "count"
    by: str | None = None
    window: str | int | float | None = None


class AtomSchema(_Section):
    source: str | None = None
    category: str | None = None
    level: str | int | None = None
    purposes: list[str] = Field(default_factory=list)
    retention: str | int | float | None = None
    retention_anchor: str | None = None
    description: str = ""
    identifier: bool = False
    device_identifier: bool = False
    recipients: list[str] = Field(default_factory=list)
    explicit_consent: bool = False
    copy_forbidden: bool = False
    inputs: list[str] = Field(default_factory=list)
    properties: dict[str, PropertySchema | None] | list[str] = Field(default_factory=dict)
    essential: bool = False
    event: str | None = None
    text: Literal["free", "url"] | None = None
    session: SessionSchema | None = None


class CatalogSchema(_Section):
    """The top level. `atoms` stays raw here so that each atom is validated on its own and one bad
    atom does not hide the problems of the others."""

    version: Literal[1] = 1
    controller: ControllerSchema
    data_subjects: list[DataSubjectSchema] = Field(min_length=1)
    recipients: dict[str, RecipientSchema] = Field(default_factory=dict)
    categories: dict[str, CategorySchema] = Field(default_factory=dict)
    url_parameters: list[str] = Field(default_factory=list)
    never_in_copy: list[str] | None = None
    """Categories no template may put into copy; None (the key left out) keeps the defaults."""
    expiry: dict[str, str] = Field(default_factory=dict)
    """What expiry does to stored rows, per category (covering those below it): delete or anonymise."""
    atoms: dict[str, object] = Field(min_length=1)
