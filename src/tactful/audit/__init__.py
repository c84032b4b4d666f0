"""The audit log: an append-only, hash-chained record of what the engine and its operators did.

    service.append(action, actor, at, subject_id?, details?)
        │  details: flat scalars only (no nested data, so no personal data rides along)
        │  subject_id ──keystore.subject_ref──▶ keyed hash under the subject's own salt
        ▼
    lock the head (pg_advisory_xact_lock on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises)
        ▼
    audit_log row n:  seq n · at · actor · action · subject_ref · details · prev_hash = hash(n-1)
                      hash = HMAC-SHA256(chain key, canonical JSON of those fields)
                      (the chain key: in the keystore, wrapped by the KEK, never destroyed; entries
                      written before it existed keep their plain SHA-256, up to the anchor sealed
                      with the key)
        ▼
    verification.verify() walks the chain in sequence order and names the first entry that was
    edited, deleted or reordered (DESIGN invariant 13), or a log cut short of its anchor or of a
    head recorded elsewhere (`expect_head`)

The table deliberately has no `subject_id` column: entries are pseudonymised. Erasure destroys the
subject's salt in the keystore, after which no `subject_ref` can be recomputed or linked back, while
the chain itself stays verifiable. A hash chain cannot reveal that its newest entries were cut off:
its head (`tactful audit verify`, `GET /v1/admin/audit/head`) is what an operator copies elsewhere,
and passes back as the expected head.
"""
