from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tactful.crypto import Keystore
from tactful.errors import NotFound
from tactful.profiles import service as profiles_service
from tactful.profiles.models import Computed, Identity, Subject, Trait
from tests.profiles.builders import T0, catalog, track, unique


def _rows(session: Session, subject_id: object) -> int:
    return sum(
        session.scalar(select(func.count()).select_from(table).where(table.subject_id == subject_id)) or 0
        for table in (Subject, Identity, Trait, Computed)
    )


def test_export_then_erase_round_trip(session: Session, keystore: Keystore) -> None:
    anon, user, email = unique("anon"), unique("user"), f"{unique('lin')}@example.com"
    subject_id = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=anon, user_id=user, at=T0
    ).subject_id
    cat = catalog()
    profiles_service.apply_traits(
        session,
        keystore=keystore,
        catalog=cat,
        subject_id=subject_id,
        traits={"email": email, "age_range": "25-34"},
        at=T0,
    )
    profiles_service.record_event(
        session, catalog=cat, subject_id=subject_id, message=track("Order Completed", total=20.0), at=T0
    )
    other = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=unique("anon"), user_id=None, at=T0
    )

    exported = profiles_service.export_subject(session, keystore=keystore, subject_id=subject_id)
    assert exported["subject_id"] == str(subject_id)
    assert exported["traits"] == {"traits.age_range": "25-34", "traits.email": email}
    assert sorted((i["kind"], i["value"]) for i in exported["identities"]) == [  # type: ignore[attr-defined]
        ("anonymous_id", anon),
        ("user_id", user),
    ]
    assert exported["computed"]["computed.lifetime_value"] == 20.0  # type: ignore[index]

    removed = profiles_service.erase_subject(session, keystore=keystore, subject_id=subject_id)
    assert removed == 1 + 2 + 2 + 3  # subject, identities, traits, computed atoms
    assert _rows(session, subject_id) == 0
    assert _rows(session, other.subject_id) == 2  # nobody else's rows: a subject and its identity
    assert profiles_service.export_subject(session, keystore=keystore, subject_id=subject_id) == {}
    assert profiles_service.find_subject(session, keystore=keystore, user_id=user) is None
    with pytest.raises(NotFound):
        profiles_service.get_profile(session, keystore=keystore, subject_id=subject_id)
    # The same identifiers arriving later make a new, empty subject.
    again = profiles_service.resolve(session, keystore=keystore, anonymous_id=anon, user_id=user, at=T0)
    assert again.created
    assert again.subject_id != subject_id


def test_a_tombstone_exports_only_its_merge(session: Session, keystore: Keystore) -> None:
    anon, user = unique("anon"), unique("user")
    known = profiles_service.resolve(session, keystore=keystore, anonymous_id=None, user_id=user, at=T0)
    visitor = profiles_service.resolve(session, keystore=keystore, anonymous_id=anon, user_id=None, at=T0)
    profiles_service.resolve(session, keystore=keystore, anonymous_id=anon, user_id=user, at=T0)
    exported = profiles_service.export_subject(session, keystore=keystore, subject_id=visitor.subject_id)
    assert exported["merged_into"] == str(known.subject_id)
    assert "identities" not in exported
