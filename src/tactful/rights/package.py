"""An access or portability package: one subject's document (`registry.export_all`) as a zip of
JSON and CSV files, a JSON Schema of them, and a summary in plain language. Pure: the document, the
catalog and the subject's legal bases in; the zip's files out. No look-back limit: every row the
stores export goes in.

    export_all document (survivor, then `merged` profiles: one person)
        │ sections: profile, identities, traits (inferred marked), consent history, events,
        │           quarantined messages, decisions (codes and words), counters, requests,
        │           earlier packages, and any store this module does not know (`other_stores.json`)
        ▼
    access ──────▶ every section + processing (purposes, sources, retention, recipients) + the
                   logic of automated decisions + rights          (GDPR Art. 15, CCPA §1798.110)
    portability ─▶ identities, the traits the person gave and the events observed, each only where
                   a purpose it serves rests on consent or the contract              (Art. 20)
        ▼
    files: README.txt (package_text), manifest.json (sha-256 of every file), schema.json
    (package_schema), the sections as JSON, tabular ones also as CSV ──▶ zip (deflated)
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from tactful.catalog.model import Atom, Catalog, Source
from tactful.catalog.report import records_of_processing
from tactful.decide import wording
from tactful.decide.explain import Explanation
from tactful.policy.regimes import LegalBasis
from tactful.rights import package_schema, package_text
from tactful.types import Purpose

FORMAT = "tactful-subject-export"
VERSION = 1
INFERRED_CATEGORY = "user.derived"
"""Traits in this category (or below it) are inferences, like every computed atom."""
PORTABLE_BASES = frozenset({LegalBasis.CONSENT, LegalBasis.CONTRACT})
"""Art. 20(1)(a): portability covers processing that rests on consent or on a contract."""
KNOWN_STORES = frozenset(
    {"collection", "decisions", "profiles", "realtime_counters", "consent", "privacy_requests",
     "exports", "keystore", "merged"}
)  # fmt: skip
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_HIDDEN_EVENT_COLUMNS = frozenset({"write_key_id", "request_id"})
"""The operator's plumbing (which key sent it, which HTTP request), not data about the person."""

Json = Any


class PackageKind(StrEnum):
    ACCESS = "access"
    PORTABILITY = "portability"


@dataclass(frozen=True)
class PackageRequest:
    """What the package says about the request it answers."""

    request_id: str
    kind: PackageKind
    regimes: tuple[str, ...]
    """The legal regimes the request was answered under (`gdpr`, `ccpa`): which rights to name."""
    made_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Package:
    files: Mapping[str, bytes]
    """By name, in the order they go into the zip."""

    def zip(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in self.files.items():
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o600 << 16
                archive.writestr(info, data)
        return buffer.getvalue()


def legal_bases(regimes: Iterable[Any], *, age: int | None = None) -> dict[Purpose, frozenset[LegalBasis]]:
    """Each purpose's legal bases under the subject's regimes (`policy.Regime` objects)."""
    chosen = list(regimes)
    return {p: frozenset(r.basis(p, age=age) for r in chosen) for p in Purpose}


# -- reading the document -------------------------------------------------------------------------


def _parts(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The survivor's stores, then each merged profile's: one person's data wherever it lies."""
    merged = document.get("merged")
    return (
        [document, *(m for m in merged if isinstance(m, Mapping))] if isinstance(merged, list) else [document]
    )


def _items(parts: Sequence[Mapping[str, Any]], store: str, part: str) -> list[Any]:
    found: list[Any] = []
    seen: set[bytes] = set()
    for held in parts:
        section = held.get(store)
        values = section.get(part) if isinstance(section, Mapping) else None
        for value in values if isinstance(values, list) else []:
            key = _dumps(value, sort=True)
            if key not in seen:  # a merged profile's export may repeat what the survivor holds
                seen.add(key)
                found.append(value)
    return found


def _inferred(atom: Atom | None, name: str) -> bool:
    if name.startswith("computed.") or (atom is not None and atom.source is Source.COMPUTED):
        return True
    category = atom.category if atom is not None else ""
    return category == INFERRED_CATEGORY or category.startswith(INFERRED_CATEGORY + ".")


@dataclass(frozen=True)
class _Sections:
    catalog: Catalog
    bases: Mapping[Purpose, frozenset[LegalBasis]]
    parts: Sequence[Mapping[str, Any]]

    @property
    def profile_section(self) -> Mapping[str, Any]:
        found = self.parts[0].get("profiles")
        return found if isinstance(found, Mapping) else {}

    def portable(self, purposes: Iterable[str]) -> bool:
        for name in purposes:
            if name == Purpose.ESSENTIAL.value:
                return True  # delivering the service the person signed up for: the contract
            if (
                name in Purpose.__members__.values()
                and self.bases.get(Purpose(name), frozenset()) & PORTABLE_BASES
            ):
                return True
        return False

    def atom_purposes(self, atom: Atom | None) -> list[str]:
        return sorted(str(p) for p in atom.purposes) if atom is not None else []

    # -- sections ---------------------------------------------------------------------------------

    def profile(self) -> dict[str, Json]:
        held = self.profile_section
        merged = []
        for part in self.parts[1:]:
            tomb = part.get("profiles")
            if isinstance(tomb, Mapping) and tomb:
                merged.append({k: tomb.get(k) for k in ("subject_id", "created_at", "merged_into")})
        keys = [p.get("keystore") for p in self.parts]
        return {
            "subject_id": held.get("subject_id"),
            "created_at": held.get("created_at"),
            "last_seen_at": held.get("last_seen_at"),
            "merged_profiles": merged,
            "data_keys_created_at": [k["key_created_at"] for k in keys if isinstance(k, Mapping) and k],
        }

    def identities(self) -> dict[str, Json]:
        return {
            "identities": [
                {"kind": i.get("kind"), "value": i.get("value"), "since": i.get("created_at")}
                for i in _items(self.parts, "profiles", "identities")
            ],
            "pending_links": _items(self.parts, "profiles", "pending_links"),
        }

    def traits(self, *, portable_only: bool) -> list[dict[str, Json]]:
        found: list[dict[str, Json]] = []
        for part in self.parts:
            section = part.get("profiles")
            if not isinstance(section, Mapping):
                continue
            for group in ("traits", "computed"):
                values = section.get(group)
                for name, value in sorted(values.items()) if isinstance(values, Mapping) else []:
                    atom = self.catalog.atoms.get(name)
                    inferred = group == "computed" or _inferred(atom, name)
                    purposes = self.atom_purposes(atom)
                    if portable_only and (inferred or atom is None or not self.portable(purposes)):
                        continue
                    found.append(
                        {
                            "atom": name,
                            "value": value,
                            "category": atom.category if atom is not None else None,
                            "inferred": inferred,
                            "source": "inferred" if inferred else "provided",
                            "purposes": purposes,
                        }
                    )
        return found

    def event_purposes(self, event: Mapping[str, Any]) -> list[str]:
        stored = event.get("purposes")
        if isinstance(stored, list):
            return [str(p) for p in stored]
        return self.atom_purposes(self.catalog.event_atom(event))

    def events(self, *, portable_only: bool) -> list[dict[str, Json]]:
        found = []
        for event in _items(self.parts, "collection", "events"):
            purposes = self.event_purposes(event)
            if portable_only and not self.portable(purposes):
                continue
            atom = self.catalog.event_atom(event)
            item = {k: v for k, v in event.items() if k not in _HIDDEN_EVENT_COLUMNS}
            found.append(item | {"purposes": purposes, "atom": atom.name if atom is not None else None})
        return sorted(found, key=lambda e: (str(e.get("timestamp")), str(e.get("id"))))

    def consent(self) -> list[dict[str, Json]]:
        return sorted(_items(self.parts, "consent", "events"), key=lambda e: str(e.get("at")))

    def quarantine(self) -> list[dict[str, Json]]:
        rows = _items(self.parts, "collection", "quarantine")
        return sorted(rows, key=lambda q: (str(q.get("received_at")), str(q.get("id"))))

    def decisions(self) -> list[dict[str, Json]]:
        found = [d | {"written": True} for d in _items(self.parts, "decisions", "decisions")]
        found += [d | {"written": False} for d in _items(self.parts, "decisions", "not_yet_written")]
        for decision in found:
            decision["explanation_text"] = _worded(decision.get("explanation"))
        return sorted(found, key=lambda d: str(d.get("decided_at") or ""))

    def realtime(self) -> list[dict[str, Json]]:
        held = [p.get("realtime_counters") for p in self.parts]
        return [dict(h) for h in held if isinstance(h, Mapping) and h]

    def requests(self) -> list[dict[str, Json]]:
        return _items(self.parts, "privacy_requests", "requests")

    def earlier_packages(self) -> list[dict[str, Json]]:
        return _items(self.parts, "exports", "packages")

    def other_stores(self) -> dict[str, Json]:
        found: dict[str, Json] = {}
        for index, part in enumerate(self.parts):
            for store, held in part.items():
                if store not in KNOWN_STORES and held:
                    found.setdefault(store, []).append({"profile": index, "held": held})
        return found

    def processing(
        self, traits: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]]
    ) -> dict[str, Json]:
        names = {str(t["atom"]) for t in traits} | {str(e["atom"]) for e in events if e.get("atom")}
        contexts = {_dumps(e.get("context"), sort=True): e.get("context") for e in events}
        found = list(contexts.values())
        for path, atom in self.catalog.stored_context:  # stored with the events they arrived on
            if any(_has(context, path) for context in found):
                names.add(atom.name)
        return package_text.processing(self.catalog, sorted(names), self.bases) | {
            "all_processing": records_of_processing(self.catalog)
        }


def _has(value: object, path: Sequence[str]) -> bool:
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return False
        value = value[key]
    return True


def _worded(raw: object) -> dict[str, Json] | None:
    if not isinstance(raw, Mapping):
        return None
    try:
        said = wording.sentences(Explanation.from_json(raw), wording.Language.EN)
    except (KeyError, TypeError, ValueError):
        return None  # an explanation this version cannot read: its codes are in the file
    return {
        "summary": list(said.summary),
        "data_used": list(said.data_used),
        "why_not_higher": list(said.why_not_higher),
        "what_would_change": list(said.what_would_change),
    }


# -- files ----------------------------------------------------------------------------------------


def _dumps(value: Json, *, indent: bool = False, sort: bool = False) -> bytes:
    """JSON text: orjson's, or the standard library's for what orjson refuses (integers past 64 bits,
    which a message may carry): a package is never refused for a value it holds."""
    option = (orjson.OPT_INDENT_2 if indent else 0) | (orjson.OPT_SORT_KEYS if sort else 0)
    try:
        return orjson.dumps(value, option=option, default=str)
    except orjson.JSONEncodeError:
        text = json.dumps(
            value, ensure_ascii=False, indent=2 if indent else None, sort_keys=sort, default=str
        )
        return text.encode()


def _json(value: Json) -> bytes:
    return _dumps(value, indent=True) + b"\n"


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else _dumps(value).decode()
    # A spreadsheet runs a cell that starts like a formula: the apostrophe keeps it text.
    return "'" + text if text.startswith(_FORMULA) else text


def table(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return buffer.getvalue().encode()


def _decision_row(decision: Mapping[str, Any]) -> dict[str, Any]:
    text = decision.get("explanation_text") or {}
    said = [*text.get("summary", []), *text.get("data_used", []), *text.get("why_not_higher", [])]
    return dict(decision) | {
        "atoms_read": " ".join(decision.get("atoms_read") or []),
        "explanation": " ".join(said),
    }


def _consent_row(entry: Mapping[str, Any]) -> dict[str, Any]:
    return dict(entry)


def _event_row(event: Mapping[str, Any]) -> dict[str, Any]:
    return dict(event) | {"purposes": " ".join(event.get("purposes") or [])}


def build(
    document: Mapping[str, Any],
    *,
    request: PackageRequest,
    catalog: Catalog,
    bases: Mapping[Purpose, frozenset[LegalBasis]],
) -> Package:
    """The package answering `request` from the subject's `document`."""
    sections = _Sections(catalog, bases, _parts(document))
    portability = request.kind is PackageKind.PORTABILITY
    traits = sections.traits(portable_only=portability)
    events = sections.events(portable_only=portability)
    identities = sections.identities()
    profile = sections.profile()
    files: dict[str, bytes] = {
        "identities.json": _json(identities),
        "traits.json": _json(traits),
        "events.json": _json(events),
        "events.csv": table(package_schema.EVENT_COLUMNS, map(_event_row, events)),
    }
    counts: dict[str, int] = {"traits": len(traits), "events": len(events)}
    counts["identities"] = len(identities["identities"])
    processing = sections.processing(traits, events)
    if not portability:
        consent = sections.consent()
        decisions = sections.decisions()
        more: dict[str, Json] = {
            "profile.json": profile,
            "consent_history.json": consent,
            "quarantine.json": sections.quarantine(),
            "decisions.json": decisions,
            "automated_decisions.json": package_text.decision_logic(),
            "processing.json": processing,
            "realtime.json": sections.realtime(),
            "privacy_requests.json": sections.requests(),
            "earlier_packages.json": sections.earlier_packages(),
            "other_stores.json": sections.other_stores(),
        }
        files |= {name: _json(value) for name, value in more.items()}
        files["consent_history.csv"] = table(package_schema.CONSENT_COLUMNS, map(_consent_row, consent))
        files["decisions.csv"] = table(package_schema.DECISION_COLUMNS, map(_decision_row, decisions))
        counts |= {
            "inferred_traits": sum(1 for t in traits if t["inferred"]),
            "consent_changes": len(consent),
            "quarantined": len(more["quarantine.json"]),
            "decisions": len(decisions),
            "privacy_requests": len(more["privacy_requests.json"]),
        }
    files["rights.json"] = _json(package_text.rights(catalog, request.regimes))
    summary = package_text.summary(
        request=request,
        catalog=catalog,
        counts=counts,
        events=events,
        processing=processing,
        profile=profile,
        files=sorted([*files, "README.txt", "manifest.json", "schema.json"]),
    )
    files["schema.json"] = _json(package_schema.SCHEMA)
    ordered: dict[str, bytes] = {"README.txt": summary.encode()}
    ordered["manifest.json"] = _json(
        _manifest(request, counts, {"README.txt": ordered["README.txt"], **files})
    )
    ordered |= dict(sorted(files.items()))
    return Package(ordered)


def _manifest(
    request: PackageRequest, counts: Mapping[str, int], files: Mapping[str, bytes]
) -> dict[str, Json]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "kind": request.kind.value,
        "request_id": request.request_id,
        "made_at": request.made_at.isoformat(),
        "expires_at": request.expires_at.isoformat(),
        "regimes": list(request.regimes),
        "counts": dict(counts),
        "files": [
            {
                "name": name,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "description": package_schema.DESCRIPTIONS.get(name, ""),
            }
            for name, data in sorted(files.items())
        ],
    }
