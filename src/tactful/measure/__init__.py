"""Measurement: what followed the decisions (DESIGN §6: exposures, outcomes, attribution, lift).

    collect (track event with properties.decision_id) ──outcome hook, wired by main──▶
        outcomes.record: linked to a decision of the same subject, or pending, or unattributed
    decide (the log's writer) ──landed hook, wired by main──▶ outcomes.landed: pending ones settle
    retention run ──▶ outcomes.sweep (pending past their wait) and outcomes.expire
    /metrics ──▶ outcomes.totals: received = linked + Σ unattributed + pending
    rights ──▶ outcomes.export_subject / erase_subject

Outcomes are what learning will read (`learnable`); exposures, lift and the rest are not built yet.
"""
