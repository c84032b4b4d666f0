from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.audit.models import AuditEntry
from tactful.crypto import Keystore
from tactful.errors import InvalidInput, KeyDestroyed
from tactful.profiles import service as profiles_service
from tactful.profiles.merge import identity_context
from tactful.profiles.models import Identity, Subject
from tactful.profiles.schemas import IdentityKind, Merge
from tests.profiles.builders import T0, unique


def test_new_identifiers_create_one_subject_and_find_it_again(session: Session, keystore: Keystore) -> None:
    anon, user = unique("anon"), unique("user")
    first = profiles_service.resolve(session, keystore=keystore, anonymous_id=anon, user_id=user, at=T0)
    assert first.created
    assert first.merges == ()
    again = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=anon, user_id=None, at=T0 + timedelta(minutes=5)
    )
    assert again.subject_id == first.subject_id
    assert not again.created
    by_user = profiles_service.find_subject(session, keystore=keystore, user_id=user)
    assert by_user == first.subject_id
    subject = session.get(Subject, first.subject_id)
    assert subject is not None
    assert subject.last_seen_at == T0 + timedelta(minutes=5)


def test_identities_are_stored_as_digests_and_encrypted_values(session: Session, keystore: Keystore) -> None:
    user = unique("user")
    resolution = profiles_service.resolve(session, keystore=keystore, anonymous_id=None, user_id=user, at=T0)
    row = session.scalars(select(Identity).where(Identity.subject_id == resolution.subject_id)).one()
    assert row.digest == keystore.digest(IdentityKind.USER_ID, user)
    assert user.encode() not in row.value_enc
    context = identity_context(row.kind)
    assert keystore.decrypt(resolution.subject_id, row.value_enc, context=context) == user


def test_anonymous_visitor_who_logs_in_gets_the_user_id_attached(
    session: Session, keystore: Keystore
) -> None:
    anon, user = unique("anon"), unique("user")
    visitor = profiles_service.resolve(session, keystore=keystore, anonymous_id=anon, user_id=None, at=T0)
    login = profiles_service.resolve(session, keystore=keystore, anonymous_id=anon, user_id=user, at=T0)
    assert login.subject_id == visitor.subject_id
    assert login.merges == ()
    assert not login.created


def test_anonymous_profile_merges_into_the_known_user(session: Session, keystore: Keystore) -> None:
    anon, user = unique("anon"), unique("user")
    known = profiles_service.resolve(session, keystore=keystore, anonymous_id=None, user_id=user, at=T0)
    visitor = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=anon, user_id=None, at=T0 + timedelta(hours=1)
    )
    login = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=anon, user_id=user, at=T0 + timedelta(hours=2)
    )
    assert login.subject_id == known.subject_id
    assert login.merges == (Merge(source=visitor.subject_id, target=known.subject_id),)
    tombstone = session.get(Subject, visitor.subject_id)
    assert tombstone is not None
    assert tombstone.merged_into == known.subject_id
    assert profiles_service.find_subject(session, keystore=keystore, anonymous_id=anon) == known.subject_id
    # The moved identity is re-encrypted under the survivor's key.
    row = session.get(Identity, keystore.digest(IdentityKind.ANONYMOUS_ID, anon))
    assert row is not None
    assert row.subject_id == known.subject_id
    assert keystore.decrypt(known.subject_id, row.value_enc, context=identity_context(row.kind)) == anon
    with pytest.raises(KeyDestroyed):
        keystore.decrypt(visitor.subject_id, row.value_enc, context=identity_context(row.kind))


def test_merge_is_audited_under_pseudonyms_only(session: Session, keystore: Keystore) -> None:
    anon, user = unique("anon"), unique("user")
    known = profiles_service.resolve(session, keystore=keystore, anonymous_id=None, user_id=user, at=T0)
    visitor = profiles_service.resolve(session, keystore=keystore, anonymous_id=anon, user_id=None, at=T0)
    profiles_service.resolve(session, keystore=keystore, anonymous_id=anon, user_id=user, at=T0)
    entry = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "profiles.merged",
            AuditEntry.subject_ref == keystore.subject_ref(known.subject_id),
        )
    ).one()
    assert entry.actor == "collect"
    assert entry.details == {"merged_ref": keystore.subject_ref(visitor.subject_id)}
    assert str(visitor.subject_id) not in str(entry.details)


def test_alias_merges_previous_id_into_the_user(session: Session, keystore: Keystore) -> None:
    previous, user = unique("anon"), unique("user")
    old = profiles_service.resolve(session, keystore=keystore, anonymous_id=previous, user_id=None, at=T0)
    new = profiles_service.resolve(session, keystore=keystore, anonymous_id=None, user_id=user, at=T0)
    alias = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=None, user_id=user, previous_id=previous, at=T0
    )
    assert alias.subject_id == new.subject_id
    assert alias.merges == (Merge(source=old.subject_id, target=new.subject_id),)


def test_alias_of_an_unknown_previous_id_registers_it(session: Session, keystore: Keystore) -> None:
    previous, user = unique("anon"), unique("user")
    alias = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=None, user_id=user, previous_id=previous, at=T0
    )
    assert (
        profiles_service.find_subject(session, keystore=keystore, anonymous_id=previous) == alias.subject_id
    )


def test_alias_between_two_logins_keeps_the_older_subject(session: Session, keystore: Keystore) -> None:
    old_login, new_login = unique("user"), unique("user")
    older = profiles_service.resolve(session, keystore=keystore, anonymous_id=None, user_id=old_login, at=T0)
    newer = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=None, user_id=new_login, at=T0 + timedelta(days=1)
    )
    alias = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=None, user_id=new_login, previous_id=old_login, at=T0
    )
    assert alias.subject_id == older.subject_id
    assert alias.merges == (Merge(source=newer.subject_id, target=older.subject_id),)
    assert profiles_service.find_subject(session, keystore=keystore, user_id=new_login) == older.subject_id


def test_a_device_shared_by_two_logins_does_not_merge_them(session: Session, keystore: Keystore) -> None:
    device, alice, bob = unique("anon"), unique("user"), unique("user")
    first = profiles_service.resolve(session, keystore=keystore, anonymous_id=device, user_id=alice, at=T0)
    second = profiles_service.resolve(session, keystore=keystore, anonymous_id=device, user_id=bob, at=T0)
    assert second.subject_id != first.subject_id
    assert second.created
    assert second.merges == ()
    # The device now belongs to the newest login; the first person keeps their own profile.
    assert profiles_service.find_subject(session, keystore=keystore, anonymous_id=device) == second.subject_id
    assert profiles_service.find_subject(session, keystore=keystore, user_id=alice) == first.subject_id


def test_three_way_merge_chain_is_followed_from_every_identifier(
    session: Session, keystore: Keystore
) -> None:
    a, b, c, user = unique("anon"), unique("anon"), unique("anon"), unique("user")
    sa = profiles_service.resolve(session, keystore=keystore, anonymous_id=a, user_id=None, at=T0)
    sb = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=b, user_id=None, at=T0 + timedelta(minutes=1)
    )
    sc = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=c, user_id=user, at=T0 + timedelta(minutes=2)
    )
    # b is an alias of a: the newer anonymous profile merges into the older one.
    ab = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=b, user_id=None, previous_id=a, at=T0
    )
    assert ab.merges == (Merge(source=sb.subject_id, target=sa.subject_id),)
    # Then a logs in as the user of c: the anonymous profile (with b's tombstone) merges into c.
    final = profiles_service.resolve(session, keystore=keystore, anonymous_id=a, user_id=user, at=T0)
    assert final.subject_id == sc.subject_id
    assert final.merges == (Merge(source=sa.subject_id, target=sc.subject_id),)
    for anon in (a, b, c):
        assert profiles_service.find_subject(session, keystore=keystore, anonymous_id=anon) == sc.subject_id
    # Tombstones point straight at the survivor, and the survivor knows its whole family.
    for tombstone in (sa.subject_id, sb.subject_id):
        assert profiles_service.canonical(session, tombstone) == sc.subject_id
        row = session.get(Subject, tombstone)
        assert row is not None
        assert row.merged_into == sc.subject_id
    assert set(profiles_service.family(session, sc.subject_id)) == {
        sa.subject_id,
        sb.subject_id,
        sc.subject_id,
    }
    assert profiles_service.family(session, sb.subject_id)[0] == sc.subject_id


def test_one_call_can_merge_three_profiles(session: Session, keystore: Keystore) -> None:
    anon, previous, user = unique("anon"), unique("anon"), unique("user")
    s_user = profiles_service.resolve(session, keystore=keystore, anonymous_id=None, user_id=user, at=T0)
    s_anon = profiles_service.resolve(session, keystore=keystore, anonymous_id=anon, user_id=None, at=T0)
    s_prev = profiles_service.resolve(session, keystore=keystore, anonymous_id=previous, user_id=None, at=T0)
    result = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=anon, user_id=user, previous_id=previous, at=T0
    )
    assert result.subject_id == s_user.subject_id
    assert {m.source for m in result.merges} == {s_anon.subject_id, s_prev.subject_id}
    assert all(m.target == s_user.subject_id for m in result.merges)


def test_resolve_needs_an_identifier(session: Session, keystore: Keystore) -> None:
    with pytest.raises(InvalidInput):
        profiles_service.resolve(session, keystore=keystore, anonymous_id=None, user_id="", at=T0)


def test_unknown_identifiers_find_nothing(session: Session, keystore: Keystore) -> None:
    assert profiles_service.find_subject(session, keystore=keystore, user_id=unique("user")) is None
    assert (
        profiles_service.find_subject(session, keystore=keystore, email=f"{unique('x')}@example.com") is None
    )
    assert profiles_service.find_subject(session, keystore=keystore) is None
