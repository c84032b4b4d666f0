"""What the gate says, as codes and parameters: never sentences.

A `Reason` is a `Code` and its parameters (the purpose, the regime, the atom, the age limit...);
a `Verdict` is a purpose's answer: allowed or not, its reason, the legal basis it rests on and
whether it holds for the request's context only. Code branches on codes; the words are made at the
edge from one table (`wording.py`), in the reader's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

Params = tuple[tuple[str, str], ...]
"""A reason's parameters as (name, value) pairs sorted by name: immutable, hashable, comparable."""


class Code(StrEnum):
    # A purpose that holds, and on what.
    NOT_REQUIRED = "not_required"
    """{purpose} needs no legal basis beyond the service itself under {regime}."""
    CONSENT_GRANTED = "consent_granted"
    """{purpose} granted under {regime} (and, with {parental_method}, by a parent)."""
    CONTRACT = "contract"
    LEGITIMATE_INTEREST = "legitimate_interest"
    """{purpose} rests on legitimate interest and the subject neither objected nor opted out."""
    REQUEST_CONTEXT_ONLY = "request_context_only"
    """{purpose} holds on legitimate interest for what the request itself tells, never stored data."""
    EXPLICIT_GIVEN = "explicit_given"
    # A purpose refused by the regimes.
    CONSENT_MISSING = "consent_missing"
    """{purpose} needs consent under {regime}; its {status} is not a grant."""
    OPTED_OUT = "opted_out"
    OBJECTION_LEGITIMATE_INTEREST = "objection_legitimate_interest"
    PARENTAL_CONSENT_NEEDED = "parental_consent_needed"
    """Below {age} a parent's consent is needed under {regime}."""
    # Caps that come before any regime.
    RESTRICTED = "restricted"
    MINOR_CAP = "minor_cap"
    MINOR_NOT_PROFILED = "minor_not_profiled"
    MINOR_SIGNIFICANT = "minor_significant"
    OBJECTION_MARKETING = "objection_marketing"
    GPC_SALE = "gpc_sale"
    GPC_CAP = "gpc_cap"
    """Tactful's policy, not the law's (DESIGN §1)."""
    # Levels and atoms.
    LEVEL_BELOW_REFUSED = "level_below_refused"
    """Levels are cumulative and {level}, below this one, is not allowed."""
    NO_PERSONALIZATION_PURPOSE = "no_personalization_purpose"
    STORING_NEEDS_CONSENT = "storing_needs_consent"
    """{purpose} holds for the request's context only; reading {atom} stored or profiled needs consent."""
    EXPLICIT_MISSING = "explicit_missing"
    DEVICE_IDENTIFIER = "device_identifier"
    LIMIT_SENSITIVE = "limit_sensitive"
    SPECIAL_FEATURE_1 = "special_feature_1"
    NOT_ALLOWED = "not_allowed"
    """The gate's masks refused an atom its atom rules would allow: never expected (tests hold it)."""
    NOT_DECLARED = "not_declared"
    NOT_LEARNABLE = "not_learnable"
    """The atom may be read to decide, not learned from."""


def params_of(values: Mapping[str, object]) -> Params:
    return tuple(sorted((name, str(value)) for name, value in values.items()))


@dataclass(frozen=True, slots=True)
class Reason:
    """Why: a code and its parameters."""

    code: Code
    params: Params = ()

    @staticmethod
    def of(code: Code, **params: object) -> Reason:
        return Reason(code, params_of(params))

    @property
    def parameters(self) -> dict[str, str]:
        return dict(self.params)

    def with_params(self, code: Code | None = None, **more: object) -> Reason:
        """This reason's parameters with `more` added, under `code` if given."""
        return Reason(code or self.code, params_of({**dict(self.params), **more}))

    def __str__(self) -> str:
        # For logs and assertion messages: codes and parameters are not personal data.
        inner = ", ".join(f"{k}={v}" for k, v in self.params)
        return f"{self.code}({inner})" if inner else str(self.code)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a purpose holds, why (a code and its parameters), on which legal basis, and whether it
    holds for what the request itself tells only (nothing stored may be read or kept for it)."""

    allowed: bool
    code: Code
    params: Params = ()
    legal_basis: str | None = None
    request_only: bool = False

    @property
    def reason(self) -> Reason:
        return Reason(self.code, self.params)

    @property
    def parameters(self) -> dict[str, str]:
        return dict(self.params)

    @property
    def may_store(self) -> bool:
        """Whether data may be stored for this purpose (it holds, and not for the request alone)."""
        return self.allowed and not self.request_only
