"""The words of the gate's reasons: one table, every code in every language, made at the edge.

    Reason(code, params) ──words(code, params, language)──▶ "consent for analytics granted (gdpr)"

The gate speaks in codes (`verdicts.py`); API answers and explanations turn them into sentences here,
in the reader's language. A template names the parameters it reads (`{purpose}`, `{regime}`, ...);
a parameter without a place in the template is said as a clause of its own (`CLAUSES`), so that a
parent's consent, for instance, is named after any reason it changed. The tests hold the table
complete: every code, every language, every parameter the gate gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from tactful.policy.verdicts import Code, Params


class Language(StrEnum):
    EN = "en"
    SV = "sv"


_ = Code
TABLE: Mapping[Code, tuple[str, str]] = MappingProxyType(
    {
        # code: (English, Swedish)
        _.NOT_REQUIRED: (
            "{purpose} needs no consent ({regime})",
            "{purpose} kräver inget samtycke ({regime})",
        ),
        _.CONSENT_GRANTED: (
            "consent for {purpose} granted ({regime})",
            "samtycke till {purpose} givet ({regime})",
        ),
        _.CONTRACT: (
            "{purpose} is needed for the contract ({regime})",
            "{purpose} behövs för avtalet ({regime})",
        ),
        _.LEGITIMATE_INTEREST: (
            "{purpose} rests on legitimate interest, with no objection or opt-out ({regime})",
            "{purpose} vilar på berättigat intresse, utan invändning eller avregistrering ({regime})",
        ),
        _.REQUEST_CONTEXT_ONLY: (
            "{purpose} on legitimate interest, for what this request tells only ({regime})",
            "{purpose} på berättigat intresse, bara för det som denna begäran anger ({regime})",
        ),
        _.EXPLICIT_GIVEN: (
            "explicit consent for {category} given",
            "uttryckligt samtycke för {category} givet",
        ),
        _.CONSENT_MISSING: (
            "{purpose} needs consent, which is {status} ({regime})",
            "{purpose} kräver samtycke, som är {status} ({regime})",
        ),
        _.OPTED_OUT: (
            "{purpose} was opted out of: {status} ({regime})",
            "{purpose} har valts bort: {status} ({regime})",
        ),
        _.OBJECTION_LEGITIMATE_INTEREST: (
            "{purpose} rests on legitimate interest, and the person objected ({regime})",
            "{purpose} vilar på berättigat intresse, och personen har invänt ({regime})",
        ),
        _.PARENTAL_CONSENT_NEEDED: (
            "a parent's consent is needed under the age of {age} ({regime})",
            "en förälders samtycke krävs under {age} års ålder ({regime})",
        ),
        _.RESTRICTED: (
            "processing is restricted (Art. 18): data kept but unused",
            "behandlingen är begränsad (art. 18): uppgifterna sparas men används inte",
        ),
        _.MINOR_CAP: ("a minor is kept at 1:many", "en minderårig stannar vid 1:many"),
        _.MINOR_NOT_PROFILED: ("minors are never profiled", "minderåriga profileras aldrig"),
        _.MINOR_SIGNIFICANT: (
            "decisions with a significant effect never serve minors",
            "beslut med betydande verkan gäller aldrig minderåriga",
        ),
        _.OBJECTION_MARKETING: (
            "direct marketing and profiling for it stopped on objection (Art. 21(3))",
            "direktmarknadsföring och profilering för den har upphört efter invändning (art. 21.3)",
        ),
        _.GPC_SALE: (
            "Global Privacy Control opts out of sale or sharing (the law)",
            "Global Privacy Control avregistrerar från försäljning och delning (lagen)",
        ),
        _.GPC_CAP: (
            "Global Privacy Control keeps personalization at 1:many (Tactful's policy, not the law)",
            "Global Privacy Control håller personaliseringen vid 1:many (Tactfuls policy, inte lagen)",
        ),
        _.LEVEL_BELOW_REFUSED: (
            "levels are cumulative and {level} is not allowed",
            "nivåerna bygger på varandra och {level} är inte tillåten",
        ),
        _.NO_PERSONALIZATION_PURPOSE: (
            "{atom} serves no personalization purpose",
            "{atom} tjänar inget syfte för personalisering",
        ),
        _.STORING_NEEDS_CONSENT: (
            "{purpose} holds for this request only; storing or profiling {atom} needs consent ({regime})",
            "{purpose} gäller endast begäran; att lagra eller profilera {atom} kräver samtycke ({regime})",
        ),
        _.EXPLICIT_MISSING: (
            "explicit consent for {category} not given",
            "uttryckligt samtycke för {category} saknas",
        ),
        _.DEVICE_IDENTIFIER: (
            "{atom} depends on a device identifier, which needs consent",
            "{atom} bygger på en enhetsidentifierare, som kräver samtycke",
        ),
        _.LIMIT_SENSITIVE: (
            "use of sensitive personal information limited on request (CPRA)",
            "användningen av känsliga personuppgifter begränsad på begäran (CPRA)",
        ),
        _.SPECIAL_FEATURE_1: (
            "precise location needs TCF special feature 1, which was not opted in",
            "exakt plats kräver TCF:s särskilda funktion 1, som inte har valts",
        ),
        _.NOT_ALLOWED: ("not allowed for this person", "inte tillåtet för denna person"),
        _.NOT_DECLARED: ("{atom} is not declared in the catalog", "{atom} finns inte i katalogen"),
        _.NOT_LEARNABLE: (
            "may be read to decide, not learned from",
            "får läsas för beslut, inte för inlärning",
        ),
    }
)
"""Every code's template, in English and in Swedish (`Language` order)."""

CLAUSES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "parental_method": (
            ", with a parent's consent ({parental_method})",
            ", med en förälders samtycke ({parental_method})",
        ),
    }
)
"""Parameters said after the template, when a reason carries them."""

STATUS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "granted": ("granted", "givet"),
        "denied": ("denied", "nekat"),
        "withdrawn": ("withdrawn", "återkallat"),
        "not_set": ("not given", "inte givet"),
    }
)
"""The words of a consent status (`{status}`)."""

_INDEX = {language: i for i, language in enumerate(Language)}


def words(code: Code, params: Params | Mapping[str, str] = (), language: Language = Language.EN) -> str:
    """The sentence for a reason, in `language`."""
    i = _INDEX[language]
    values = dict(params)
    if "status" in values and values["status"] in STATUS:
        values["status"] = STATUS[values["status"]][i]
    text = TABLE[code][i].format_map(values)
    for name, clause in CLAUSES.items():
        if name in values:
            text += clause[i].format_map(values)
    return text
