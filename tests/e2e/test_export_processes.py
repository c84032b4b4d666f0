"""An access request end to end over two real server processes sharing one database and one export
folder: filed through one, run by the servers' own job workers, its package checked with HEAD and
downloaded through the other, each use counted once its body is whole."""

from __future__ import annotations

import io
import time
import zipfile
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tactful.api.context import AppContext
from tactful.audit.models import AuditEntry
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tactful.rights.models import PrivacyExport
from tests.api.builders import app_context, bearer, issue
from tests.api.test_public_key_trust import identify, track, uid
from tests.backends import migrated_database
from tests.e2e.server import serving

pytestmark = pytest.mark.slow

SECRET = "export-process-secret-key-of-sufficient-length"


def _downloads(context: AppContext) -> list[int]:
    with context.session() as session:
        return list(session.scalars(select(PrivacyExport.downloads)))


def _audit(context: AppContext) -> list[tuple[str, object]]:
    """The last audit entries, to say what happened when the count does not come."""
    with context.session() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(5)).all()
        return [(r.action, r.details) for r in rows]


def test_a_package_made_by_one_server_is_downloaded_from_another(backend: str, tmp_path: Path) -> None:
    keys_url = f"sqlite:///{tmp_path / 'keys.db'}"
    keystore = Keystore(keys_url, secret_key=SECRET)
    keystore.create_schema()
    with migrated_database(backend, tmp_path) as db, ExitStack() as stack:
        context = app_context(db, keystore)
        server, admin = issue(context, Scope.SERVER), issue(context, Scope.ADMIN)
        settings = {
            "TACTFUL_DATABASE_URL": db.url,
            "TACTFUL_KEYSTORE_URL": keys_url,
            "TACTFUL_SECRET_KEY": SECRET,
            "TACTFUL_PRIVACY__EXPORT_DIR": str(tmp_path / "exports"),
            "TACTFUL_PRIVACY__JOB_POLL_SECONDS": "0.2",
        }
        first, second = (stack.enter_context(serving(settings, tmp_path / f"server-{n}.log")) for n in (1, 2))
        user, email = uid("user"), f"{uid('ada')}@example.com"
        consent = {"user_id": user, "source": "api", "purposes": {"analytics": True}}
        assert httpx.put(f"{first}/v1/consent", json=consent, headers=bearer(server)).status_code == 200
        sent = identify(user, {"email": email, "first_name": "Ada"})
        assert httpx.post(f"{first}/v1/identify", json=sent, headers=bearer(server)).status_code == 200
        assert (
            httpx.post(f"{first}/v1/track", json=track(user_id=user), headers=bearer(server)).status_code
            == 200
        )

        body = {"type": "access", "user_id": user, "verified_by": "operator"}
        filed = httpx.post(f"{first}/v1/privacy/requests", json=body, headers=bearer(admin))
        assert filed.status_code == 202, filed.text
        deadline = time.monotonic() + 30
        while (
            answer := httpx.get(
                f"{second}/v1/privacy/requests/{filed.json()['id']}", headers=bearer(admin)
            ).json()
        )["status"] != "completed":
            assert time.monotonic() < deadline, answer
            time.sleep(0.2)
        url = f"{second}{answer['download_url']}"

        head = httpx.head(url, headers=bearer(admin))
        assert head.status_code == 200
        assert _downloads(context) == [0]
        with httpx.stream("GET", url, headers=bearer(admin)) as response:
            assert response.status_code == 200
            data = response.read()
        assert len(data) == int(response.headers["content-length"])
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert email in archive.read("traits.json").decode()
        deadline = time.monotonic() + 10
        while _downloads(context) != [1]:  # recorded once the server saw the last byte leave
            assert time.monotonic() < deadline, _audit(context)
            time.sleep(0.05)
    keystore.dispose()
