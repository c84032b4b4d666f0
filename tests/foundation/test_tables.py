"""`tactful.tables` names every module that defines a table of the main database: a module with
tables missing from it would be invisible to Alembic's autogenerate and to the registry test."""

from __future__ import annotations

import json
import subprocess
import sys

_LISTED = "import tactful.tables"
_EVERYTHING = """
import importlib, pkgutil, tactful
for module in pkgutil.walk_packages(tactful.__path__, "tactful."):
    if not module.name.endswith("__main__"):  # runs the command line
        importlib.import_module(module.name)
"""
_TABLES = "from tactful.db import Base; import json; print(json.dumps(sorted(Base.metadata.tables)))"


def _tables(imports: str) -> list[str]:
    # A fresh interpreter each: what one import pulls in must not hide behind another's.
    done = subprocess.run(
        [sys.executable, "-c", f"{imports}\n{_TABLES}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    found: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_every_module_with_tables_is_listed() -> None:
    everything = _tables(_EVERYTHING)
    assert "pending_links" in everything
    assert _tables(_LISTED) == everything
