"""One real server process for the HTTP benchmark: uvicorn on a free port over durable SQLite files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.stores import SECRET, Stores
from tactful.keys import service as keys_service
from tactful.keys.schemas import Scope
from tactful.types import utcnow

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Server:
    url: str
    write_key: str
    pid: int


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def create_write_key(stores: Stores) -> str:
    db, keystore = stores.open()
    try:
        with db.session() as session:
            _, token = keys_service.create_key(
                session, keystore=keystore, name="benchmark", scope=Scope.WRITE, at=utcnow(), actor="bench"
            )
        return token
    finally:
        db.dispose()
        keystore.dispose()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def running_server(stores: Stores, log: Path, *, startup_seconds: float = 60.0) -> Iterator[Server]:
    """Start the server, wait until it answers `/healthz`, and stop it (by its pid) afterwards."""
    write_key = create_write_key(stores)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TACTFUL_")}
    env |= {
        "TACTFUL_DATABASE_URL": stores.url,
        "TACTFUL_KEYSTORE_URL": stores.keystore_url,
        "TACTFUL_SECRET_KEY": SECRET,
        "TACTFUL_LOG_LEVEL": "WARNING",
        # One client at peak from one address: the rate limiter runs (its cost is in the figures)
        # but with windows far above any load this benchmark can send.
        "TACTFUL_RATE_LIMITS__PER_KEY": "100000000",
        "TACTFUL_RATE_LIMITS__PER_KEY_AND_ADDRESS": "100000000",
    }
    # The real command a deployment runs; WARNING also turns uvicorn's access log off.
    command = [sys.executable, "-m", "tactful", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not answer /healthz in time")
            time.sleep(0.1)
        yield Server(url=url, write_key=write_key, pid=process.pid)
    finally:
        _stop(process)
