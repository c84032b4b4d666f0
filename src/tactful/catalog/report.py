"""The records of processing activities (GDPR Art. 30(1)) that a catalog implies: one activity per
purpose, with the categories of data and of data subjects, recipients, transfers, retention and the
legal basis, and the technical measures (Art. 30(1)(g), Art. 32). Pure: catalog in, data out.

The legal-basis notes restate Tactful's defaults (DESIGN §1); a deployment that changes its regimes
should edit the generated text before filing it. This is engineering, not legal advice.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tactful.catalog.model import EEA, Atom, Catalog, Recipient
from tactful.catalog.retention import Expiry, describe_retention, format_retention
from tactful.types import Purpose

Json = dict[str, "Json"] | list["Json"] | str | int | float | bool | None

PURPOSE_TEXT: Mapping[Purpose, str] = MappingProxyType(
    {
        Purpose.ESSENTIAL: "Delivering the service: accounts, orders, security and fraud prevention.",
        Purpose.ANALYTICS: "Measuring content and outcomes; learning aggregate models.",
        Purpose.SEGMENTS: "Choosing content for broad groups (1:many): country, language, device type.",
        Purpose.BEHAVIORAL: "Choosing content from behaviour within the current session (1:some).",
        Purpose.PREDICTIVE: "Profiles across sessions: history, affinities and predictions (1:few).",
        Purpose.INDIVIDUAL: "Content for the identified individual: named greetings, recommendations (1:1).",
        Purpose.MARKETING_EMAIL: "Personalised e-mail messages.",
        Purpose.SALE_OR_SHARE: "Sale or sharing for cross-context behavioural advertising (CCPA/CPRA).",
    }
)

LEGAL_BASIS: Mapping[Purpose, str] = MappingProxyType(
    {
        Purpose.ESSENTIAL: "Contract (Art. 6(1)(b)); legal obligation (Art. 6(1)(c)) for accounting records "
        "and age assurance; legitimate interest (Art. 6(1)(f)) for security and fraud prevention. Device "
        "identifiers used for it are strictly necessary (ePrivacy Art. 5(3)).",
        Purpose.ANALYTICS: "Consent (Art. 6(1)(a); TCF purposes 1, 8, 9).",
        Purpose.SEGMENTS: "Consent (Art. 6(1)(a); TCF purpose 11). Legitimate interest (Art. 6(1)(f)) only "
        "for request-context attributes read for the request itself and not stored in a profile.",
        Purpose.BEHAVIORAL: "Consent (Art. 6(1)(a); TCF purposes 1, 11).",
        Purpose.PREDICTIVE: "Consent (Art. 6(1)(a); TCF purposes 1, 5, 6). Profiling: objection (Art. 21) "
        "ends it.",
        Purpose.INDIVIDUAL: "Consent (Art. 6(1)(a); TCF purposes 1, 5, 6).",
        Purpose.MARKETING_EMAIL: "Consent to the channel (ePrivacy Art. 13); an objection to direct "
        "marketing (Art. 21(2)) always ends it.",
        Purpose.SALE_OR_SHARE: "CCPA/CPRA: allowed until the consumer opts out; Global Privacy Control is "
        "honoured as the opt-out. Under the GDPR: consent.",
    }
)

EXPLICIT_CONSENT_NOTE = (
    "Special categories: explicit consent per category (Art. 9(2)(a)), recorded in the ledger."
)


def records_of_processing(catalog: Catalog) -> dict[str, Json]:
    """The records as JSON-able data."""
    c = catalog.controller
    return {
        "controller": {
            "name": c.name,
            "contact": c.contact,
            "dpo": c.dpo,
            "representative": c.representative,
            "establishment": c.establishment,
        },
        "data_subjects": [{"name": s.name, "description": s.description} for s in catalog.data_subjects],
        "activities": [_activity(catalog, purpose) for purpose in Purpose if catalog.for_purpose(purpose)],
        "technical_measures": list[Json](technical_measures(catalog)),
    }


def _activity(catalog: Catalog, purpose: Purpose) -> dict[str, Json]:
    atoms = catalog.for_purpose(purpose)
    recipients = _recipients(catalog, atoms)
    legal_basis = LEGAL_BASIS[purpose]
    if any(a.special for a in atoms):
        legal_basis = f"{legal_basis} {EXPLICIT_CONSENT_NOTE}"
    return {
        "purpose": purpose.value,
        "description": PURPOSE_TEXT[purpose],
        "legal_basis": legal_basis,
        "data_categories": list[Json](_categories(atoms)),
        "data_subjects": [s.name for s in catalog.data_subjects],
        "recipients": [_recipient(r) for r in recipients],
        "transfers": [_recipient(r) for r in recipients if r.country is not None and r.country not in EEA],
        "atoms": [_atom(a) for a in atoms],
    }


def _categories(atoms: tuple[Atom, ...]) -> list[dict[str, Json]]:
    grouped: dict[str, list[Atom]] = {}
    details = {}
    for atom in atoms:
        for category in atom.categories:
            grouped.setdefault(category.name, []).append(atom)
            details[category.name] = category
    rows: list[dict[str, Json]] = []
    for name in sorted(grouped):
        members = grouped[name]
        longest, shortest = max(a.retention for a in members), min(a.retention for a in members)
        span = format_retention(longest)
        if shortest != longest:
            span = f"{format_retention(shortest)} to {span}"
        rows.append(
            {
                "category": name,
                "description": details[name].description,
                "special": details[name].special,
                "cpra_sensitive": details[name].cpra_sensitive,
                "atoms": [a.name for a in members],
                "retention": span,
                "retention_days": longest.days,
            }
        )
    return rows


def _atom(atom: Atom) -> dict[str, Json]:
    return {
        "name": atom.name,
        "category": atom.category,
        "level": atom.level.value,
        "retention": describe_retention(atom.retention, atom.retention_anchor),
        "retention_days": atom.retention.days,
        "identifier": atom.identifier,
    }


def _recipients(catalog: Catalog, atoms: tuple[Atom, ...]) -> list[Recipient]:
    keys = dict.fromkeys(key for a in atoms for key in a.recipients)
    return [catalog.recipients[key] for key in keys if key in catalog.recipients]


def _recipient(r: Recipient) -> dict[str, Json]:
    return {"name": r.name, "role": r.role, "country": r.country, "safeguard": r.safeguard}


def technical_measures(catalog: Catalog) -> list[str]:
    """What protects the data, naming the atoms each measure covers."""
    identifiers = sorted(a.name for a in catalog.atom_list if a.identifier)
    transient = sorted(a.name for a in catalog.atom_list if not a.stored)
    special = sorted(a.name for a in catalog.atom_list if a.special)
    anonymised = sorted(c for c, action in catalog.expiry.items() if action is Expiry.ANONYMISE)
    kept_counted = (
        f", except event rows of {', '.join(anonymised)} (outside the special categories), which are "
        "anonymised: they lose the subject, identifiers, free text, URLs and time of day, and remain "
        "only to be counted"
        if anonymised
        else ""
    )
    measures = [
        "Data minimisation at collection: fields this catalog does not declare are dropped and counted, "
        "never stored.",
        "Every stored atom expires after its retention period; the server's retention sweep (daily by "
        f"default) deletes what has expired{kept_counted}.",
        "Direct identifiers are encrypted at rest under a per-subject data key kept in a separate keystore; "
        "erasure destroys the key (crypto-shredding), including in restored backups"
        + (f": {', '.join(identifiers)}." if identifiers else "."),
        "E-mail lookups go through a keyed blind index, destroyed with the subject's salt.",
        "The audit log is hash-chained and refers to subjects only by keyed pseudonyms with a per-subject "
        "salt that erasure destroys.",
        "Decisions read only the atoms their consent-based allowance permits; each decision is logged with "
        "the atoms, purposes and legal basis it used.",
        "API keys are scoped, stored hashed and compared in constant time.",
    ]
    if transient:
        measures.append(f"Used for the request only and never stored: {', '.join(transient)}.")
    if special:
        measures.append(f"Special-category data used only with explicit consent: {', '.join(special)}.")
    return measures


def render_records_markdown(catalog: Catalog) -> str:
    """The records as a Markdown document."""
    records = records_of_processing(catalog)
    c = catalog.controller
    out = [
        "# Records of processing activities (GDPR Art. 30)",
        "",
        f"**Controller:** {c.name}, {c.establishment}. Contact: {c.contact}.",
    ]
    if c.dpo:
        out.append(f"**Data protection officer:** {c.dpo}.")
    if c.representative:
        out.append(f"**Representative:** {c.representative}.")
    out += ["", "**Categories of data subjects:**", ""]
    out += [f"- {s.name}" + (f": {s.description}" if s.description else "") for s in catalog.data_subjects]
    activities = records["activities"]
    assert isinstance(activities, list)
    for activity in activities:
        assert isinstance(activity, dict)
        out += _activity_markdown(activity)
    out += ["", "## Technical and organisational measures (Art. 32)", ""]
    out += [f"- {measure}" for measure in technical_measures(catalog)]
    return "\n".join(out) + "\n"


def _activity_markdown(activity: dict[str, Json]) -> list[str]:
    out = ["", f"## Purpose: `{activity['purpose']}`", "", str(activity["description"]), ""]
    out += [f"**Legal basis:** {activity['legal_basis']}", ""]
    out += ["| Category of data | Atoms | Retention |", "|---|---|---|"]
    retention = {str(a["name"]): a["retention"] for a in _dicts(activity["atoms"])}
    for row in _dicts(activity["data_categories"]):
        atoms = ", ".join(f"`{name}` ({retention[name]})" for name in _strings(row["atoms"]))
        flag = " (special category)" if row["special"] else " (sensitive)" if row["cpra_sensitive"] else ""
        out.append(f"| `{row['category']}`{flag} | {atoms} | {row['retention']} |")
    out += ["", "- **Data subjects:** " + (", ".join(_strings(activity["data_subjects"])) or "none declared")]
    recipients = [
        f"{r['name']} ({r['role']}, {r['country'] or 'n/a'})" for r in _dicts(activity["recipients"])
    ]
    out.append("- **Recipients:** " + ("; ".join(recipients) or "none beyond the controller"))
    transfers = [f"{t['name']} to {t['country']}: {t['safeguard']}" for t in _dicts(activity["transfers"])]
    out.append("- **Transfers outside the EEA:** " + ("; ".join(transfers) or "none"))
    return out


def _dicts(value: Json) -> list[dict[str, Json]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _strings(value: Json) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []
