"""Consent: the append-only ledger of each person's choices, and how it reaches the policy gate.

    banner / API ─┐                         (PUT /v1/consent, subject tokens for user ids)
    TC string ────┼─▶ choices ─▶ ledger ──fold──▶ ConsentState ─┐
    Sec-GPC ──────┤      (consent_events: append-only,          ├─▶ gatekeeper ─▶ policy gate
    event context ┘       audited, proof with every entry)      │   (+ profile facts, regimes)
                                                                │
    profile merge ─▶ merge_ledgers (the stricter state wins) ───┘
    a refusal ─▶ withdrawal: stored atoms no allowed purpose keeps are purged (same transaction)
    collection ─▶ storage.receive ─▶ intake: a batch's carried choices and GPC recorded, then one
                      │               gate answer per subject (gatekeeper's seam)
                      ▼
                  Decisions: per arriving atom, the purposes it may be stored for and the user
                  traits it may keep; newcomer: the same for someone never seen before

Pure parts: `fold` (ledger → state), `tcf` (TC strings), `choices` (what a request means as ledger
changes). Stored parts: `models`, `service`. Erasure keeps the ledger as proof, pseudonymised.
"""
