"""The policy gate: pure rules that say what may be read about a subject, and why nothing more.

    catalog ─────────────┐  (grouped once per catalog object: index.py)
    consent ledger ─fold─▶ ConsentState ──snapshot(at=T)──┐
    regimes (gdpr, ccpa, custom) ─────────────────────────┤
    SubjectFacts (age, objection, restriction, limits) ───┤
    RequestSignals (GPC, coarse context) ─────────────────┤
                                                          ▼
                                     gate.evaluate ──▶ Allowance: ceiling, decide/learn atoms,
                                                          │        verdict per purpose, a reason
                                                          │        for every refusal
                          ProfileSnapshot ──gate.build_view┘
                                                          ▼
                                                     SubjectView: the only thing decisions and
                                                                  model updates ever read

Everything here is plain data in, plain data out, with time passed in: no database, no web, no
clock. Levels are cumulative (DESIGN §2): the ceiling is the highest level whose purposes, and the
purposes of every level below it, all hold under every applicable regime.
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
    "regime_from_config",
]
