"""The policy gate: pure rules that say what may be read about a subject, and why nothing more.

    compile_gate (once per catalog version and set of regimes) ─▶ Gate, held by the application:
    catalog ──────────── build_index ─── atom groups as bit masks ──────────────────┐
    regimes (gdpr, ccpa, custom) ── build_table (each set that can apply) ──────────┤
    consent ledger ─fold─▶ ConsentState ──snapshot(at=T) ───────────────────────────┤
    SubjectFacts (age, objection, restriction, limits) ─────────────────────────────┤
    RequestSignals (GPC, coarse context) ───────────────────────────────────────────┤
                                                                                    ▼
                        Gate.evaluate: one row of the table, the caps, a few mask operations
                                                                                    │
    Allowance ◀─────────────────────────────────────────────────────────────────────┘
        ceiling, decide/learn atoms, a verdict per purpose; the reason for each refused atom
        and the atoms of each purpose are worked out when asked (reasons.py: atom by atom).
        Verdicts and reasons are codes with parameters (verdicts.py); the words are made at the
        edge from one table (wording.py), in English or Swedish.
        │
        │ gate.build_view(allowance, ProfileSnapshot)
        ▼
    SubjectView: the only thing decisions and model updates ever read

Everything here is plain data in, plain data out, with time passed in: no database, no web, no
clock. Levels are cumulative (DESIGN §2): the ceiling is the highest level whose purposes, and the
purposes of every level below it, all hold under every applicable regime. The gate keeps nothing
between calls: what it precomputes depends on the catalog or the regimes alone, and lives in the
compiled `Gate`, never in a module.
"""

from tactful.policy.allowance import Allowance, AtomNotAllowed, SubjectView
from tactful.policy.compiled import Gate, catalog_version, compile_gate, evaluate
from tactful.policy.gate import build_view
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
from tactful.policy.verdicts import Code, Reason, Verdict

__all__ = [
    "AGE_ATOMS",
    "CCPA",
    "GDPR",
    "SIGNIFICANT_DECISIONS",
    "SPECIAL_FEATURE_1",
    "AgePolicy",
    "Allowance",
    "AtomNotAllowed",
    "Code",
    "ConsentRecord",
    "ConsentSource",
    "ConsentState",
    "ConsentStatus",
    "Gate",
    "LegalBasis",
    "ProfileSnapshot",
    "PurposeState",
    "Reason",
    "Regime",
    "RequestSignals",
    "SubjectFacts",
    "SubjectView",
    "Verdict",
    "applicable_regimes",
    "build_view",
    "catalog_version",
    "compile_gate",
    "evaluate",
    "facts_from_profile",
    "lifts_age_protection",
    "regime_from_config",
]
