"""The policy gate: pure rules that say what may be read about a subject, and why nothing more.

    catalog ──────────── index_of (once per catalog) ─── atom groups as bit masks ──┐
    regimes (gdpr, ccpa, custom) ── table_of (once per set) ── purpose table ───────┤
    consent ledger ─fold─▶ ConsentState ──snapshot(at=T) ───────────────────────────┤
    SubjectFacts (age, objection, restriction, limits) ─────────────────────────────┤
    RequestSignals (GPC, coarse context) ───────────────────────────────────────────┤
                                                                                    ▼
                        gate.evaluate: one row of the table, the caps, a few mask operations
                                                                                    │
    Allowance ◀─────────────────────────────────────────────────────────────────────┘
        ceiling, decide/learn atoms, a verdict per purpose; the reason for each refused atom
        and the atoms of each purpose are worked out when asked (reasons.py: atom by atom)
        │
        │ gate.build_view(allowance, ProfileSnapshot)
        ▼
    SubjectView: the only thing decisions and model updates ever read

Everything here is plain data in, plain data out, with time passed in: no database, no web, no
clock. Levels are cumulative (DESIGN §2): the ceiling is the highest level whose purposes, and the
purposes of every level below it, all hold under every applicable regime. The gate keeps nothing
between calls that depends on a subject: what it precomputes depends on the catalog or the regimes
alone.
"""

from tactful.policy.allowance import Allowance, AtomNotAllowed, SubjectView, Verdict
from tactful.policy.gate import build_view, evaluate
from tactful.policy.inputs import (
    AGE_ATOMS,
    AgePolicy,
    ProfileSnapshot,
    RequestSignals,
    SubjectFacts,
    facts_from_profile,
    lifts_age_protection,
)
from tactful.policy.regimes import (
    CCPA,
    GDPR,
    LegalBasis,
    Regime,
    applicable_regimes,
    regime_from_config,
)
from tactful.policy.state import (
    SIGNIFICANT_DECISIONS,
    SPECIAL_FEATURE_1,
    ConsentRecord,
    ConsentSource,
    ConsentState,
    ConsentStatus,
    PurposeState,
)

__all__ = [
    "AGE_ATOMS",
    "CCPA",
    "GDPR",
    "SIGNIFICANT_DECISIONS",
    "SPECIAL_FEATURE_1",
    "AgePolicy",
    "Allowance",
    "AtomNotAllowed",
    "ConsentRecord",
    "ConsentSource",
    "ConsentState",
    "ConsentStatus",
    "LegalBasis",
    "ProfileSnapshot",
    "PurposeState",
    "Regime",
    "RequestSignals",
    "SubjectFacts",
    "SubjectView",
    "Verdict",
    "applicable_regimes",
    "build_view",
    "evaluate",
    "facts_from_profile",
    "lifts_age_protection",
    "regime_from_config",
]
