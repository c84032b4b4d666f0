"""The words of a decision's explanation for the person it concerns, in English and Swedish: one
table per kind of code, the gate's reasons through `policy.wording`. Made when an explanation is
read, from the codes the decision log keeps; never stored as text.

    Explanation (codes) ──sentences(language)──▶ Sentences(summary, data_used, why_not_higher, ...)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from tactful.decide.assignment import Strategy
from tactful.decide.explain import Explanation, Step
from tactful.decide.walk import Skip
from tactful.policy import wording
from tactful.policy.verdicts import Code
from tactful.types import Level

Language = wording.Language
_I = {language: i for i, language in enumerate(Language)}
_SHIPPED: dict[str, Language] = {language.value: language for language in Language}

LEVELS: Mapping[Level, tuple[str, str]] = MappingProxyType(
    {
        Level.ALL: ("the same for everyone", "detsamma för alla"),
        Level.MANY: (
            "chosen for a group of people like you (for example by country, language or device)",
            "valt för en grupp människor som du (till exempel efter land, språk eller enhet)",
        ),
        Level.SOME: (
            "chosen from what you did during this visit",
            "valt utifrån vad du gjort under detta besök",
        ),
        Level.FEW: (
            "chosen from your history with us across visits",
            "valt utifrån din historik hos oss över flera besök",
        ),
        Level.ONE: (
            "chosen for you personally, with data that identifies you",
            "valt för dig personligen, med uppgifter som identifierar dig",
        ),
    }
)

STRATEGIES: Mapping[Strategy, tuple[str, str]] = MappingProxyType(
    {
        Strategy.RULE: ("A rule set by the shop chose it.", "En regel som butiken satt upp valde det."),
        Strategy.SPLIT: (
            "It was drawn at random, as part of a test of several versions.",
            "Det lottades fram, som del av ett test av flera versioner.",
        ),
        Strategy.BANDIT: (
            "A learning system chose it; it sometimes tries versions at random to learn.",
            "Ett lärande system valde det; det provar ibland versioner slumpvis för att lära sig.",
        ),
        Strategy.HOLDOUT: (
            "You were drawn into a comparison group, which sees the standard version.",
            "Du lottades in i en jämförelsegrupp, som ser standardversionen.",
        ),
        Strategy.DEFAULT: ("It is the standard version.", "Det är standardversionen."),
        Strategy.FORCED: ("It was set for a preview.", "Det valdes för en förhandsvisning."),
    }
)

SKIPS: Mapping[Skip, tuple[str, str]] = MappingProxyType(
    {
        Skip.NOT_LIVE: ("that content is not running", "det innehållet är inte aktivt"),
        Skip.NOT_SCHEDULED: ("that content is not running at this time", "det innehållet visas inte just nu"),
        Skip.ABOVE_CEILING: (
            "your choices do not allow that level of personalization",
            "dina val tillåter inte den nivån av personalisering",
        ),
        Skip.ATOMS_WITHHELD: (
            "it would need data your choices do not allow",
            "det skulle kräva uppgifter som dina val inte tillåter",
        ),
        Skip.CHANNEL_CONSENT: (
            "you have not agreed to personalized messages",
            "du har inte godkänt personliga meddelanden",
        ),
        Skip.SIGNIFICANT_EFFECT: (
            "decisions with a significant effect need your explicit consent",
            "beslut med betydande verkan kräver ditt uttryckliga samtycke",
        ),
        Skip.SIGNIFICANT_SPECIAL: (
            "a decision with a significant effect may never use sensitive data",
            "ett beslut med betydande verkan får aldrig använda känsliga uppgifter",
        ),
        Skip.SIGNIFICANT_FALLBACK: (
            "what replaces a decision with a significant effect is never itself such a decision",
            "det som ersätter ett beslut med betydande verkan är aldrig självt ett sådant beslut",
        ),
        Skip.AUDIENCE_NOT_SERVED: (
            "the group it is meant for is too small to keep you anonymous in it",
            "gruppen det är avsett för är för liten för att du ska förbli anonym i den",
        ),
        Skip.NO_MATCH: ("it is meant for other people", "det är avsett för andra"),
        Skip.NOT_IN_NAMESPACE: ("you take part in another test", "du deltar i ett annat test"),
        Skip.DEVICE_IDENTIFIER: (
            "a test would need an identifier of your device, which you have not allowed",
            "ett test skulle kräva en identifierare för din enhet, vilket du inte tillåtit",
        ),
        Skip.NO_UNIT: (
            "a test needs an identifier to give you the same version each time, and none was given",
            "ett test behöver en identifierare för att visa dig samma version varje gång, och ingen angavs",
        ),
        Skip.HELD_OUT: ("you are in its comparison group", "du är i dess jämförelsegrupp"),
        Skip.NOT_RENDERED: (
            "it could not be shown without data that is missing",
            "det kunde inte visas utan uppgifter som saknas",
        ),
        Skip.OVERTURNED: (
            "a person at the shop reviewed an earlier decision about you and it no longer applies",
            "en människa i butiken granskade ett tidigare beslut om dig och det gäller inte längre",
        ),
    }
)

CATEGORIES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "user.name": ("your name", "ditt namn"),
        "user.contact": ("your contact details", "dina kontaktuppgifter"),
        "user.location.precise": ("your precise location", "din exakta plats"),
        "user.location": (
            "your approximate location (country or region)",
            "din ungefärliga plats (land eller region)",
        ),
        "user.device": ("your device", "din enhet"),
        "user.preference": ("your preferences, such as language", "dina preferenser, till exempel språk"),
        "user.demographic": ("your age group", "din åldersgrupp"),
        "user.behavior.purchase": ("your purchases", "dina köp"),
        "user.behavior": ("what you looked at", "vad du tittat på"),
        "user.derived": (
            "what we inferred from your activity",
            "det vi dragit slutsatser om från din aktivitet",
        ),
        "user.sensitive": (
            "sensitive data you explicitly allowed",
            "känsliga uppgifter som du uttryckligen tillåtit",
        ),
        "user": ("data about you", "uppgifter om dig"),
    }
)
"""Kinds of data in words, by the longest matching prefix of a category."""

CHANGES: Mapping[Code, tuple[str, str]] = MappingProxyType(
    {
        Code.CONSENT_MISSING: ("you granted consent for {purpose}", "du gav samtycke till {purpose}"),
        Code.STORING_NEEDS_CONSENT: ("you granted consent for {purpose}", "du gav samtycke till {purpose}"),
        Code.OPTED_OUT: ("you opted in to {purpose} again", "du valde {purpose} igen"),
        Code.EXPLICIT_MISSING: (
            "you gave explicit consent for {category}",
            "du gav uttryckligt samtycke för {category}",
        ),
    }
)
"""What a person could do about a reason (`Explanation.would_change` holds only these codes)."""

HEADINGS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "level": ("What you see is {level}.", "Det du ser är {level}."),
        "weight": ("{what}: {percent}% of the choice", "{what}: {percent} % av valet"),
        "ruled_out": (
            "{what}: used to rule other content out",
            "{what}: användes för att välja bort annat innehåll",
        ),
        "not_higher": (
            "It is not more personal because {reason}.",
            "Det är inte mer personligt eftersom {reason}.",
        ),
        "would_change": ("This would change if: {reason}.", "Detta skulle ändras om: {reason}."),
        "no_data": ("No data about you was used.", "Inga uppgifter om dig användes."),
        "overturned": (
            "A person at the shop reviewed an earlier decision about you and it no longer applies, "
            "so it is not made about you again.",
            "En människa i butiken granskade ett tidigare beslut om dig och det gäller inte längre, "
            "så det fattas inte om dig igen.",
        ),
    }
)

RIGHTS: tuple[tuple[str, str], ...] = (
    (
        "This decision has a significant effect on you, so a person at the shop reviews it if you ask.",
        "Det här beslutet har betydande verkan för dig, så en människa i butiken granskar det "
        "om du ber om det.",
    ),
    (
        "You may ask for that review, give your point of view, and contest the decision; "
        "you will get an answer from a person.",
        "Du kan begära granskningen, framföra din synpunkt och bestrida beslutet; "
        "du får svar från en människa.",
    ),
)
"""A significant decision's rights (GDPR Art. 22(3)): human intervention, a point of view, contest."""


@dataclass(frozen=True)
class Sentences:
    summary: tuple[str, ...]
    data_used: tuple[str, ...]
    why_not_higher: tuple[str, ...]
    what_would_change: tuple[str, ...]
    your_rights: tuple[str, ...] = ()
    """For a decision with a significant effect: that the person may ask for review and contest it."""


def category_words(category: str, language: Language) -> str:
    parts = category.split(".")
    for end in range(len(parts), 0, -1):
        found = CATEGORIES.get(".".join(parts[:end]))
        if found is not None:
            return found[_I[language]]
    return category


def step_words(step: Step, language: Language) -> str:
    if step.code in Skip.__members__.values():
        return SKIPS[Skip(step.code)][_I[language]]
    return wording.words(Code(step.code), step.params, language)


def sentences(explanation: Explanation, language: Language) -> Sentences:
    i = _I[language]
    summary = (
        HEADINGS["level"][i].format(level=LEVELS[explanation.level][i]),
        STRATEGIES[explanation.strategy][i],
        # A review that overturned a decision about the person is why they see this, at any level:
        # said once here, so the steps below leave it out.
        *((HEADINGS["overturned"][i],) if explanation.overturned else ()),
    )
    data: dict[str, float] = {}
    for use in explanation.atoms:
        what = category_words(use.category, language)
        data[what] = data.get(what, 0.0) + use.weight
    used = tuple(
        HEADINGS["weight"][i].format(what=what, percent=round(weight * 100))
        if weight > 0
        else HEADINGS["ruled_out"][i].format(what=what)
        for what, weight in sorted(data.items(), key=lambda item: -item[1])
    ) or (HEADINGS["no_data"][i],)
    reasons = dict.fromkeys(
        step_words(step, language) for step in explanation.not_higher if step.code != Skip.OVERTURNED
    )
    changes = dict.fromkeys(CHANGES[r.code][i].format_map(dict(r.params)) for r in explanation.would_change)
    return Sentences(
        summary=summary,
        data_used=used,
        why_not_higher=tuple(HEADINGS["not_higher"][i].format(reason=r) for r in reasons),
        what_would_change=tuple(HEADINGS["would_change"][i].format(reason=r) for r in changes),
        your_rights=tuple(sentence[i] for sentence in RIGHTS) if explanation.significant else (),
    )


def language_of(tag: object) -> Language | None:
    """The shipped language of a BCP 47 tag (`sv-SE` → sv), or None when none is shipped for it."""
    if not isinstance(tag, str):
        return None
    primary = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    return _SHIPPED.get(primary)


def accepted_language(header: str | None) -> Language | None:
    """The shipped language an `Accept-Language` header prefers most (RFC 9110 §12.5.4), if any."""
    ranked: list[tuple[float, int, Language]] = []
    for position, part in enumerate((header or "").split(",")[:20]):
        tag, _, params = part.partition(";")
        quality = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip() == "q":
            try:
                quality = float(value)
            except ValueError:
                continue
        language = language_of(tag)
        if language is not None and 0 < quality <= 1:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else None
