"""A real Tactful server process for end-to-end tests: `python -m tactful serve` on a free port,
configured through `TACTFUL_*` variables as in production, stopped by its pid. Also a static web site
on a port of its own, a second origin for pages that call the server from a browser."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(settings: Mapping[str, str], log: Path, *, startup_seconds: float = 30.0) -> Iterator[str]:
    """Start `tactful serve` with these `TACTFUL_*` settings; yield its base URL once it answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TACTFUL_")} | dict(settings)
    env["TACTFUL_LOG_LEVEL"] = "WARNING"
    command = [sys.executable, "-m", "tactful", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.1)
        yield url
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # pytest shows stderr of failed tests; a line per file fetched would bury the failure


@contextmanager
def static_site(directory: Path) -> Iterator[str]:
    """Serve the files under `directory` on a free port of 127.0.0.1 from a thread; yield its origin.

    The origin differs from the server's by its port, so a page loaded from here calls the server
    cross-origin, as a shop's pages call Tactful."""
    site = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(directory)))
    site.daemon_threads = True
    thread = threading.Thread(target=site.serve_forever, name="static-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}"
    finally:
        site.shutdown()
        site.server_close()
        thread.join(timeout=10)
