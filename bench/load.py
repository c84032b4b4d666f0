"""HTTP load: closed loop (N clients as fast as they can, to find the peak) and open loop (a fixed
arrival rate, to measure latency at a given load).

Open-loop latencies run from each request's *scheduled* start, not its actual one: when the client
falls behind, the wait counts, so a slow server cannot hide its queue (coordinated omission).

The client is aiohttp, whose C parser keeps the measuring side light: the load generator shares the
machine with the server, and with httpx a round trip of an empty request took about 2 ms more.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from tactful.demo.generate import Message


@dataclass(frozen=True)
class ClosedLoop:
    batches: int
    events: int
    seconds: float
    errors: int

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds


@dataclass(frozen=True)
class OpenLoop:
    rate: float
    seconds: float
    latencies_ms: tuple[float, ...]
    errors: int


def bodies(batches: Sequence[Sequence[Message]]) -> list[bytes]:
    """Serialised `/v1/batch` bodies, built before the clock starts."""
    return [json.dumps({"batch": list(batch)}).encode() for batch in batches]


def client_session(url: str, key: str, connections: int) -> aiohttp.ClientSession:
    """Keep-alive connections to `url` with `key` as HTTP Basic user, JSON bodies (every load here)."""
    basic = base64.b64encode(f"{key}:".encode()).decode()
    return aiohttp.ClientSession(
        base_url=url,
        headers={"Content-Type": "application/json", "Authorization": f"Basic {basic}"},
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=60.0),
    )


async def post(client: aiohttp.ClientSession, payload: bytes, *, path: str = "/v1/batch") -> int:
    """POST one body and read the whole answer; its status."""
    async with client.post(path, data=payload) as response:
        await response.read()
        return response.status


async def _warm(client: aiohttp.ClientSession) -> None:
    async with client.get("/healthz") as response:  # a connection open before the clock starts
        await response.read()


async def _closed(
    url: str, write_key: str, payloads: list[bytes], events: int, concurrency: int
) -> ClosedLoop:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for payload in payloads:
        queue.put_nowait(payload)
    errors = 0

    async def worker(client: aiohttp.ClientSession) -> None:
        nonlocal errors
        while True:
            try:
                payload = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            errors += await post(client, payload) != 200

    async with client_session(url, write_key, concurrency) as client:
        await _warm(client)
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return ClosedLoop(batches=len(payloads), events=events, seconds=seconds, errors=errors)


def closed_loop(
    url: str, write_key: str, payloads: list[bytes], *, events: int, concurrency: int
) -> ClosedLoop:
    """Send every payload with `concurrency` clients, each as soon as its previous answer arrives."""
    return asyncio.run(_closed(url, write_key, payloads, events, concurrency))


async def _open(url: str, write_key: str, payloads: list[bytes], rate: float) -> OpenLoop:
    latencies: list[float] = []
    errors = 0

    async def send(client: aiohttp.ClientSession, payload: bytes, scheduled: float) -> None:
        nonlocal errors
        status = await post(client, payload)
        latencies.append((time.perf_counter() - scheduled) * 1000)
        errors += status != 200

    async with client_session(url, write_key, 64) as client:
        await _warm(client)
        tasks: list[asyncio.Task[None]] = []
        started = time.perf_counter()
        for index, payload in enumerate(payloads):
            scheduled = started + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(client, payload, scheduled)))
        await asyncio.gather(*tasks)
        seconds = time.perf_counter() - started
    return OpenLoop(rate=rate, seconds=seconds, latencies_ms=tuple(latencies), errors=errors)


def open_loop(url: str, write_key: str, payloads: list[bytes], *, rate: float) -> OpenLoop:
    """Send the payloads at `rate` per second whatever the answers, timing each from its schedule."""
    return asyncio.run(_open(url, write_key, payloads, rate))
