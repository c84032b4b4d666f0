"""Rights: what a subject may ask of the engine, carried out over every store of their data.

    privacy request ──▶ registry.STORES (one explicit tuple: tables, keystore, Redis, files)
                           │
                           ├─ export_all ──▶ each store's export, keystore last ──▶ one document
                           └─ erase_all  ──▶ each store's erase,  keystore last ──▶ counts per store
                                              (destroying the key shreds every backup's copy)

A store of personal data that is not in `STORES` fails the test suite (tests/rights/test_registry.py).
"""
