"""API keys: issuing, listing, revoking and checking the keys that callers present.

    create_key ──▶ tfk_<scope>_<key id>_<32 random bytes, base64url>   shown once
                     │
                     └─ SHA-256 ──▶ api_keys.secret_hash               all that is stored
    authenticate(token)
        parse ─▶ primary-key lookup by key id ─▶ constant-time hash comparison ─▶ not revoked?
        └─▶ Principal(key_id, scope, name), or NotAuthenticated with one message for every failure

Scopes nest: write ⊂ server ⊂ admin (DESIGN §4). Each request is checked against the database, so
a revocation holds on every process at once. Creation and revocation go to the audit log with the
key id and scope, never the secret. The HTTP dependencies that read keys live in `tactful.api.deps`.
"""
