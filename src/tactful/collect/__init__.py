"""Segment-compatible collection: every received event is stored, deduplicated, quarantined or
suppressed, and counted (DESIGN invariant 10).

    request body ─ limits: size cap, gzip cap, strict JSON ─ message: envelope → messages
        │                                                        (batch context, sentAt, writeKey)
        ▼
    validate (pure)  ── Rejection(reason) ─────────────────────────────▶ quarantine (raw, escaped)
        │ ValidEvent (UTC timestamps, skew-corrected)                         ▲
        ▼                                                                     │
    dedup: keyed digest of (write key, messageId) in `message_ids`            │
        ├─ same content ─────────────▶ duplicate                              │
        ├─ other content ────────────────────────────── duplicate_conflict ───┘
        ├─ erased subject ───────────▶ suppressed
        ▼ new
    profiles.resolve ─ merges ─▶ move our rows (events, quarantine, message_ids) to the survivor
        ▼
    catalog.filter_message ─ dropped fields counted ─▶ profiles.apply_traits / record_event
        ▼
    events (append-only)          ingest_counters, dropped_fields: same transaction

`service.ingest` is the in-process entry point; `tactful.api.collect` is its HTTP face.
"""
