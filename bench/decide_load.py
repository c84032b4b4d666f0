"""The pieces of an HTTP benchmark of decisions: servers pinned to a core, and a keep-alive load.

    serving(command, env, log, cpu=…)  a server process on a free port, pinned, until it answers /healthz
    closed_loop(…, concurrency, seconds)  clients each sending as soon as their answer arrived: the peak
    open_loop(…, rate, seconds)  a fixed arrival rate; latency from each scheduled start, so that a
                                 server falling behind cannot hide its queue (coordinated omission)
    on_cpu(cpu)                  this process (the load generator) pinned for the duration
    process_cpu_seconds(pid)     a server's CPU time, every thread: its cost per request, which a busy
                                 machine disturbs less than its throughput

The client is aiohttp over keep-alive connections (its C parser keeps the measuring side light), as
`bench.load` for ingestion; the client's CPU time is taken per run, so that a saturated client shows.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench.load import client_session, post
from bench.server import ROOT, free_port


@dataclass(frozen=True)
class Served:
    url: str
    pid: int


@dataclass(frozen=True)
class Closed:
    requests: int
    seconds: float
    errors: int
    client_cpu_seconds: float
    server_cpu_seconds: float | None
    """The server process's CPU time (all its threads) over the run; None where /proc is missing."""

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class Opened:
    rate: float
    seconds: float
    latencies_ms: tuple[float, ...]
    errors: int


# -- the servers -----------------------------------------------------------------------------------


def _pinned(cpu: int | None) -> Any:
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def serving(command: list[str], env: dict[str, str], log: Path, *, cpu: int | None) -> Iterator[Served]:
    """Run `command` (a server on a free port, given as `{port}`), pinned to `cpu`; its URL once it
    answers `/healthz`. Stopped by its pid."""
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in command]
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, preexec_fn=_pinned(cpu)
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{argv[2]} exited with {process.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{argv[2]} did not answer /healthz in time")
            time.sleep(0.1)
        yield Served(url, process.pid)
    finally:
        _stop(process)


def process_cpu_seconds(pid: int) -> float | None:
    """User and system CPU time of process `pid` so far, every thread included (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the load --------------------------------------------------------------------------------------


DECIDE = "/v1/decide"


async def _warm(client: aiohttp.ClientSession, bodies: Sequence[bytes], connections: int) -> None:
    # Every connection open before the clock starts.
    await asyncio.gather(*(post(client, bodies[i % len(bodies)], path=DECIDE) for i in range(connections)))


async def _closed(
    server: Served, token: str, bodies: Sequence[bytes], concurrency: int, seconds: float
) -> Closed:
    done = errors = 0
    async with client_session(server.url, token, concurrency) as client:
        await _warm(client, bodies, concurrency)
        cpu = time.process_time()
        server_cpu = process_cpu_seconds(server.pid)
        started = time.perf_counter()
        deadline = started + seconds

        async def worker(offset: int) -> None:
            nonlocal done, errors
            i = offset
            while time.perf_counter() < deadline:
                errors += await post(client, bodies[i % len(bodies)], path=DECIDE) != 200
                done += 1
                i += concurrency

        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
        used = time.process_time() - cpu
        server_now = process_cpu_seconds(server.pid)
    served = None if server_cpu is None or server_now is None else server_now - server_cpu
    return Closed(
        requests=done, seconds=elapsed, errors=errors, client_cpu_seconds=used, server_cpu_seconds=served
    )


def closed_loop(
    server: Served, token: str, bodies: Sequence[bytes], *, concurrency: int, seconds: float
) -> Closed:
    """`concurrency` clients for `seconds`, each sending as soon as its previous answer arrived."""
    return asyncio.run(_closed(server, token, bodies, concurrency, seconds))


async def _open(url: str, token: str, bodies: Sequence[bytes], rate: float, seconds: float) -> Opened:
    latencies: list[float] = []
    errors = 0

    async def send(client: aiohttp.ClientSession, body: bytes, scheduled: float) -> None:
        nonlocal errors
        status = await post(client, body, path=DECIDE)
        latencies.append((time.perf_counter() - scheduled) * 1000)
        errors += status != 200

    async with client_session(url, token, 64) as client:
        await _warm(client, bodies, 8)
        tasks: list[asyncio.Task[None]] = []
        started = time.perf_counter()
        for index in range(max(1, round(rate * seconds))):
            scheduled = started + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(client, bodies[index % len(bodies)], scheduled)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return Opened(rate=rate, seconds=elapsed, latencies_ms=tuple(latencies), errors=errors)


def open_loop(server: Served, token: str, bodies: Sequence[bytes], *, rate: float, seconds: float) -> Opened:
    """Requests at `rate` per second for `seconds` whatever the answers, each timed from its schedule
    (a server that falls behind cannot hide its queue)."""
    return asyncio.run(_open(server.url, token, bodies, rate, seconds))


@contextmanager
def on_cpu(cpu: int | None) -> Iterator[None]:
    """This process on `cpu` for the duration (the load generator's core)."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
