"""Details hold flat scalars only, and malformed entries are refused before anything is written."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.crypto import Keystore
from tactful.errors import InvalidInput
from tests.audit.builders import at

REFUSED_DETAILS: list[Any] = [
    {"traits": {"email": "someone@example.com"}},
    {"items": [1, 2, 3]},
    {"tags": ("a", "b")},
    {"set": {1}},
    {"raw": b"bytes"},
    {"subject": uuid.uuid4()},
    {"when": at(0)},
    {"ratio": float("nan")},
    {"ratio": float("inf")},
    {"text": "nul\x00byte"},
    {"text": "x" * (audit_service.MAX_TEXT + 1)},
    {"n": 2**63},
    {1: "non-string key"},
    {"": "empty key"},
    {f"k{i}": i for i in range(audit_service.MAX_DETAILS + 1)},
    ["not", "a", "mapping"],
]


@pytest.mark.parametrize("details", REFUSED_DETAILS, ids=lambda d: type(d).__name__)
def test_refuses_details_that_are_not_flat_scalars(
    session: Session, keystore: Keystore, details: Any
) -> None:
    with pytest.raises(InvalidInput):
        audit_service.append(
            session, keystore=keystore, action="tests.refused", actor="system", at=at(0), details=details
        )
    assert audit_service.head(session) is None


def test_accepts_flat_scalars_and_stores_integral_floats_as_integers(
    session: Session, keystore: Keystore
) -> None:
    entry = audit_service.append(
        session,
        keystore=keystore,
        action="tests.accepted",
        actor="system",
        at=at(0),
        details={"s": "ok", "i": -3, "f": 0.25, "whole": 2.0, "b": True, "none": None},
    )
    assert entry.details == {"s": "ok", "i": -3, "f": 0.25, "whole": 2, "b": True, "none": None}
    assert type(entry.details["whole"]) is int


@pytest.mark.parametrize(
    "action", ["keys", "Keys.created", "keys.", ".created", "keys created", "keys.créé", ""]
)
def test_refuses_actions_that_are_not_dotted_names(session: Session, keystore: Keystore, action: str) -> None:
    with pytest.raises(InvalidInput):
        audit_service.append(session, keystore=keystore, action=action, actor="system", at=at(0))


@pytest.mark.parametrize("actor", ["", "x" * 201, "nul\x00"])
def test_refuses_bad_actors(session: Session, keystore: Keystore, actor: str) -> None:
    with pytest.raises(InvalidInput):
        audit_service.append(session, keystore=keystore, action="tests.actor", actor=actor, at=at(0))


def test_refuses_naive_times(session: Session, keystore: Keystore) -> None:
    with pytest.raises(InvalidInput):
        audit_service.append(
            session, keystore=keystore, action="tests.time", actor="system", at=datetime(2026, 1, 1)
        )
