"""Builders for privacy request tests: a policy context under chosen regimes, filing with defaults,
a job context over a database of its own, and people held in it."""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tactful.catalog.loader import load_catalog
from tactful.catalog.model import Catalog
from tactful.config import PolicySettings, PrivacySettings, Settings
from tactful.consent.gatekeeper import PolicyContext
from tactful.consent.regimes import configured_regimes
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.main import default_catalog_path
from tactful.profiles import service as profiles_service
from tactful.profiles.models import Subject
from tactful.rights import requests as requests_service
from tactful.rights.due import BusinessCalendar, RequestType
from tactful.rights.jobs import JobContext
from tactful.rights.schemas import NamedBy, RequestRecord, VerifiedBy
from tests.profiles.builders import unique

DEMO: Catalog = load_catalog(default_catalog_path())
CALENDAR = BusinessCalendar()
KEY = uuid.UUID(int=11)


def policy(*, establishment: str | None = None, ccpa_countries: tuple[str, ...] = ("US",)) -> PolicyContext:
    """The demo catalog (a controller established in DE, so GDPR for everyone) unless `establishment`
    says otherwise; CCPA for subjects in `ccpa_countries` (the catalog stores no region)."""
    settings = PolicySettings(
        establishment_country=establishment, regimes={"ccpa": {"countries": list(ccpa_countries)}}
    )
    return PolicyContext(DEMO, settings, configured_regimes(settings))


def file(
    session: Session,
    keystore: Keystore,
    context: PolicyContext,
    kind: RequestType,
    *,
    at: datetime,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    email: str | None = None,
    verified_by: VerifiedBy | None = VerifiedBy.OPERATOR,
    changes: dict[str, object] | None = None,
) -> RequestRecord:
    named = [(k, v) for k, v in ((NamedBy.USER_ID, user_id), (NamedBy.ANONYMOUS_ID, anonymous_id),
                                  (NamedBy.EMAIL, email)) if v]  # fmt: skip
    [(named_by, value)] = named
    return requests_service.file_request(
        session,
        keystore=keystore,
        policy=context,
        calendar=CALENDAR,
        kind=kind,
        named_by=named_by,
        value=value,
        verified_by=verified_by,
        key_id=KEY,
        at=at,
        actor="tests",
        changes=changes,
    )


def held(session: Session, keystore: Keystore, *, at: datetime, **traits: object) -> tuple[str, uuid.UUID]:
    """A person with a user id and these traits (demo catalog names: `country`, `first_name`)."""
    user = unique("user")
    subject = profiles_service.resolve(session, keystore=keystore, anonymous_id=None, user_id=user, at=at)
    if traits:
        profiles_service.apply_traits(
            session, keystore=keystore, catalog=DEMO, subject_id=subject.subject_id, traits=traits, at=at
        )
    session.flush()
    return user, subject.subject_id


def subjects(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Subject)) or 0)


@dataclass(frozen=True)
class Jobs:
    """A job context over a database and keystore of a test's own (jobs commit)."""

    context: JobContext
    policy: PolicyContext

    @property
    def database(self) -> Database:
        return self.context.database

    @property
    def keystore(self) -> Keystore:
        return self.context.keystore


def export_folder() -> PrivacySettings:
    """Privacy settings whose export packages go to a folder of their own (not beside a PostgreSQL
    test database's working directory)."""
    return PrivacySettings(export_dir=Path(tempfile.mkdtemp(prefix="tactful-exports-")))


def jobs(database: Database, keystore: Keystore, context: PolicyContext | None = None) -> Jobs:
    chosen = context or policy()
    settings = Settings(
        database_url=database.url, keystore_url=str(keystore.engine.url), privacy=export_folder()
    )
    return Jobs(
        JobContext(database=database, keystore=keystore, settings=settings, policy=lambda: chosen), chosen
    )
