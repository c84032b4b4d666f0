"""Rights: what a subject may ask of the engine, carried out over every store of their data.

    privacy request ──▶ registry.STORES (one explicit tuple: tables, keystore, Redis, files)
                           │
                           ├─ export_all ──▶ each store's export, keystore last ──▶ one document
                           └─ erase_all  ──▶ each store's erase,  keystore last ──▶ counts per store
                                              (destroying the key shreds every backup's copy)

A store of personal data that is not in `STORES` fails the test suite (tests/rights/test_registry.py).

    POST /v1/privacy/requests | tactful privacy ...
        ▼ requests.file_request: due dates (due), repetition flags, the identifier as a keyed hash
    privacy_requests ──▶ jobs.JobRunner (a lease; one commit per step) ──▶ steps.PLANS[type]
        opt-out, limit, objection, restriction ─▶ consent ledger flags
        access, portability ─▶ export_all      rectification ─▶ profiles' traits
        erasure ─▶ suppress (keystore erasure log) ─▶ erase_stores ─▶ unlearn (unlearning.py)
                ─▶ destroy_keys ─▶ notify_recipients (recipients.py; also rectification, restriction)
        ──▶ receipt (from the recorded step results)

    keystore erasure log ──▶ collection: replays of earlier messages suppressed
                         └─▶ reapply.py: at every start and `tactful privacy reapply`, a restored
                             backup's erased subjects erased again

    POST /v1/decisions/{id}/review ──▶ reviews.file_review (a significant decision, its person's)
    decision_reviews ──▶ the admin queue (overdue first) ──▶ reviews.answer_review (upheld | overturned)

    schedule.ScheduleWorker (daily, a lease per task) | tactful retention run [--dry-run]
        ▼ retention.run_retention: each store's expired rows, per category ─▶ delete, or
          anonymise.anonymised (the catalog's `expiry`) ─▶ SweepReport ─▶ one `retention.swept` entry
    schedule.ScheduleWorker (daily, and after an audience changed) | tactful audiences count
        ▼ decide.audience_count: every 1:many audience over stored atoms, over every stored profile

    access, portability: export_all's document ──▶ package.build (JSON, CSV, schema.json, README.txt;
        portability without inferences) ──▶ exports.store (sealed in the export folder, its key under
        the subject's) ──▶ download_url /v1/privacy/exports/{token} (api.exports) ──▶ a use per
        completed transfer; gone at expiry (exports.sweep), after the last use, or with the person
"""
