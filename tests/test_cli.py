"""The command line: what scripts capture, what people read, and the exit codes."""

from __future__ import annotations

import json
import re
import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from tactful.cli import app, port_in_use, workers_need_redis
from tactful.collect.models import Quarantine
from tactful.config import Settings
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.demo.generate import DemoConfig
from tactful.errors import ConfigurationError, NotAuthenticated
from tactful.keys import service as keys_service
from tactful.main import default_catalog_path
from tactful.rights.models import ScheduleLease

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


def test_catalog_check_warns_of_retention_past_the_defaults_and_passes(tmp_path: Path) -> None:
    code, _, err = run("catalog", "check", default_catalog_path())
    assert "longer than" not in err, "the demo keeps within the defaults"
    long = tmp_path / "long.yaml"
    demo = yaml.safe_load(Path(default_catalog_path()).read_text())
    demo["atoms"]["events.page_viewed"]["retention"] = "13mo"
    for name in ("computed.last_seen", "computed.event_counts", "computed.favorite_category"):
        demo["atoms"][name].pop("retention")  # inherit their inputs' shortest
    long.write_text(yaml.safe_dump(demo))
    code, _, err = run("catalog", "check", str(long))
    assert code == 0, "a warning, not a refusal"
    assert "events.page_viewed" in err
    assert "kept 13 months, longer than the 1 month" in " ".join(err.split())
    assert "is valid" in " ".join(err.split())


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
    for store in ("quarantine", "message ids", "decisions", "all stores"):
        assert store in err


def test_retention_dry_run_shows_what_would_go_and_leaves_it(env: dict[str, str]) -> None:
    assert run("migrate")[0] == 0
    database = Database(env["TACTFUL_DATABASE_URL"])
    try:
        with database.session() as session:
            session.add(Quarantine(id=uuid.uuid4(), subject_id=None, reason="invalid", detail="expired",
                                   received_at=datetime(2020, 1, 1, tzinfo=UTC),
                                   expires_at=datetime(2020, 2, 1, tzinfo=UTC)))  # fmt: skip

        def held() -> int:
            with database.session() as session:
                return session.scalar(sa.select(sa.func.count()).select_from(Quarantine)) or 0

        code, out, err = run("retention", "run", "--dry-run", "--json")
        assert code == 0
        document = json.loads(out)
        assert document["dry_run"] is True
        assert {"store": "quarantine", "category": "quarantined messages", "action": "delete", "rows": 1} in (
            document["rows"]
        )
        assert held() == 1, "a dry run removes nothing"
        code, _, err = run("retention", "run", "--dry-run")
        assert "dry run" in err
        assert held() == 1
        with database.session() as session:  # a server's sweep in progress
            until = datetime.now(UTC) + timedelta(hours=1)
            session.add(ScheduleLease(task="retention", lease_owner="server", lease_expires_at=until))
        code, _, err = run("retention", "run")
        assert code == 1
        assert "running the retention sweep now" in " ".join(err.split())
        assert held() == 1
        with database.session() as session:
            session.execute(sa.update(ScheduleLease).values(lease_owner=None, lease_expires_at=None))
        code, out, _ = run("retention", "run", "--json")
        assert code == 0
        assert json.loads(out)["total"] == 1
        assert held() == 0
    finally:
        database.dispose()


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


def invoke(*args: str) -> tuple[int, str, str]:
    """Like `run`, and the command ended on its own terms: no exception escaped to the runner."""
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_a_configuration_error_is_one_line_naming_the_variable(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TACTFUL_LIMITS__MAX_EVENT_BYTES", "lots")
    code, out, err = invoke("keys", "list")
    assert code == 1
    assert out == ""
    [line] = lines(err)
    assert "TACTFUL_LIMITS__MAX_EVENT_BYTES is invalid" in line
    assert "valid integer" in line
    assert "lots" not in line, "values are not repeated: they may be secrets"
    assert "Traceback" not in err

    monkeypatch.delenv("TACTFUL_LIMITS__MAX_EVENT_BYTES")
    monkeypatch.setenv("TACTFUL_MODE", "production")
    monkeypatch.delenv("TACTFUL_SECRET_KEY")
    code, _, err = invoke("migrate")
    assert code == 1
    [line] = lines(err)
    assert "TACTFUL_SECRET_KEY must be set" in line
    assert "TACTFUL_:" not in line


def test_a_secrets_file_that_cannot_be_written_is_one_line(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TACTFUL_SECRET_KEY")
    monkeypatch.setenv("TACTFUL_SECRETS_FILE", str(tmp_path / "missing" / "secrets.json"))
    code, _, err = invoke("keys", "list")
    assert code == 1
    [line] = lines(err)
    assert "TACTFUL_SECRETS_FILE" in line


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (held, not listening: connections are refused)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port: int = held.getsockname()[1]
    return port


@pytest.mark.parametrize("command", [("keys", "list"), ("migrate",), ("audit", "verify")])
def test_an_unreachable_database_is_one_line_with_its_url_but_no_password(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    port = _closed_port()
    monkeypatch.setenv("TACTFUL_DATABASE_URL", f"postgresql://tactful:s3cret-pw@127.0.0.1:{port}/shop")
    code, out, err = invoke(*command)
    assert code == 1
    assert out == ""
    [line] = lines(err)
    assert f"cannot use the database at postgresql+psycopg://tactful@127.0.0.1:{port}/shop" in line
    assert "TACTFUL_DATABASE_URL" in line
    assert "s3cret-pw" not in err


def test_an_unopenable_sqlite_database_is_one_line(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TACTFUL_DATABASE_URL", "sqlite:////nonexistent-directory/tactful.db")
    monkeypatch.setenv("TACTFUL_SUBJECT_TOKEN_SECRET", "cli-test-token-secret-of-sufficient-length")
    code, _, err = invoke("migrate")
    assert code == 1
    [line] = lines(err)
    assert "cannot use the database at sqlite:////nonexistent-directory/tactful.db" in line


def test_revoking_a_revoked_key_says_when_and_fails(env: dict[str, str]) -> None:
    assert invoke("migrate")[0] == 0
    _, key, _ = invoke("keys", "create", "--scope", "write")
    code, _, err = invoke("keys", "revoke", key.strip())
    assert code == 0
    assert "revoked" in err
    assert "already" not in err
    code, _, err = invoke("keys", "revoke", key.strip())
    assert code == 1
    [line] = lines(err)
    assert re.search(r"already revoked at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00; nothing changed", line)
    code, listing, _ = invoke("keys", "list", "--json")
    [row] = [json.loads(item) for item in listing.splitlines()]
    assert row["revoked"] in line, "the time it was first revoked, unchanged"


COMMANDS = [
    (),
    ("serve",),
    ("migrate",),
    ("demo",),
    ("keys",),
    ("keys", "create"),
    ("keys", "list"),
    ("keys", "revoke"),
    ("secret", "rotate"),
    ("catalog",),
    ("catalog", "check"),
    ("catalog", "report"),
    ("catalog", "drift"),
    ("audit", "verify"),
    ("retention", "run"),
    ("audiences", "count"),
    ("simulate",),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "tactful")
def test_help_shows_flags_without_a_type_and_values_by_name(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    assert "--help" in result.stdout
    options = result.stdout.split("Options")[-1]
    assert "<bool>" not in options
    assert "<str>" not in options
    assert "<int" not in options


def test_help_names_what_values_are() -> None:
    text = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "160"}).stdout
    assert re.search(r"--port\s+PORT", text)
    assert re.search(r"--host\s+HOST", text)
    assert re.search(r"--database-url\s+URL", text)
    text = CliRunner().invoke(app, ["keys", "list", "--help"], env={"COLUMNS": "160"}).stdout
    assert re.search(r"--json\s+One JSON object", text)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ports `serve`/`demo` would have served on: the server itself is not started."""
    ports: list[int] = []
    monkeypatch.setattr("tactful.cli._serve", lambda settings, host, port, workers=1: ports.append(port))
    return ports


def test_demo_with_its_port_taken_says_which_flag_picks_another_before_any_work(
    env: dict[str, str], served: list[int], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = invoke("demo", "--port", str(port))
        assert code == 1
        assert out == ""
        [line] = lines(err)
        assert f"port {port} on 127.0.0.1 is already in use" in line
        assert "--port" in line
        assert "API keys" not in err
        assert served == []
        assert not (tmp_path / "main.db").exists(), "nothing migrated or seeded"
        code, _, err = invoke("serve", "--port", str(port))
        assert code == 1
        assert "--port" in err


def test_several_workers_without_redis_are_refused_with_the_fix(
    env: dict[str, str], served: list[int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TACTFUL_REDIS_URL", raising=False)
    code, out, err = invoke("serve", "--workers", "2", "--port", str(_closed_port()))
    assert code == 1
    assert out == ""
    [line] = lines(err)
    assert "--workers 2 needs Redis" in line
    assert "set TACTFUL_REDIS_URL, or serve with one worker" in line
    assert served == []
    assert not (tmp_path / "main.db").exists(), "refused before anything was opened"
    assert workers_need_redis(Settings(redis_url="redis://cache.internal:6379/0"), 4) is None
    assert workers_need_redis(Settings(), 1) is None


def test_demo_run_twice_says_once_that_it_is_already_seeded(
    env: dict[str, str], served: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tactful.demo.seed.DemoConfig", lambda: DemoConfig(seed=5, customers=10, days=2))
    port = _closed_port()
    code, _, first = invoke("demo", "--port", str(port))
    assert code == 0, first
    assert "seeded the demo shop" in first
    assert len(KEY.findall(first)) == 3
    code, _, second = invoke("demo", "--port", str(port))
    assert code == 0, second
    assert served == [port, port]
    assert "seeding the demo shop" not in second, "no progress bar when there is nothing to do"
    assert [line for line in lines(second) if "seeded" in line] == [
        "the demo shop is already seeded: keys are not shown again (create one with `tactful keys create`)"
    ]
    assert not KEY.search(second)
    assert f"http://127.0.0.1:{port}/docs" in second
    for text in (first, second):  # the demo's placements, and a decision to try on this port
        assert "greeting: greeting_by_name (1:1), default (1:all)" in text
        assert f'curl -u "tfk_server_...:" http://127.0.0.1:{port}/v1/decide' in text


def test_the_port_check_sees_a_bound_socket_and_a_free_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert port_in_use("127.0.0.1", taken.getsockname()[1])
    assert not port_in_use("127.0.0.1", _closed_port())


def test_catalog_drift_lists_dropped_fields_as_a_table_and_as_json(env: dict[str, str]) -> None:
    from tactful.catalog.loader import load_catalog
    from tactful.collect import service as collect_service
    from tactful.collect.schemas import Source
    from tactful.config import Settings
    from tests.collect.builders import policy_context

    assert invoke("migrate")[0] == 0
    code, _, err = invoke("catalog", "drift")
    assert code == 0
    assert "no undeclared fields" in err
    database = Database(env["TACTFUL_DATABASE_URL"])
    keystore = Keystore(env["TACTFUL_KEYSTORE_URL"], secret_key=env["TACTFUL_SECRET_KEY"])
    settings = Settings()  # the one the CLI reads, from the same environment
    consent = {"consent": {"categoryPreferences": {"analytics": True}}}
    messages = [
        {
            "type": "track",
            "event": "Product Viewed",
            "anonymousId": f"a-{n}",
            "context": consent,
            "properties": p,
        }
        for n, p in enumerate([{"color": "red", "size": "M"}, {"color": "blue"}])
    ]
    with database.session() as session:
        collect_service.ingest(
            session,
            keystore=keystore,
            messages=messages,
            source=Source(trusted=True),
            at=datetime.now(UTC),
            limits=settings.limits,
            policy=policy_context(load_catalog(default_catalog_path()), settings.policy),
        )
    database.dispose()
    keystore.dispose()

    code, out, _ = invoke("catalog", "drift", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["fields"][:2] == [
        {"field": "properties.color", "count": 2, "aggregate": False},
        {"field": "properties.size", "count": 1, "aggregate": False},
    ]
    assert report["total"] == sum(f["count"] for f in report["fields"])
    result = CliRunner().invoke(app, ["catalog", "drift"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    rows = [line for line in result.stdout.splitlines() if "properties." in line]
    assert re.search(r"properties\.color\s.*\s2\s", rows[0])
    assert re.search(r"properties\.size\s.*\s1\s", rows[1])
