from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.crypto import Keystore
from tactful.profiles import service as profiles_service
from tactful.profiles.models import Trait
from tests.profiles.builders import T0, catalog, unique


def test_identifiers_are_encrypted_at_rest_and_read_back(session: Session, keystore: Keystore) -> None:
    subject_id = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=None, user_id=unique("user"), at=T0
    ).subject_id
    email = f"{unique('ada')}@example.com"
    result = profiles_service.apply_traits(
        session,
        keystore=keystore,
        catalog=catalog(),
        subject_id=subject_id,
        traits={"email": email, "first_name": "Ada", "phone": 5550100, "age_range": "25-34", "shoe": 42},
        at=T0,
    )
    assert set(result.encrypted) == {"traits.email", "traits.first_name", "traits.phone"}
    assert result.stored == ("traits.age_range",)
    assert result.ignored == ("shoe",)
    session.flush()
    table = Trait.__table__
    raw = session.execute(
        select(table.c.atom, table.c.value, table.c.value_enc).where(table.c.subject_id == subject_id)
    ).all()
    assert len(raw) == 4
    for atom, value, value_enc in raw:
        if atom == "traits.age_range":
            assert value_enc is None
            continue
        assert value is None
        assert value_enc is not None
        assert b"Ada" not in bytes(value_enc)
        assert email.encode() not in bytes(value_enc)
        assert b"5550100" not in bytes(value_enc)
    profile = profiles_service.get_profile(session, keystore=keystore, subject_id=subject_id)
    assert profile.traits == {
        "traits.age_range": "25-34",
        "traits.email": email,
        "traits.first_name": "Ada",
        "traits.phone": 5550100,
    }


def test_email_lookup_goes_through_the_blind_index_ignoring_case(
    session: Session, keystore: Keystore
) -> None:
    subject_id = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=unique("anon"), user_id=None, at=T0
    ).subject_id
    local = unique("grace")
    profiles_service.apply_traits(
        session,
        keystore=keystore,
        catalog=catalog(),
        subject_id=subject_id,
        traits={"email": f"  {local.upper()}@Example.COM "},
        at=T0,
    )
    for spelling in (f"{local}@example.com", f"{local.upper()}@EXAMPLE.COM", f" {local}@Example.com"):
        assert profiles_service.find_subject(session, keystore=keystore, email=spelling) == subject_id
    assert profiles_service.find_subject(session, keystore=keystore, email=f"{local}@example.org") is None


def test_email_index_follows_a_merge(session: Session, keystore: Keystore) -> None:
    anon, user = unique("anon"), unique("user")
    known = profiles_service.resolve(session, keystore=keystore, anonymous_id=None, user_id=user, at=T0)
    visitor = profiles_service.resolve(session, keystore=keystore, anonymous_id=anon, user_id=None, at=T0)
    email = f"{unique('lin')}@example.com"
    profiles_service.apply_traits(
        session,
        keystore=keystore,
        catalog=catalog(),
        subject_id=visitor.subject_id,
        traits={"email": email},
        at=T0,
    )
    profiles_service.resolve(session, keystore=keystore, anonymous_id=anon, user_id=user, at=T0)
    assert profiles_service.find_subject(session, keystore=keystore, email=email) == known.subject_id
    assert keystore.lookup_index(kind="email", value=email) == known.subject_id


def test_merge_keeps_the_newest_trait_and_reencrypts_for_the_survivor(
    session: Session, keystore: Keystore
) -> None:
    anon, user = unique("anon"), unique("user")
    known = profiles_service.resolve(session, keystore=keystore, anonymous_id=None, user_id=user, at=T0)
    visitor = profiles_service.resolve(session, keystore=keystore, anonymous_id=anon, user_id=None, at=T0)
    cat = catalog()
    profiles_service.apply_traits(
        session,
        keystore=keystore,
        catalog=cat,
        subject_id=known.subject_id,
        traits={"first_name": "Old", "age_range": "35-44", "loyalty_tier": "gold"},
        at=T0,
    )
    profiles_service.apply_traits(
        session,
        keystore=keystore,
        catalog=cat,
        subject_id=visitor.subject_id,
        traits={"first_name": "New", "age_range": "25-34"},
        at=T0 + timedelta(hours=1),
    )
    profiles_service.apply_traits(
        session,
        keystore=keystore,
        catalog=cat,
        subject_id=known.subject_id,
        traits={"age_range": "45-54"},
        at=T0 + timedelta(hours=2),
    )
    profiles_service.resolve(
        session, keystore=keystore, anonymous_id=anon, user_id=user, at=T0 + timedelta(hours=3)
    )
    profile = profiles_service.get_profile(session, keystore=keystore, subject_id=visitor.subject_id)
    assert profile.subject_id == known.subject_id
    assert profile.traits == {
        "traits.first_name": "New",
        "traits.age_range": "45-54",
        "traits.loyalty_tier": "gold",
    }
    assert profile.merged_from == 1
    assert session.get(Trait, (visitor.subject_id, "traits.first_name")) is None


def test_a_null_trait_removes_it(session: Session, keystore: Keystore) -> None:
    subject_id = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=None, user_id=unique("user"), at=T0
    ).subject_id
    cat = catalog()
    profiles_service.apply_traits(
        session, keystore=keystore, catalog=cat, subject_id=subject_id, traits={"age_range": "25-34"}, at=T0
    )
    result = profiles_service.apply_traits(
        session, keystore=keystore, catalog=cat, subject_id=subject_id, traits={"age_range": None}, at=T0
    )
    assert result.removed == ("traits.age_range",)
    assert profiles_service.get_profile(session, keystore=keystore, subject_id=subject_id).traits == {}


def test_traits_expire_after_their_retention(session: Session, keystore: Keystore) -> None:
    subject_id = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=None, user_id=unique("user"), at=T0
    ).subject_id
    profiles_service.apply_traits(
        session,
        keystore=keystore,
        catalog=catalog(),
        subject_id=subject_id,
        traits={"loyalty_tier": "gold", "age_range": "25-34"},  # retained 30 days and 365 days
        at=T0,
    )
    later = T0 + timedelta(days=31)
    profile = profiles_service.get_profile(session, keystore=keystore, subject_id=subject_id, at=later)
    assert profile.traits == {"traits.age_range": "25-34"}
    assert profiles_service.expire(session, at=later) >= 1
    assert session.get(Trait, (subject_id, "traits.loyalty_tier")) is None
    assert session.get(Trait, (subject_id, "traits.age_range")) is not None


def test_a_trait_kept_in_clear_holds_no_address_phone_or_card_number(
    session: Session, keystore: Keystore
) -> None:
    """A rectification writes traits without collection's filter: the table keeps no address, phone
    or card number outside the sealed identifiers, whatever the value's shape."""
    subject_id = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=None, user_id=unique("user"), at=T0
    ).subject_id
    email = f"{unique('ada')}@example.com"
    traits = {
        "email": email,
        "age_range": f"25-34, write to {email} or +46 70 123 45 67",
        "loyalty_tier": ["gold", {"card": "4111 1111 1111 1111"}, 4111111111111111],
    }
    profiles_service.apply_traits(
        session, keystore=keystore, catalog=catalog(), subject_id=subject_id, traits=traits, at=T0
    )
    profile = profiles_service.get_profile(session, keystore=keystore, subject_id=subject_id)
    assert profile.traits["traits.email"] == email
    assert profile.traits["traits.age_range"] == "25-34, write to [email] or [phone]"
    assert profile.traits["traits.loyalty_tier"] == ["gold", {"card": "[card]"}, 4111111111111111]
