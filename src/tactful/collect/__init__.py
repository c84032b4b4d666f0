"""Segment-compatible collection: every received event is stored, deduplicated, quarantined or
suppressed, and counted (DESIGN invariant 10).

    request body ─ limits: size cap, gzip cap, strict JSON ─ message: envelope → messages
        │                                                        (batch context, sentAt, writeKey)
        ▼
    validate (pure)  ── Rejection(reason) ─────────────────────────────▶ quarantine (minimised, then
        │ ValidEvent (UTC timestamps, skew-corrected)                    ▲ sealed: subject's key, else
        ▼                                                                │ the day's key; 30 days)
    dedup: keyed digest of (write key, messageId) in `message_ids`       │
        ├─ same content ─────────────▶ duplicate                         │
        ├─ other content ────────────────────────────── duplicate_conflict
        ├─ erased subject ───────────▶ suppressed
        ▼ new
    profiles.resolve_many, once for the request ─ merges ─▶ move our rows, then consent's ledgers
        ▼
    purposes: which atom each event is; consent.storage records the consent events carry (and
        │     GPC), then answers per event the purposes it may serve at receipt
        │     ─ undeclared event ─▶ dropped (`undeclared_event`); none ─▶ suppressed (`no_purpose`)
        ▼
    catalog.filter_message ─ dropped fields counted, under plausible names only
        ▼
    profiles.apply_traits_many, profiles.record_events: once for the request
        ▼
    events (append-only)          ingest_counters, dropped_fields: same transaction
        ▼ committed
    realtime.Behaviour.feed ─ the session counters (1:some): merges, then what each subject's
                              storage Allowance keeps for personalization.behavioral

`service.ingest` is the in-process entry point, under the deployment's limits and policy context
(whose catalog filters); `tactful.api.collect` is its HTTP face.
"""
