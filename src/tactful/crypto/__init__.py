"""Per-subject data keys, in a keystore database kept apart from the main one.

    TACTFUL_SECRET_KEY ──HKDF──▶ key-encryption key (KEK), never stored
                                   │ wraps (AES-GCM)
            keystore database ─────┼── subject_keys: one data key + one salt per subject
                                   ├── system_keys:  the blind-index key, the audit chain's key
                                   │                 (never destroyed) and the quarantine's keys
                                   ├── blind_index:  keyed digests of e-mail addresses → subject
                                   └── erased_identifiers, erased_subjects: the erasure log

A subject's identifiers are encrypted with its data key; its audit references are keyed with its
salt. Erasure deletes the subject's row here, so a copy of the main database, even with the KEK,
can no longer decrypt or link anything (DESIGN §5, invariants 11 and 13). Backups of the main
database leave this database out.

    sealing.py      the tables and the cipher (AES-GCM, versioned tokens; the KEK from HKDF)
    keystore.py     Keystore, what callers use: a facade over the modules below, and a request's
                    cache of unwrapped keys (`cached()`)
    material.py     subject keys and salts wrapped under the KEK: read, create, rotate
    blind_index.py  keyed digests of identifiers → subject: put, look up, reassign
    held.py         a request's held writes (new keys, index entries), written in one keystore
                    transaction at the main session's commit or early on a worker thread
    commit.py       the hooks that tie held writes to that commit, on the holding session only
    erasure_log.py  the erasure log: keyed digests of erased identifiers (suppression of replays)
                    and erased subject ids (re-applied after a restore)
    system.py       SystemKeys (`Keystore.system`): the engine's own keys: blind index, audit chain
                    (with its anchor), quarantine

    Keystore.encrypt/decrypt/subject_ref ──▶ view cache ──▶ held (Unwritten) ──▶ material ──▶ database
    Keystore.new_subjects/put_indexes(before_commit_of=session) ──▶ held ──commit.py──▶ one transaction
"""

from tactful.crypto.keystore import Keystore
from tactful.crypto.sealing import derive_kek, keystore_metadata
from tactful.crypto.system import ChainKey

__all__ = ["ChainKey", "Keystore", "derive_kek", "keystore_metadata"]
