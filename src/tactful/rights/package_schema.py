"""The documented schema of an access or portability package (`schema.json` inside it): one JSON
Schema (2020-12) of the whole package read as an object, each file under its name. JSON files are
their parsed content, CSV files a list of rows (objects by the header's column names, every cell
text), `README.txt` a string. Plain data, written into every package as it is here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Json = Any

EVENT_COLUMNS: tuple[str, ...] = (
    "id", "timestamp", "type", "event", "atom", "message_id", "group_id", "original_timestamp",
    "received_at", "purposes", "properties", "traits", "context", "consent", "gpc",
)  # fmt: skip
CONSENT_COLUMNS: tuple[str, ...] = ("at", "target", "action", "source", "notice_version", "method", "proof")
DECISION_COLUMNS: tuple[str, ...] = (
    "decision_id", "decided_at", "placement", "experience", "variation", "level", "strategy",
    "propensity", "atoms_read", "legal_basis", "written", "explanation",
)  # fmt: skip

DESCRIPTIONS: Mapping[str, str] = {
    "README.txt": "this summary, in plain language",
    "manifest.json": "what the package is (access or portability), for which request, when it was made, "
    "how many items each part holds, and every file with its size and SHA-256",
    "schema.json": "a JSON Schema (2020-12) of every file",
    "profile.json": "your profile: its internal id, when it was created and last seen, and profiles of "
    "other browsers or devices merged into it",
    "identities.json": "the identifiers we know you by, and links to a browser id claimed but not yet proven",
    "traits.json": "profile details, each with its data category, its purposes and whether you gave it "
    "or we inferred it",
    "consent_history.json": "every consent choice you made, oldest first, with its proof",
    "consent_history.csv": "the consent history as a table",
    "events.json": "everything we stored of what you did on the site or app, oldest first",
    "events.csv": "the events as a table (nested fields as JSON text)",
    "quarantine.json": "messages about you that we received but did not store, and why",
    "decisions.json": "each decision about which content to show you: what it read, its legal basis, "
    "and its explanation in codes and in words",
    "decisions.csv": "the decisions as a table",
    "automated_decisions.json": "how these decisions are made (the logic involved)",
    "processing.json": "why we use your data, where it comes from, how long we keep it and who receives "
    "it, from the business's data catalog",
    "realtime.json": "running counts of your activity in the current session, kept for a short time",
    "privacy_requests.json": "the privacy requests you made",
    "earlier_packages.json": "earlier packages like this one, and how often each was downloaded",
    "other_stores.json": "data held in any other store, as that store exports it",
    "rights.json": "your rights, how to use them and how to complain",
}

_TEXT = {"type": "string"}
_MAYBE_TEXT = {"type": ["string", "null"]}
_MOMENT = {"type": "string", "format": "date-time"}
_MAYBE_MOMENT = {"type": ["string", "null"]}
_ANY_OBJECT = {"type": "object"}
_STRINGS = {"type": "array", "items": _TEXT}


def _object(properties: Mapping[str, Json], required: Sequence[str] | None = None) -> dict[str, Json]:
    return {"type": "object", "properties": dict(properties), "required": list(required or properties)}


def _list(item: Json) -> dict[str, Json]:
    return {"type": "array", "items": item}


def _rows(columns: Sequence[str]) -> dict[str, Json]:
    row = {
        "type": "object",
        "properties": dict.fromkeys(columns, _TEXT),
        "required": list(columns),
        "additionalProperties": False,
    }
    return _list(row)


_TRAIT = _object(
    {
        "atom": _TEXT,
        "value": {},
        "category": _MAYBE_TEXT,
        "inferred": {"type": "boolean"},
        "source": {"enum": ["provided", "inferred"]},
        "purposes": _STRINGS,
    }
)
_EVENT = _object(
    {
        "id": _TEXT,
        "message_id": _TEXT,
        "type": _TEXT,
        "event": _MAYBE_TEXT,
        "atom": _MAYBE_TEXT,
        "timestamp": _MOMENT,
        "received_at": _MOMENT,
        "properties": _ANY_OBJECT,
        "purposes": _STRINGS,
    }
)
_CONSENT = _object(
    {
        "at": _MOMENT,
        "target": _TEXT,
        "action": {"enum": ["granted", "denied", "withdrawn"]},
        "source": _TEXT,
        "notice_version": _MAYBE_TEXT,
        "method": _MAYBE_TEXT,
        "proof": _ANY_OBJECT,
    },
    required=["at", "target", "action", "source", "proof"],
)
_WORDS = _object(
    {"summary": _STRINGS, "data_used": _STRINGS, "why_not_higher": _STRINGS, "what_would_change": _STRINGS}
)
_DECISION = _object(
    {
        "decision_id": _TEXT,
        "placement": _TEXT,
        "level": {"enum": ["1:all", "1:many", "1:some", "1:few", "1:1"]},
        "explanation": {"type": ["object", "null"]},
        "explanation_text": {"oneOf": [_WORDS, {"type": "null"}]},
        "written": {"type": "boolean"},
    }
)
_MANIFEST = _object(
    {
        "format": {"const": "tactful-subject-export"},
        "version": {"const": 1},
        "kind": {"enum": ["access", "portability"]},
        "request_id": _TEXT,
        "made_at": _MOMENT,
        "expires_at": _MOMENT,
        "regimes": _STRINGS,
        "counts": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
        "files": _list(
            _object(
                {
                    "name": _TEXT,
                    "bytes": {"type": "integer", "minimum": 0},
                    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "description": _TEXT,
                }
            )
        ),
    }
)
_RIGHT = _object({"right": _TEXT, "law": _TEXT, "what": _TEXT})
_RIGHTS = _object(
    {
        "contact": _object(
            {"controller": _TEXT, "privacy_contact": _TEXT, "data_protection_officer": _MAYBE_TEXT}
        ),
        "how_to_use_them": _TEXT,
        "regimes": {"type": "object", "additionalProperties": _list(_RIGHT), "minProperties": 1},
    }
)
_PROCESSING = _object(
    {
        "controller": _object({"name": _TEXT, "contact": _TEXT, "establishment": _TEXT}),
        "purposes": _list(
            _object(
                {
                    "purpose": _TEXT,
                    "description": _TEXT,
                    "legal_basis": _TEXT,
                    "legal_basis_for_you": _STRINGS,
                }
            )
        ),
        "data": _list(
            _object(
                {
                    "atom": _TEXT,
                    "category": _TEXT,
                    "source": {"enum": ["context", "trait", "event", "computed"]},
                    "purposes": _STRINGS,
                    "retention": _TEXT,
                    "retention_days": {"type": "integer", "minimum": 0},
                    "recipients": _STRINGS,
                }
            )
        ),
        "recipients": _list(_object({"name": _TEXT, "role": _TEXT, "outside_eea": {"type": "boolean"}})),
        "sources": {"type": "object", "additionalProperties": _TEXT},
        "all_processing": _ANY_OBJECT,
    }
)
_LOGIC = _object(
    {
        "what_is_decided": _TEXT,
        "how": _STRINGS,
        "levels": _list(_object({"level": _TEXT, "meaning": _TEXT})),
        "strategies": _list(_object({"strategy": _TEXT, "meaning": _TEXT})),
        "your_choices": _TEXT,
    }
)

PORTABILITY_FILES: tuple[str, ...] = (
    "README.txt", "manifest.json", "schema.json", "identities.json", "traits.json", "events.json",
    "events.csv", "rights.json",
)  # fmt: skip
ACCESS_FILES: tuple[str, ...] = (
    *PORTABILITY_FILES, "profile.json", "consent_history.json", "consent_history.csv", "quarantine.json",
    "decisions.json", "decisions.csv", "automated_decisions.json", "processing.json", "realtime.json",
    "privacy_requests.json", "earlier_packages.json", "other_stores.json",
)  # fmt: skip

SCHEMA: dict[str, Json] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://tactful.dev/schemas/subject-export/1",
    "title": "A Tactful access or portability package",
    "description": "The package read as one object: each file under its name. A JSON file is its parsed "
    "content; a CSV file is the list of its rows, each an object from the header's column names to the "
    "cell's text (nested values as JSON text, lists of names separated by spaces, an empty cell for no "
    "value, and an apostrophe before text that would start like a spreadsheet formula); README.txt is "
    "its text. Times are ISO 8601 in UTC. Files: " + "; ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items()),
    "type": "object",
    "properties": {
        "README.txt": _TEXT,
        "manifest.json": _MANIFEST,
        "schema.json": _ANY_OBJECT,
        "profile.json": _object(
            {
                "subject_id": _MAYBE_TEXT,
                "created_at": _MAYBE_MOMENT,
                "last_seen_at": _MAYBE_MOMENT,
                "merged_profiles": _list(_ANY_OBJECT),
                "data_keys_created_at": _STRINGS,
            }
        ),
        "identities.json": _object(
            {
                "identities": _list(
                    _object(
                        {
                            "kind": {"enum": ["user_id", "anonymous_id", "email"]},
                            "value": _MAYBE_TEXT,
                            "since": _MAYBE_MOMENT,
                        }
                    )
                ),
                "pending_links": _list(_object({"created_at": _MOMENT, "expires_at": _MOMENT})),
            }
        ),
        "traits.json": _list(_TRAIT),
        "consent_history.json": _list(_CONSENT),
        "consent_history.csv": _rows(CONSENT_COLUMNS),
        "events.json": _list(_EVENT),
        "events.csv": _rows(EVENT_COLUMNS),
        "quarantine.json": _list(_object({"id": _TEXT, "reason": _TEXT, "received_at": _MOMENT})),
        "decisions.json": _list(_DECISION),
        "decisions.csv": _rows(DECISION_COLUMNS),
        "automated_decisions.json": _LOGIC,
        "processing.json": _PROCESSING,
        "realtime.json": _list(_ANY_OBJECT),
        "privacy_requests.json": _list(_object({"id": _TEXT, "type": _TEXT, "status": _TEXT})),
        "earlier_packages.json": _list(_ANY_OBJECT),
        "other_stores.json": _ANY_OBJECT,
        "rights.json": _RIGHTS,
    },
    "required": list(PORTABILITY_FILES),
    "additionalProperties": False,
    "if": {"properties": {"manifest.json": {"properties": {"kind": {"const": "access"}}}}},
    "then": {"required": list(ACCESS_FILES)},
    "else": {
        "not": {"anyOf": [{"required": [name]} for name in ACCESS_FILES if name not in PORTABILITY_FILES]}
    },
}
