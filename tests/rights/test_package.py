"""The access and portability package: every section present and valid against the schema it carries,
CSV that parses back to the JSON's values, a summary in plain language, portability without what was
inferred or rests on neither consent nor the contract, and nobody else's data (DESIGN invariant 11)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
import zipfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tactful.collect.models import Event
from tactful.config import Settings
from tactful.consent import service as consent_service
from tactful.consent.fold import ConsentAction
from tactful.consent.schemas import ConsentChange
from tactful.crypto import Keystore
from tactful.decide import log as decision_log
from tactful.decide.assignment import Strategy
from tactful.decide.explain import AtomUse, Explanation
from tactful.decide.explain import Step as WhyNot
from tactful.decide.logbook import Logbook
from tactful.decide.walk import Skip
from tactful.policy.regimes import CCPA, GDPR
from tactful.policy.state import ConsentSource
from tactful.profiles.counters import InProcessCounters
from tactful.rights import package, package_schema
from tactful.rights.package import Package, PackageKind, PackageRequest
from tactful.rights.registry import RightsContext, export_all
from tactful.types import Level, Purpose
from tests.decide.test_logbook import entry
from tests.profiles.builders import T0, unique
from tests.rights.builders import Person, person
from tests.rights.requesting import DEMO

MADE = datetime(2026, 12, 6, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Held:
    """A person seeded in every store the package reads, and what must never leave with anyone else's."""

    person: Person
    message_ids: tuple[str, ...]
    secret: str
    """A value only this person's data holds."""
    counters: InProcessCounters

    @property
    def identifiers(self) -> tuple[str, ...]:
        p = self.person
        return (
            p.user_id,
            p.anonymous_id,
            p.email,
            str(p.survivor),
            str(p.merged),
            *self.message_ids,
            self.secret,
        )


def _event(session: Session, subject: uuid.UUID, name: str, purposes: list[str], **properties: object) -> str:
    message_id = unique("msg")
    session.add(
        Event(
            id=uuid.uuid4(),
            subject_id=subject,
            message_id=message_id,
            type="track",
            event=name,
            group_id=None,
            timestamp=T0,
            original_timestamp=None,
            received_at=T0,
            properties=dict(properties),
            traits={},
            context={"locale": "en-GB"},
            consent=None,
            gpc=None,
            purposes=purposes,
            write_key_id=uuid.uuid4(),
            request_id="req-1",
        )
    )
    return message_id


def _explanation() -> dict[str, object]:
    return Explanation(
        level=Level.MANY,
        ceiling=Level.MANY,
        strategy=Strategy.RULE,
        exploration=False,
        holdout=False,
        atoms=(AtomUse("context.location.country", "user.location.imprecise", 1.0),),
        legal_basis={"personalization.segments": "consent"},
        not_higher=(WhyNot(Level.SOME, Skip.ABOVE_CEILING.value),),
        would_change=(),
        consent_downgrade=False,
    ).to_json()


def seed(session: Session, keystore: Keystore) -> Held:
    counters = InProcessCounters()
    ada = person(session, keystore, counters)
    secret = unique("term")
    viewed = _event(session, ada.survivor, "Product Viewed", ["analytics", "personalization.behavioral"],
                    category="books", query=secret)  # fmt: skip
    ordered = _event(session, ada.survivor, "Order Completed", ["essential", "analytics"], total=12.5,
                     coupon="=HYPERLINK(\"http://x\")")  # fmt: skip
    grant = ConsentChange.for_purpose(
        Purpose.ANALYTICS, ConsentAction.GRANTED, ConsentSource.API, proof={"request_id": "req-7"}
    )
    consent_service.record(
        session, keystore=keystore, subject_id=ada.survivor, changes=[grant], at=T0, actor="t"
    )
    book = Logbook(lambda group: decision_log.write(session, entries=group, at=T0))
    book.add(replace(entry(ada.survivor), explanation=_explanation()))
    book.flush()
    session.flush()
    return Held(ada, (viewed, ordered), secret, counters)


def document(session: Session, keystore: Keystore, held: Held) -> dict[str, Any]:
    ctx = RightsContext(session=session, keystore=keystore, settings=Settings(), counters=held.counters)
    return export_all(ctx, held.person.merged)  # any id of the person leads to the whole family


def build(doc: dict[str, Any], kind: PackageKind, *, regimes: tuple[Any, ...] = (GDPR,)) -> Package:
    request = PackageRequest("prq_test", kind, ("gdpr",), MADE, MADE + timedelta(days=7))
    return package.build(doc, request=request, catalog=DEMO, bases=package.legal_bases(regimes))


def read(made: Package) -> dict[str, Any]:
    """The package as its schema reads it, through its zip."""
    found: dict[str, Any] = {}
    with zipfile.ZipFile(io.BytesIO(made.zip())) as archive:
        for name in archive.namelist():
            text = archive.read(name).decode()
            if name.endswith(".json"):
                found[name] = json.loads(text)
            elif name.endswith(".csv"):
                found[name] = list(csv.DictReader(io.StringIO(text, newline="")))
            else:
                found[name] = text
    return found


def valid(files: dict[str, Any]) -> None:
    errors = [str(e) for e in jsonschema_rs.validator_for(files["schema.json"]).iter_errors(files)]
    assert not errors, errors[:5]


@pytest.fixture
def ada(session: Session, keystore: Keystore) -> Held:
    return seed(session, keystore)


def test_an_access_package_holds_every_section_valid_against_its_schema(
    session: Session, keystore: Keystore, ada: Held
) -> None:
    files = read(build(document(session, keystore, ada), PackageKind.ACCESS))
    assert set(files) == set(package_schema.ACCESS_FILES)
    valid(files)
    assert files["schema.json"] == package_schema.SCHEMA
    assert {i["value"] for i in files["identities.json"]["identities"]} == {
        ada.person.user_id,
        ada.person.anonymous_id,
    }
    traits = {t["atom"]: t for t in files["traits.json"]}
    assert traits["traits.email"]["value"] == ada.person.email
    assert traits["traits.email"]["inferred"] is False
    assert traits["computed.favorite_category"]["inferred"] is True  # an inference, marked as one
    assert traits["computed.favorite_category"]["source"] == "inferred"
    assert {e["message_id"] for e in files["events.json"]} == set(ada.message_ids)
    assert all("write_key_id" not in e and "request_id" not in e for e in files["events.json"])
    [consent] = files["consent_history.json"]
    assert consent["proof"] == {"request_id": "req-7"}
    [decision] = files["decisions.json"]
    assert decision["explanation"]["level"] == "1:many"
    assert decision["explanation_text"]["summary"][0].startswith("What you see is chosen for a group")
    assert any("personal" in s for s in decision["explanation_text"]["why_not_higher"])
    assert files["profile.json"]["merged_profiles"][0]["subject_id"] == str(ada.person.merged)
    assert files["realtime.json"]  # the counters of the session
    logic = files["automated_decisions.json"]
    assert [level["level"] for level in logic["levels"]] == [str(level) for level in Level]
    processing = files["processing.json"]
    assert processing["controller"]["name"] == DEMO.controller.name
    held_atoms = {d["atom"]: d for d in processing["data"]}
    assert held_atoms["traits.email"]["recipients"] == ["Example Cloud GmbH", "Example Mail Inc."]
    assert held_atoms["events.order_completed"]["retention"] == "24 months after the latest"
    assert "context.locale" in held_atoms  # stored with the events, which carry it
    assert "context.page.url" not in held_atoms  # declared, but none of hers carries it
    assert any(r["outside_eea"] and r["safeguard"] for r in processing["recipients"])
    assert processing["all_processing"]["activities"]
    assert [r["right"] for r in files["rights.json"]["regimes"]["gdpr"]][-1] == "complaint"


def test_the_csv_files_parse_back_to_the_json_values(session: Session, keystore: Keystore, ada: Held) -> None:
    files = read(build(document(session, keystore, ada), PackageKind.ACCESS))
    for name, columns in (
        ("events", package_schema.EVENT_COLUMNS),
        ("consent_history", package_schema.CONSENT_COLUMNS),
        ("decisions", package_schema.DECISION_COLUMNS),
    ):
        rows, items = files[f"{name}.csv"], files[f"{name}.json"]
        assert len(rows) == len(items)
        assert all(list(row) == list(columns) for row in rows)
    by_id = {row["message_id"]: row for row in files["events.csv"]}
    order = next(e for e in files["events.json"] if e["event"] == "Order Completed")
    row = by_id[order["message_id"]]
    assert json.loads(row["properties"]) == order["properties"]
    assert row["purposes"].split() == order["purposes"]
    assert files["consent_history.csv"][0]["action"] == "granted"


def test_the_summary_says_what_is_held_why_and_how_to_complain(
    session: Session, keystore: Keystore, ada: Held
) -> None:
    files = read(build(document(session, keystore, ada), PackageKind.ACCESS))
    text = files["README.txt"]
    for said in (
        "prq_test",
        DEMO.controller.name,
        "Things you did on the site or app (events): 2",
        "inferred by us",
        "Why we use it",
        "How long we keep it",
        "Who receives it",
        "Example Mail Inc.",
        "Automated decisions",
        "supervisory authority",
        DEMO.controller.contact,
        "schema.json",
    ):
        assert said in text, said
    assert ada.person.email not in text  # counts and the catalog's words, never a value
    assert ada.secret not in text


def test_the_manifest_lists_every_file_with_its_digest(
    session: Session, keystore: Keystore, ada: Held
) -> None:
    made = build(document(session, keystore, ada), PackageKind.ACCESS)
    manifest = json.loads(made.files["manifest.json"])
    assert manifest["kind"] == "access"
    listed = {f["name"]: f for f in manifest["files"]}
    assert set(listed) == set(made.files) - {"manifest.json"}
    for name, data in made.files.items():
        if name != "manifest.json":
            assert listed[name]["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["counts"]["events"] == 2


def test_portability_holds_only_what_was_given_or_observed(
    session: Session, keystore: Keystore, ada: Held
) -> None:
    files = read(build(document(session, keystore, ada), PackageKind.PORTABILITY))
    assert set(files) == set(package_schema.PORTABILITY_FILES)
    valid(files)
    assert all(not t["inferred"] for t in files["traits.json"])
    atoms = {t["atom"] for t in files["traits.json"]}
    assert "traits.email" in atoms
    assert not any(a.startswith("computed.") for a in atoms)
    assert "data portability" in files["README.txt"]
    assert len(files["events.json"]) == 2  # under the GDPR every purpose but the service rests on consent


def test_portability_under_the_ccpa_leaves_out_what_rests_on_legitimate_interest(
    session: Session, keystore: Keystore, ada: Held
) -> None:
    files = read(build(document(session, keystore, ada), PackageKind.PORTABILITY, regimes=(CCPA,)))
    assert [e["event"] for e in files["events.json"]] == ["Order Completed"]  # the order: the contract
    assert {t["atom"] for t in files["traits.json"]} == {
        "traits.email",
        "traits.first_name",
        "traits.age_range",
    }


def test_another_persons_data_never_appears(session: Session, keystore: Keystore, ada: Held) -> None:
    bob = seed(session, keystore)  # the same kinds of data, a merge too
    for kind in PackageKind:
        made = build(document(session, keystore, ada), kind)
        with zipfile.ZipFile(io.BytesIO(made.zip())) as archive:
            text = "".join(archive.read(name).decode() for name in archive.namelist())
        for value in bob.identifiers:
            assert value not in text, value
        assert ada.person.user_id in text


def test_stores_the_package_does_not_know_are_kept_whole(
    session: Session, keystore: Keystore, ada: Held
) -> None:
    doc = document(session, keystore, ada) | {"models": {"features": [1, 2]}}
    files = read(build(doc, PackageKind.ACCESS))
    assert files["other_stores.json"] == {"models": [{"profile": 0, "held": {"features": [1, 2]}}]}


def test_an_empty_document_still_makes_every_section(session: Session, keystore: Keystore) -> None:
    files = read(build({}, PackageKind.ACCESS))
    valid(files)
    assert files["events.json"] == []
    assert files["events.csv"] == []


@given(st.lists(st.text(max_size=30), min_size=1, max_size=5))
def test_a_csv_cell_reads_back_as_its_value_and_never_as_a_formula(values: list[str]) -> None:
    columns = ("value",)
    text = package.table(columns, [{"value": v} for v in values]).decode()
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == len(values)
    for row, value in zip(rows, values, strict=True):
        cell = row["value"]
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
        assert (cell[1:] if value.startswith(("=", "+", "-", "@", "\t", "\r")) else cell) == value


_HELD_ATOMS = sorted(a.name for a in DEMO.atom_list if a.source.value in ("trait", "computed"))


@given(
    held=st.dictionaries(st.sampled_from(_HELD_ATOMS), st.text(max_size=8), max_size=len(_HELD_ATOMS)),
    purposes=st.lists(st.sets(st.sampled_from([str(p) for p in Purpose]), max_size=3), max_size=6),
    regimes=st.sets(st.sampled_from(["gdpr", "ccpa"]), min_size=1),
)
def test_portability_never_holds_an_inference_or_what_rests_on_neither_consent_nor_contract(
    held: dict[str, str], purposes: list[set[str]], regimes: set[str]
) -> None:
    chosen = tuple(r for r in (GDPR, CCPA) if r.name in regimes)
    profile = {
        "subject_id": "s",
        "traits": {k: v for k, v in held.items() if k.startswith("traits.")},
        "computed": {k: v for k, v in held.items() if k.startswith("computed.")},
    }
    at = T0.isoformat()
    events = [
        {"id": str(i), "message_id": f"m{i}", "type": "track", "event": "Product Viewed", "timestamp": at,
         "received_at": at, "properties": {}, "purposes": sorted(p)}
        for i, p in enumerate(purposes)
    ]  # fmt: skip
    doc = {"profiles": profile, "collection": {"events": events}}
    files = read(build(doc, PackageKind.PORTABILITY, regimes=chosen))
    bases = package.legal_bases(chosen)

    def portable(names: list[str]) -> bool:
        return any(n == "essential" or bases[Purpose(n)] & package.PORTABLE_BASES for n in names)

    for trait in files["traits.json"]:
        atom = DEMO.atoms[trait["atom"]]
        assert atom.source.value == "trait"
        assert not atom.category.startswith("user.derived")
        assert portable(trait["purposes"])
    assert [e["message_id"] for e in files["events.json"]] == [
        e["message_id"] for e in events if portable(e["purposes"])
    ]
    kept = {t["atom"] for t in files["traits.json"]}
    for name in profile["traits"]:
        atom = DEMO.atoms[name]
        if not atom.category.startswith("user.derived") and portable(sorted(str(p) for p in atom.purposes)):
            assert name in kept  # nothing given that qualifies is left out


def test_a_value_past_64_bits_is_written_as_it_is() -> None:
    huge = 2**70 + 1
    at = T0.isoformat()
    event = {"id": "1", "message_id": "m", "type": "track", "event": "Product Viewed", "timestamp": at,
             "received_at": at, "properties": {"count": huge}, "purposes": ["analytics"]}  # fmt: skip
    files = read(build({"collection": {"events": [event]}}, PackageKind.ACCESS))
    assert files["events.json"][0]["properties"] == {"count": huge}
    assert files["events.csv"][0]["properties"] == f'{{"count": {huge}}}'
