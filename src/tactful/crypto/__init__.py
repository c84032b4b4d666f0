"""Per-subject data keys, in a keystore database kept apart from the main one.

    TACTFUL_SECRET_KEY ──HKDF──▶ key-encryption key (KEK), never stored
                                   │ wraps (AES-GCM)
            keystore database ─────┼── subject_keys: one data key + one salt per subject
                                   ├── system_keys:  the blind-index key
                                   └── blind_index:  keyed digests of e-mail addresses → subject

A subject's identifiers are encrypted with its data key; its audit references are keyed with its
salt. Erasure deletes the subject's row here, so a copy of the main database, even with the KEK,
can no longer decrypt or link anything (DESIGN §5, invariants 11 and 13). Backups of the main
database leave this database out.

    sealing.py    the tables and the cipher (AES-GCM, versioned tokens; the KEK from HKDF)
    keystore.py   Keystore: subject keys, salts, digests, the blind index, erasure, rotation, and a
                  request's held writes
"""

from tactful.crypto.keystore import Keystore
from tactful.crypto.sealing import derive_kek, keystore_metadata

__all__ = ["Keystore", "derive_kek", "keystore_metadata"]
