"""Operations: liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from tactful.api.context import Context
from tactful.db import schema_status
from tactful.errors import KeystoreLocked

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database answers, its migrations are current, the secret key opens the keystore",
    responses={
        503: {
            "description": "Database unreachable or behind the code's migrations, keystore unreachable or "
            "wrapped under another TACTFUL_SECRET_KEY (`locked`)"
        }
    },
)
def readyz(context: Context) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with context.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
        current, head = schema_status(context.db.engine)
        checks["migrations"] = "ok" if current == head else f"at {current or 'none'}, code needs {head}"
    except Exception as exc:
        checks.setdefault("database", f"unreachable: {type(exc).__name__}")
    try:
        # Unwrapping a key proves more than a reachable database: that this process's secret key is
        # the one the keystore is wrapped under (it differs after `tactful secret rotate` until a
        # restart with the new key), else every request that reads a subject's keys fails.
        context.keystore.system.check_kek()
        checks["keystore"] = "ok"
    except KeystoreLocked:
        checks["keystore"] = "locked: the keystore is wrapped under another TACTFUL_SECRET_KEY"
    except Exception as exc:
        checks["keystore"] = f"unreachable: {type(exc).__name__}"
    if context.redis is not None:
        try:
            context.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks}, status_code=200 if ready else 503
    )
