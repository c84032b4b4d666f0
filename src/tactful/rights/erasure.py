"""What an erasure needs beyond the store walk: the identifiers it suppresses and the atoms whose
recipients it tells, read while the subject's data and key still exist (the steps that use them are
`steps.Suppress` and `steps.NotifyRecipients`).

    identifiers_of  user ids, anonymous ids and e-mail addresses, decrypted from identities and
                    traits, for the keystore's erasure log (which keeps only their HMACs)
    atoms_held      trait, computed and event atoms: the catalog names their recipients
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from tactful.catalog.model import Catalog
from tactful.collect import service as collect_service
from tactful.crypto.erasure_log import EMAIL, Identifier
from tactful.profiles import service as profiles_service
from tactful.profiles.traits import is_email, read_traits
from tactful.rights.registry import RightsContext


class StepPending(Exception):
    """A step that must wait (a model still unlearning): the job stops here without failing, keeps
    its attempts, and runs the step again at a later round."""


def identifiers_of(rights: RightsContext, catalog: Catalog, ids: Sequence[uuid.UUID]) -> list[Identifier]:
    """Every identifier the subjects are known by: identities and e-mail traits, decrypted."""
    session, keystore = rights.session, rights.keystore
    found: list[Identifier] = []
    for sid in ids:
        if not keystore.has_subject(sid):
            continue  # nothing sealed for it can be read any more, so nothing to match either
        identities = profiles_service.identities(session, keystore=keystore, subject_id=sid)
        found.extend((str(i.kind), i.value) for i in identities)
        for name, value in read_traits(session, keystore=keystore, subject_id=sid).items():
            atom = catalog.atoms.get(name)
            if atom is not None and is_email(atom) and isinstance(value, str):
                found.append((EMAIL, value))
    return list(dict.fromkeys(found))


def atoms_held(rights: RightsContext, ids: Sequence[uuid.UUID]) -> set[str]:
    """The trait, computed and event atoms stored for the subjects."""
    held: set[str] = set()
    for sid in ids:
        held |= profiles_service.stored_atoms(rights.session, subject_id=sid)
        held |= collect_service.event_atoms(rights.session, subject_id=sid)
    return held
