"""`tactful audiences count`: the stored profiles counted now, under the server's lease, and a table
(or JSON) of every audience's size and whether it serves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tactful.cli import app
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.decide import service as decide_service
from tactful.decide.schemas import AudienceCreate
from tactful.rights.models import ScheduleLease
from tests.decide import model_builders as build
from tests.decide.test_audience_count import _person
from tests.test_cli import env, run  # `env` is a fixture

__all__ = ["env"]

AUDIENCES = (
    AudienceCreate(key="lives_in_sweden", name="Lives in Sweden", condition={"traits.country": "SE"}),
    AudienceCreate(
        key="from_sweden", name="Visits from Sweden", condition={"context.location.country": "SE"}
    ),
)


@pytest.fixture
def database(env: dict[str, str]) -> Iterator[Database]:
    """Two Swedish customers, one Norwegian, and two audiences: one over the stored country."""
    assert run("migrate")[0] == 0
    database = Database(env["TACTFUL_DATABASE_URL"])
    keystore = Keystore(env["TACTFUL_KEYSTORE_URL"], secret_key=env["TACTFUL_SECRET_KEY"])
    keystore.create_schema()
    try:
        with database.session() as session:
            for country in ("SE", "SE", "NO"):
                _person(session, keystore, consent=True, country=country)
            for spec in AUDIENCES:
                decide_service.create_audience(
                    session, keystore=keystore, spec=spec, actor=build.ACTOR, at=datetime.now(UTC)
                )
        yield database
    finally:
        database.dispose()
        keystore.dispose()


def test_count_reads_every_stored_profile_and_says_how_each_audience_is_counted(database: Database) -> None:
    code, out, err = run("audiences", "count", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["profiles"] == 3
    assert document["audiences"] == [
        {"audience": "from_sweden", "counted": "decisions only", "matched": None, "estimated_size": 0,
         "serving": False},
        {"audience": "lives_in_sweden", "counted": "stored profiles", "matched": 2, "estimated_size": 2,
         "serving": False},
    ]  # fmt: skip
    wide = CliRunner().invoke(app, ["audiences", "count"], env={"COLUMNS": "200"})
    assert wide.exit_code == 0
    text = " ".join(wide.stderr.split())
    assert "lives_in_sweden" in text
    assert "decisions only" in text
    assert "3 stored profiles read" in text


def test_count_waits_for_a_server_counting_now(database: Database) -> None:
    with database.session() as session:
        until = datetime.now(UTC) + timedelta(hours=1)
        session.add(ScheduleLease(task="audience-count", lease_owner="server", lease_expires_at=until))
    code, out, err = run("audiences", "count")
    assert (code, out) == (1, "")
    assert "counting audiences now" in " ".join(err.split())
    with database.session() as session:
        session.execute(sa.update(ScheduleLease).values(lease_owner=None, lease_expires_at=None))
    assert run("audiences", "count")[0] == 0
