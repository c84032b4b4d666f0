"""Profiles against the real demo catalog: the atoms profiles maintain are the ones it declares."""

from __future__ import annotations

from importlib import resources

import pytest
from sqlalchemy.orm import Session

from tactful.catalog.loader import load_catalog
from tactful.catalog.model import Catalog
from tactful.crypto import Keystore
from tactful.profiles import computed
from tactful.profiles import service as profiles_service
from tests.profiles.builders import T0, track, unique


@pytest.fixture(scope="module")
def demo() -> Catalog:
    return load_catalog(str(resources.files("tactful.catalog") / "data" / "demo_shop.yaml"))


def test_the_demo_catalog_declares_every_computed_atom(demo: Catalog) -> None:
    for name in computed.AGGREGATES:
        assert name in demo.atoms, f"profiles maintains {name}, which the demo catalog does not declare"
    # Profiles may count more events than a catalog names as inputs, never fewer.
    assert demo.input_events(computed.FAVORITE_CATEGORY) <= computed.CATEGORY_EVENTS


def test_identify_and_order_with_the_demo_catalog(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    subject_id = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=None, user_id=unique("user"), at=T0
    ).subject_id
    email = f"{unique('mae')}@example.org"
    result = profiles_service.apply_traits(
        session,
        keystore=keystore,
        catalog=demo,
        subject_id=subject_id,
        traits={"email": email, "first_name": "Mae", "loyalty_tier": "silver", "favourite_colour": "teal"},
        at=T0,
    )
    assert set(result.encrypted) == {"traits.email", "traits.first_name"}
    assert result.stored == ("traits.loyalty_tier",)
    assert result.ignored == ("favourite_colour",)
    order = track("Order Completed", revenue=42.5, products=[{"category": "outdoor"}, {"category": "books"}])
    profiles_service.record_event(session, catalog=demo, subject_id=subject_id, message=order, at=T0)
    profile = profiles_service.get_profile(session, keystore=keystore, subject_id=subject_id)
    assert profile.computed[computed.LIFETIME_VALUE] == 42.5
    assert profile.computed[computed.FAVORITE_CATEGORY] == "books"
    assert profiles_service.find_subject(session, keystore=keystore, email=email.upper()) == subject_id
