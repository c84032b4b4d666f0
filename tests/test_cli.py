"""The command line: what scripts capture, what people read, and the exit codes."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from tactful.cli import app
from tactful.collect.models import Quarantine
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.errors import ConfigurationError, NotAuthenticated
from tactful.keys import service as keys_service
from tactful.main import default_catalog_path

KEY = re.compile(r"tfk_(write|server|admin)_[0-9a-f]{32}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    variables = {
        "TACTFUL_DATABASE_URL": f"sqlite:///{tmp_path / 'main.db'}",
        "TACTFUL_KEYSTORE_URL": f"sqlite:///{tmp_path / 'keys.db'}",
        "TACTFUL_SECRET_KEY": "cli-test-secret-key-of-sufficient-length",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TACTFUL_CONFIG_FILE", raising=False)
    return variables


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_unmigrated_database_is_refused_with_the_fix(env: dict[str, str]) -> None:
    code, out, err = run("keys", "create", "--scope", "write")
    assert code == 1
    assert out == ""
    assert "tactful migrate" in " ".join(err.split())


def test_key_lifecycle(env: dict[str, str]) -> None:
    assert run("migrate")[0] == 0
    code, out, _ = run("keys", "create", "--scope", "server", "--name", "checkout backend")
    assert code == 0
    assert KEY.fullmatch(out.strip()), "the key alone on standard output, for scripts"
    key = out.strip()
    database = Database(env["TACTFUL_DATABASE_URL"])
    with database.session() as session:
        assert keys_service.authenticate(session, token=key).name == "checkout backend"

    code, listing, _ = run("keys", "list", "--json")
    assert code == 0
    [row] = [json.loads(line) for line in listing.splitlines()]
    assert row["name"] == "checkout backend"
    assert row["scope"] == "server"
    assert row["revoked"] is None
    assert key.split("_", 3)[3] not in listing, "secrets are never listed"
    assert run("keys", "list")[0] == 0

    assert run("keys", "revoke", row["prefix"])[0] == 0
    with database.session() as session, pytest.raises(NotAuthenticated):
        keys_service.authenticate(session, token=key)
    code, _, err = run("keys", "revoke", "not-a-key")
    assert code == 1
    assert "not a key id" in err
    code, _, err = run("audit", "verify")
    assert code == 0
    assert "intact" in err
    database.dispose()


def test_catalog_check_and_report(env: dict[str, str], tmp_path: Path) -> None:
    code, _, err = run("catalog", "check", default_catalog_path())
    assert code == 0
    assert "is valid" in err
    bad = tmp_path / "bad.yaml"
    demo = yaml.safe_load(Path(default_catalog_path()).read_text())
    demo["atoms"]["traits.religion"] = {
        "category": "user.sensitive.religion",
        "purposes": ["personalization.individual"],
        "retention": "1y",
    }
    bad.write_text(yaml.safe_dump(demo))
    code, _, err = run("catalog", "check", str(bad))
    assert code == 1
    assert "traits.religion" in err
    assert "explicit_consent" in err

    code, _, _ = run("catalog", "report", "--out", str(tmp_path / "records"))
    assert code == 0
    markdown = (tmp_path / "records" / "records-of-processing.md").read_text()
    records = json.loads((tmp_path / "records" / "records-of-processing.json").read_text())
    assert "Art. 30" in markdown
    assert records


def test_secret_rotation_rewraps_keys(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("migrate")[0] == 0
    subject = uuid.uuid4()
    before = Keystore(env["TACTFUL_KEYSTORE_URL"], secret_key=env["TACTFUL_SECRET_KEY"])
    token = before.encrypt(subject, "ada@example.com", context="traits.email")
    before.dispose()
    new_secret = "a-rotated-secret-key-of-sufficient-length"
    monkeypatch.setenv("TACTFUL_NEW_SECRET_KEY", new_secret)
    code, _, err = run("secret", "rotate")
    assert code == 0
    assert "re-wrapped 1 keys" in err
    old = Keystore(env["TACTFUL_KEYSTORE_URL"], secret_key=env["TACTFUL_SECRET_KEY"])
    with pytest.raises(ConfigurationError):
        old.decrypt(subject, token, context="traits.email")
    old.dispose()
    rotated = Keystore(env["TACTFUL_KEYSTORE_URL"], secret_key=new_secret)
    assert rotated.decrypt(subject, token, context="traits.email") == "ada@example.com"
    rotated.dispose()
    monkeypatch.setenv("TACTFUL_NEW_SECRET_KEY", "short")
    code, _, err = run("secret", "rotate")
    assert code == 1
    assert "at least 32" in err


def test_retention_run_reports_every_store(env: dict[str, str]) -> None:
    assert run("migrate")[0] == 0
    code, _, err = run("retention", "run")
    assert code == 0
    for store in ("profiles", "events", "quarantine", "message_ids"):
        assert store in err


def test_audit_verify_prints_the_head_and_finds_a_tail_cut_below_an_expected_head(
    env: dict[str, str],
) -> None:
    assert run("migrate")[0] == 0
    for name in ("first", "second"):
        assert run("keys", "create", "--scope", "write", "--name", name)[0] == 0  # each one audited
    code, out, err = run("audit", "verify")
    assert code == 0
    assert "intact" in err
    assert "keyed from entry 1" in err
    recorded = out.strip()
    assert re.fullmatch(r"2:[0-9a-f]{64}", recorded), "the head alone on standard output, for scripts"
    assert run("keys", "create", "--scope", "write", "--name", "third")[0] == 0
    code, out, _ = run("audit", "verify", "--expect-head", recorded)
    assert code == 0
    assert out.strip().startswith("3:")

    database = Database(env["TACTFUL_DATABASE_URL"])
    with database.session() as session:
        session.execute(sa.text("DELETE FROM audit_log WHERE seq >= 2"))
    database.dispose()
    assert run("audit", "verify")[0] == 0  # alone, a chain cannot see its tail cut off
    code, _, err = run("audit", "verify", "--expect-head", recorded)
    assert code == 1
    assert "truncated" in err
    assert "head 1:" in err

    code, _, err = run("audit", "verify", "--expect-head", "not-a-head")
    assert code == 1
    assert "SEQ:HASH" in err


def test_the_audit_chain_verifies_after_secret_rotation(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("migrate")[0] == 0
    assert run("keys", "create", "--scope", "admin")[0] == 0
    new_secret = "a-rotated-secret-key-of-sufficient-length"
    monkeypatch.setenv("TACTFUL_NEW_SECRET_KEY", new_secret)
    assert run("secret", "rotate")[0] == 0
    monkeypatch.setenv("TACTFUL_SECRET_KEY", new_secret)
    assert run("keys", "create", "--scope", "write")[0] == 0
    code, out, err = run("audit", "verify")
    assert code == 0, err
    assert out.strip().startswith("2:")


def test_migrate_seals_quarantined_messages_kept_in_clear(env: dict[str, str]) -> None:
    assert run("migrate")[0] == 0
    database = Database(env["TACTFUL_DATABASE_URL"])
    with database.session() as session:
        session.add(
            Quarantine(
                id=uuid.uuid4(),
                reason="missing_identity",
                detail="",
                raw='{"type":"track","traits":{"email":"old@example.com"}}',
                received_at=datetime(2026, 1, 1, tzinfo=UTC),
                expires_at=datetime(2026, 1, 31, tzinfo=UTC),
            )
        )
    code, _, err = run("migrate")
    assert code == 0
    assert "sealed 1 quarantined" in err
    with database.session() as session:
        raw, sealed = session.execute(sa.text("SELECT raw, raw_enc FROM quarantine")).one()
    database.dispose()
    assert raw is None
    assert b"old@example.com" not in sealed
    assert "sealed" not in run("migrate")[2]  # nothing left in clear
