"""The keystore's tables and its one cipher: AES-GCM with a versioned token, and the key-encryption
key derived from the configured secret (HKDF-SHA256)."""

from __future__ import annotations

import hashlib
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Column, LargeBinary, MetaData, String, Table
from sqlalchemy.types import Uuid

from tactful.db import UTCDateTime

VERSION = b"\x01"
NONCE = 12
KEY = 32
"""Bytes in a data key, a salt and the KEK."""

keystore_metadata = MetaData()

subject_keys = Table(
    "subject_keys",
    keystore_metadata,
    Column("subject_id", Uuid(), primary_key=True),
    Column("wrapped", LargeBinary, nullable=False),
    Column("kek_id", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
system_keys = Table(
    "system_keys",
    keystore_metadata,
    Column("name", String(64), primary_key=True),
    Column("wrapped", LargeBinary, nullable=False),
    Column("kek_id", String(16), nullable=False),
)
blind_index = Table(
    "blind_index",
    keystore_metadata,
    Column("digest", String(80), primary_key=True),
    Column("subject_id", Uuid(), nullable=False, index=True),
)


def derive_kek(secret: str) -> bytes:
    """The key-encryption key: HKDF-SHA256 over the configured secret."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY, salt=b"tactful-kek-v1", info=b"kek").derive(
        secret.encode()
    )


def kek_fingerprint(kek: bytes) -> str:
    return hashlib.sha256(b"kek-id" + kek).hexdigest()[:16]


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE)
    return VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, token: bytes, aad: bytes) -> bytes:
    if token[:1] != VERSION or len(token) < 1 + NONCE + 16:
        raise ValueError("not a Tactful ciphertext")
    return AESGCM(key).decrypt(token[1 : 1 + NONCE], token[1 + NONCE :], aad)
