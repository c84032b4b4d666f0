"""`tactful privacy request|status|export|erase`: the operator's requests from the command line."""

from __future__ import annotations

import json
import stat
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tactful.catalog.loader import load_catalog
from tactful.cli import app
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.main import default_catalog_path
from tactful.profiles import service as profiles_service

SECRET = "cli-test-secret-key-of-sufficient-length"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    variables = {
        "TACTFUL_DATABASE_URL": f"sqlite:///{tmp_path / 'main.db'}",
        "TACTFUL_KEYSTORE_URL": f"sqlite:///{tmp_path / 'keys.db'}",
        "TACTFUL_SECRET_KEY": SECRET,
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TACTFUL_CONFIG_FILE", raising=False)
    assert run("migrate")[0] == 0
    return variables


def run(*args: str, given: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=given)
    return result.exit_code, result.stdout, result.stderr


def held(env: dict[str, str], user_id: str) -> None:
    database = Database(env["TACTFUL_DATABASE_URL"])
    keystore = Keystore(env["TACTFUL_KEYSTORE_URL"], secret_key=SECRET)
    now = datetime.now(UTC)
    try:
        with database.session() as session:
            subject = profiles_service.resolve(
                session, keystore=keystore, anonymous_id=None, user_id=user_id, at=now
            )
            profiles_service.apply_traits(
                session,
                keystore=keystore,
                catalog=load_catalog(default_catalog_path()),
                subject_id=subject.subject_id,
                traits={"first_name": "Ada"},
                at=now,
            )
    finally:
        database.dispose()
        keystore.dispose()


def found(env: dict[str, str], user_id: str) -> bool:
    database = Database(env["TACTFUL_DATABASE_URL"])
    keystore = Keystore(env["TACTFUL_KEYSTORE_URL"], secret_key=SECRET)
    try:
        with database.session() as session:
            return profiles_service.find_subject(session, keystore=keystore, user_id=user_id) is not None
    finally:
        database.dispose()
        keystore.dispose()


def test_a_request_is_filed_and_its_status_read(env: dict[str, str]) -> None:
    held(env, "ada-1815")
    code, out, _ = run("privacy", "request", "objection", "--user-id", "ada-1815")
    assert code == 0
    request_id = out.strip()
    assert request_id.startswith("prq_")
    code, out, _ = run("privacy", "status", request_id, "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["id"] == request_id
    assert shown["type"] == "objection"
    assert shown["status"] == "verified"  # the server's jobs run it
    assert run("privacy", "status", request_id)[0] == 0
    code, _, err = run("privacy", "status", "prq_nothing_like_it")
    assert code == 1
    assert "no privacy request" in err


def test_an_export_runs_here_and_prints_its_receipt(env: dict[str, str]) -> None:
    held(env, "ada-1815")
    code, out, err = run("privacy", "export", "--user-id", "ada-1815")
    assert code == 0, err
    receipt = json.loads(out)
    assert receipt["status"] == "completed"
    assert receipt["receipt"]["steps"]["export"]["held"]["profiles"]["traits"] == 1
    assert "Ada" not in out


def test_an_erasure_asks_first_then_erases(env: dict[str, str]) -> None:
    held(env, "ada-1815")
    code, _, _ = run("privacy", "erase", "--user-id", "ada-1815", given="n\n")
    assert code == 1
    assert found(env, "ada-1815")
    code, out, err = run("privacy", "erase", "--user-id", "ada-1815", "--yes")
    assert code == 0, err
    receipt = json.loads(out)["receipt"]
    assert receipt["steps"]["destroy_keys"]["keys_destroyed"] == 1
    assert not found(env, "ada-1815")


def test_a_person_is_named_by_exactly_one_identifier(env: dict[str, str]) -> None:
    code, _, err = run("privacy", "request", "access", "--user-id", "a", "--email", "a@example.com")
    assert code == 1
    assert "exactly one" in err
    code, _, err = run("privacy", "request", "rectification", "--user-id", "a", "--change", "shoe_size=42")
    assert code == 1
    assert "shoe_size" in err
    code, out, _ = run(
        "privacy", "request", "rectification", "--user-id", "a", "--change", "first_name=Augusta"
    )
    assert code == 0
    assert out.strip().startswith("prq_")


def _zip_names(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as archive:
        assert "Ada" in archive.read("traits.json").decode()
        return set(archive.namelist())


def test_an_export_writes_its_package_to_a_new_file(env: dict[str, str], tmp_path: Path) -> None:
    held(env, "ada-1815")
    target = tmp_path / "ada.zip"
    code, out, err = run("privacy", "export", "--user-id", "ada-1815", "--output", str(target))
    assert code == 0, err
    request_id = json.loads(out)["id"]
    assert "README.txt" in _zip_names(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    code, _, err = run("privacy", "export", request_id, "--output", str(target))
    assert code == 1
    assert "exists already" in err
    again = tmp_path / "again.zip"
    assert run("privacy", "export", request_id, "-o", str(again))[0] == 0  # the operator's copy: not a use
    assert _zip_names(again) == _zip_names(target)


def test_an_open_request_named_by_its_id_runs_here_first(env: dict[str, str], tmp_path: Path) -> None:
    held(env, "ada-1815")
    request_id = run("privacy", "request", "portability", "--user-id", "ada-1815")[1].strip()
    target = tmp_path / "mine.zip"
    code, out, err = run("privacy", "export", request_id, "--output", str(target))
    assert code == 0, err
    assert json.loads(out)["status"] == "completed"
    assert "decisions.json" not in _zip_names(target)  # portability: what the person gave or did


def test_an_export_names_a_request_it_can_write(env: dict[str, str], tmp_path: Path) -> None:
    held(env, "ada-1815")
    target = tmp_path / "x.zip"
    assert "no privacy request" in run("privacy", "export", "prq_unknown", "-o", str(target))[2]
    objection = run("privacy", "request", "objection", "--user-id", "ada-1815")[1].strip()
    assert "only access and portability" in run("privacy", "export", objection, "-o", str(target))[2]
    assert "name either" in run("privacy", "export", objection, "--user-id", "ada-1815")[2]
    nobody = run("privacy", "request", "access", "--user-id", "nobody")[1].strip()
    code, _, err = run("privacy", "export", nobody, "-o", str(target))
    assert code == 1
    assert "no package" in err
    assert not target.exists()


def test_the_operator_marks_what_became_of_telling_a_recipient(env: dict[str, str]) -> None:
    held(env, "ada")
    code, out, _ = run("privacy", "erase", "--user-id", "ada", "--yes")
    assert code == 0
    request_id = json.loads(out)["id"]
    code, out, _ = run(
        "privacy", "recipient", request_id, "hosting", "--status", "sent", "--detail", "TICKET-7", "--json"
    )
    assert code == 0
    tasks = {task["recipient"]: task["status"] for task in json.loads(out)}
    assert tasks["hosting"] == "sent"
    assert set(tasks.values()) - {"sent"} <= {"pending"}  # the others are still the operator's to do
    code, _, err = run("privacy", "recipient", request_id, "nobody", "--status", "sent")
    assert code == 1
    assert "no task for that recipient" in err
    code, _, err = run("privacy", "recipient", "prq_unknown", "hosting", "--status", "failed")
    assert code == 1
    assert "no privacy request has this id" in err
    assert run("privacy", "recipient", request_id, "hosting", "--status", "pending")[0] == 2  # not a choice
    code, _, err = run(
        "privacy", "recipient", request_id, "hosting", "--status", "sent", "--detail", "x" * 201
    )
    assert code == 1
    assert "--detail" in err
