"""The words of an access or portability package, in English: the plain-language summary
(`README.txt`, GDPR Art. 12(1)), what the catalog says of the person's data (purposes, sources,
retention, recipients: Art. 15(1)(a)-(g)), the logic of automated decisions (Art. 15(1)(h)) and the
person's rights with how to complain. Pure: made from the catalog, the wording tables of decisions
and counts; never from a value of the person's data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tactful.catalog.model import EEA, Catalog, Source
from tactful.catalog.report import LEGAL_BASIS, PURPOSE_TEXT
from tactful.catalog.retention import describe_retention
from tactful.decide import wording
from tactful.decide.assignment import Strategy
from tactful.policy.regimes import LegalBasis
from tactful.types import LEVEL_PURPOSE, Level, Purpose

if TYPE_CHECKING:
    from tactful.rights.package import PackageRequest

Json = Any
EN = 0

SOURCES: Mapping[Source, str] = {
    Source.TRAIT: "you gave it to the site (a profile field, a form, an account setting)",
    Source.EVENT: "observed: something you did on the site or app (a page viewed, a purchase)",
    Source.CONTEXT: "observed: sent by your browser or device with each visit (country, language, page)",
    Source.COMPUTED: "inferred: worked out by Tactful from your other data",
}

BASIS_WORDS: Mapping[LegalBasis, str] = {
    LegalBasis.CONSENT: "your consent",
    LegalBasis.CONTRACT: "the contract with you",
    LegalBasis.LEGITIMATE_INTEREST: "the business's legitimate interest, until you object or opt out",
    LegalBasis.NOT_REQUIRED: "delivering the service you asked for (the contract) and keeping it secure",
}

GDPR_RIGHTS: tuple[tuple[str, str, str], ...] = (
    ("access", "Art. 15", "to get a copy of your data and to know how it is used (this package)"),
    ("rectification", "Art. 16", "to have wrong data corrected"),
    ("erasure", "Art. 17", "to have your data deleted"),
    ("restriction", "Art. 18", "to have your data kept but no longer used"),
    ("portability", "Art. 20", "to receive the data you gave us in a machine-readable form"),
    (
        "objection",
        "Art. 21",
        "to object to processing on legitimate interest, and always to direct marketing",
    ),
    (
        "automated_decisions",
        "Art. 22",
        "not to be subject to decisions with significant effects made by "
        "a machine alone, and to ask for a person to review one",
    ),
    ("withdraw_consent", "Art. 7(3)", "to withdraw any consent at any time, as easily as you gave it"),
    (
        "complaint",
        "Art. 77",
        "to lodge a complaint with a data protection supervisory authority, in "
        "particular in the EU or EEA country where you live or work or where you think the law was broken",
    ),
)
CCPA_RIGHTS: tuple[tuple[str, str, str], ...] = (
    ("know", "Civ. Code §1798.110", "to know what personal information is collected and how it is used"),
    ("delete", "Civ. Code §1798.105", "to have your personal information deleted"),
    ("correct", "Civ. Code §1798.106", "to have inaccurate personal information corrected"),
    (
        "opt_out_sale_share",
        "Civ. Code §1798.120",
        "to opt out of the sale or sharing of your personal "
        "information (a Global Privacy Control signal counts)",
    ),
    ("limit_sensitive", "Civ. Code §1798.121", "to limit the use of your sensitive personal information"),
    ("non_discrimination", "Civ. Code §1798.125", "not to be treated differently for using these rights"),
    (
        "complaint",
        "Civ. Code §1798.199.10",
        "to complain to the California Privacy Protection Agency "
        "(cppa.ca.gov) or the California Attorney General",
    ),
)


# -- processing: purposes, sources, retention, recipients -------------------------------------------


def processing(
    catalog: Catalog, atoms: Sequence[str], bases: Mapping[Purpose, frozenset[LegalBasis]]
) -> dict[str, Json]:
    """What the catalog says of the atoms the person has data in (and of their purposes)."""
    declared = [catalog.atoms[name] for name in atoms if name in catalog.atoms]
    purposes = sorted({p for a in declared for p in a.purposes}, key=list(Purpose).index)
    recipients = sorted({key for a in declared for key in a.recipients if key in catalog.recipients})
    controller = catalog.controller
    return {
        "controller": {
            "name": controller.name,
            "contact": controller.contact,
            "data_protection_officer": controller.dpo,
            "representative": controller.representative,
            "establishment": controller.establishment,
        },
        "purposes": [
            {
                "purpose": p.value,
                "description": PURPOSE_TEXT[p],
                "legal_basis": LEGAL_BASIS[p],
                "legal_basis_for_you": sorted(b.value for b in bases.get(p, frozenset())),
            }
            for p in purposes
        ],
        "data": [
            {
                "atom": a.name,
                "description": a.description,
                "category": a.category,
                "source": a.source.value,
                "source_explained": SOURCES[a.source],
                "purposes": sorted(p.value for p in a.purposes),
                "retention": describe_retention(a.retention, a.retention_anchor),
                "retention_days": a.retention.days,
                "recipients": [catalog.recipients[k].name for k in a.recipients if k in catalog.recipients],
            }
            for a in declared
        ],
        "recipients": [
            {
                "name": r.name,
                "role": r.role,
                "country": r.country,
                "outside_eea": r.country is not None and r.country not in EEA,
                "safeguard": r.safeguard,
                "description": r.description,
            }
            for r in (catalog.recipients[k] for k in recipients)
        ],
        "sources": {source.value: words for source, words in SOURCES.items()},
    }


# -- the logic of automated decisions --------------------------------------------------------------


def decision_logic() -> dict[str, Json]:
    """How Tactful decides what content a person sees (Art. 15(1)(h)), in general terms."""
    return {
        "what_is_decided": "Which version of a piece of content (a banner, a greeting, product picks) you "
        "see in a given place on the site or app. These choices change what you are shown; they do not "
        "decide prices, eligibility or anything with a legal or similarly significant effect unless an "
        "experience is marked as significant, which then needs your explicit consent and offers review "
        "by a person.",
        "how": [
            "Your consent choices and the law decide how personal a choice may be: the highest level "
            "below that your choices allow (your 'ceiling').",
            "For each place, Tactful tries the prepared versions from the most personal level your ceiling "
            "allows down to the version that is the same for everyone; the first one that applies to you "
            "is shown. The same-for-everyone version always exists.",
            "A version reads only the kinds of data its level allows, and only data your choices allow.",
            "Some versions are tests: you are drawn at random into one of several versions, or into a "
            "comparison group that sees the standard one.",
            "Each decision is recorded with the data it used, how much each weighed, its legal basis, and "
            "why it was not more personal (decisions.json).",
        ],
        "levels": [
            {
                "level": level.value,
                "meaning": wording.LEVELS[level][EN],
                "purpose": LEVEL_PURPOSE[level].value if level in LEVEL_PURPOSE else None,
            }
            for level in Level
        ],
        "strategies": [{"strategy": s.value, "meaning": wording.STRATEGIES[s][EN]} for s in Strategy],
        "your_choices": "Withdrawing consent for a personalization purpose takes effect on the very next "
        "decision. An objection, a restriction or a Global Privacy Control signal lowers your ceiling too.",
    }


# -- rights ----------------------------------------------------------------------------------------


def rights(catalog: Catalog, regimes: Sequence[str]) -> dict[str, Json]:
    """The person's rights under the regimes the request was answered under, and how to complain."""
    named = set(regimes) or {"gdpr"}
    controller = catalog.controller
    found: dict[str, Json] = {
        "contact": {
            "controller": controller.name,
            "privacy_contact": controller.contact,
            "data_protection_officer": controller.dpo,
        },
        "how_to_use_them": f"Write to {controller.contact}"
        + (f" or to the data protection officer at {controller.dpo}" if controller.dpo else "")
        + ". The business answers within the time the law gives (one month under the GDPR, 45 days under "
        "the CCPA), and free of charge.",
        "regimes": {},
    }
    if "gdpr" in named:
        found["regimes"]["gdpr"] = [{"right": r, "law": law, "what": what} for r, law, what in GDPR_RIGHTS]
    if "ccpa" in named:
        found["regimes"]["ccpa"] = [{"right": r, "law": law, "what": what} for r, law, what in CCPA_RIGHTS]
    return found


# -- the summary ------------------------------------------------------------------------------------

_WRAP = 100


def _wrap(text: str, indent: str = "") -> list[str]:
    lines: list[str] = []
    line = indent
    for word in text.split():
        if len(line) + len(word) + 1 > _WRAP and line.strip():
            lines.append(line.rstrip())
            line = " " * len(indent)
        line += word + " "
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _heading(title: str) -> list[str]:
    return ["", title, "-" * len(title)]


def _day(value: object) -> str:
    return str(value)[:10] if value else "unknown"


def summary(
    *,
    request: PackageRequest,
    catalog: Catalog,
    counts: Mapping[str, int],
    events: Sequence[Mapping[str, Any]],
    processing: Mapping[str, Any],
    profile: Mapping[str, Any],
    files: Sequence[str],
) -> str:
    """README.txt: what the package holds and what it means, for the person, in plain English."""
    from tactful.rights.package_schema import DESCRIPTIONS

    controller = catalog.controller.name
    portability = request.kind.value == "portability"
    title = f"Your data held by {controller}"
    out = [title, "=" * len(title), ""]
    what = "data portability" if portability else "access"
    out += _wrap(
        f"This package answers your {what} request {request.request_id}. It was made on "
        f"{request.made_at:%Y-%m-%d %H:%M} UTC from what {controller}'s personalization system "
        "(Tactful) held about you at that moment, with no time limit on how far back it goes. The link "
        f"to download it works until {request.expires_at:%Y-%m-%d %H:%M} UTC."
    )
    if portability:
        out += [
            "",
            *_wrap(
                "It holds the data you gave us and the data we observed about you, where our use of it rests "
                "on your consent or on the contract with you, in formats another service can read (JSON and "
                "CSV). It leaves out what we inferred about you. To see everything we hold, with how and why "
                "we use it, make an access request."
            ),
        ]
    out += _heading("What we hold about you")
    lines = [
        f"Identifiers (such as your user id, browser ids, e-mail address): {counts.get('identities', 0)}"
    ]
    inferred = counts.get("inferred_traits", 0)
    marked = f', of which {inferred} inferred by us (marked "inferred": true in traits.json)'
    lines.append(f"Profile details: {counts.get('traits', 0)}" + (marked if inferred else ""))
    span = (
        f", from {_day(events[0].get('timestamp'))} to {_day(events[-1].get('timestamp'))}" if events else ""
    )
    lines.append(f"Things you did on the site or app (events): {counts.get('events', 0)}{span}")
    if not portability:
        merged = len(profile.get("merged_profiles") or [])
        joined = f"; {merged} other profile(s) of yours (another browser or device) merged into it"
        seen = _day(profile.get("last_seen_at"))
        created = f"Profile created {_day(profile.get('created_at'))}, last seen {seen}"
        lines.insert(0, created + (joined if merged else ""))
        lines += [
            f"Consent choices you made, with their proof: {counts.get('consent_changes', 0)}",
            f"Messages about you that we received but did not store: {counts.get('quarantined', 0)}",
            f"Decisions about which content to show you, each with why: {counts.get('decisions', 0)}",
            f"Privacy requests you made: {counts.get('privacy_requests', 0)}",
        ]
    for line in lines:
        out += _wrap(line, "- ")
    if not portability:
        out += _heading("Why we use it")
        for purpose in processing.get("purposes", []):
            said = f"{purpose['purpose']}: {purpose['description']} Legal basis: {purpose['legal_basis']}"
            out += _wrap(said, "- ")
        out += _heading("Where it comes from")
        sources = sorted({d["source"] for d in processing.get("data", [])})
        for source in sources:
            out += _wrap(f"{source}: {processing['sources'][source]}", "- ")
        out += _heading("How long we keep it")
        for item in processing.get("data", []):
            out += _wrap(f"{item['atom']} ({item['category']}): {item['retention']}", "- ")
        out += _heading("Who receives it")
        recipients = processing.get("recipients", [])
        if not recipients:
            out += ["- Nobody outside the business."]
        for r in recipients:
            where = f" in {r['country']}" if r.get("country") else ""
            guard = f"; safeguard: {r['safeguard']}" if r.get("outside_eea") and r.get("safeguard") else ""
            out += _wrap(f"{r['name']} ({r['role']}{where}): {r['description']}{guard}", "- ")
        out += _heading("Automated decisions")
        logic = decision_logic()
        out += _wrap(logic["what_is_decided"])
        for step in logic["how"]:
            out += _wrap(step, "- ")
    out += _heading("Your rights")
    told = rights(catalog, request.regimes)
    for regime, listed in told["regimes"].items():
        out.append(f"Under the {regime.upper()}:")
        for right in listed:
            out += _wrap(f"{right['what']} ({right['law']})", "- ")
    out += ["", *_wrap(told["how_to_use_them"])]
    out += _heading("The files in this package")
    for name in files:
        out += _wrap(f"{name}: {DESCRIPTIONS.get(name, '')}", "- ")
    out += [
        "",
        *_wrap(
            "JSON files are UTF-8 text. CSV files are UTF-8 with a header row (RFC 4180); a cell that would "
            "start with =, +, -, @ or a tab begins with an apostrophe so that spreadsheets show it as text, "
            "and the JSON files hold the same values unchanged. schema.json describes every file as a JSON "
            "Schema (2020-12); manifest.json lists each file with its SHA-256."
        ),
    ]
    return "\n".join(out) + "\n"
