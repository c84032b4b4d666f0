"""Rate limits on the routes a public key can reach: the write key sits in web pages, so anyone can
send with it, and nothing else stops a script from flooding collection or consent.

    request ──▶ the key-scope dependency of its route (`deps.RequireScope`, `deps.ScopeDeclaration`)
        │ the key: Authorization header; else `writeKey` in a collection body (read once, bounded,
        │ and left in place for the handler)
        ▼
    key id and scope read from the key's own text, no database (`tfk_<scope>_<id>_<secret>`): a
    forged scope or id fails authentication right after, so it buys nothing but a 401
        │ no well-formed key, or a scope not limited (server and admin keys by default) ──▶ admit
        ▼
    window of (key id, keyed hash of the client address) ── full ──▶ 429 RateLimited, Retry-After
        ▼
    window of the key id ── full ──▶ 429 RateLimited, Retry-After
        ▼
    authentication, then the handler: nothing of a refused request is read, stored or half done

    store: in memory (one process), or Redis when TACTFUL_REDIS_URL is set (the limit holds across
    processes). Redis unreachable ──▶ admit, warn once per `store_retry_seconds`, count: collection
    must not go down because the limiter's store did.

The address window is checked first, so a client over its own limit stops counting against its
key's: one flooding address cannot use up the budget of every visitor. Client addresses are personal
data: they reach the store only as keyed hashes, which also expire with their window, and they reach
no log line.
"""

from __future__ import annotations

import hmac
import logging
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from fastapi import Request
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import RedisStorage, Storage
from limits.strategies import FixedWindowRateLimiter
from starlette.concurrency import run_in_threadpool

from tactful.collect.limits import BodyReader, check_content_length, parse_json, too_large
from tactful.config import Limits, RateLimits, Settings
from tactful.errors import InvalidInput, PayloadTooLarge, TactfulError
from tactful.keys.schemas import Scope

log = logging.getLogger("tactful.ratelimit")

_KEY_FRONT = re.compile(r"tfk_(write|server|admin)_([0-9a-f]{32})_")
REDIS_TIMEOUT_SECONDS = 0.25
"""Connect and read timeout of the limiter's Redis client: a limit not known by then is not worth
holding a request for (it is admitted, see `store_retry_seconds`)."""


class Limit(StrEnum):
    """Which window refused a request (a metric label and the problem's `limit`)."""

    KEY_AND_ADDRESS = "key_and_address"
    KEY = "key"
    PRIVACY_FILING = "privacy_filing"
    """Privacy requests filed with one key from one address (each may start a job)."""


class RateLimited(TactfulError):
    """429: too many requests for one key, or for one key from one address, in the current window."""

    code = "rate_limited"

    def __init__(self, message: str, *, limit: Limit, retry_after: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.retry_after = retry_after


@dataclass(frozen=True)
class Caller:
    """What a key says of itself before it is checked: enough to pick windows, trusted for nothing."""

    key_id: str
    scope: Scope


def caller_of(token: str | None) -> Caller | None:
    match = _KEY_FRONT.match(token) if token else None
    return Caller(key_id=match[2], scope=Scope(match[1])) if match else None


@dataclass(frozen=True)
class Counts:
    """What this process refused and admitted unchecked since it started (for `/metrics`)."""

    refused: dict[Limit, int]
    store_unavailable: int


@dataclass(slots=True)
class _Window:
    expiry: float
    count: int = 0


class SweptMemoryStorage(Storage):
    """Fixed-window counters in this process's memory, with expired windows swept inline instead of
    by a timer thread.

    limits' own memory storage restarts a `threading.Timer` on every increment when the last one has
    run: two threads can start the same timer (RuntimeError in a request), and its sweep reads keys
    another thread may have just dropped (KeyError in the timer thread; limits PR #352,
    flask-limiter #130). The only way to change that there is to override a private, name-mangled
    method that any release may rename, so this storage is written on limits' public extension API
    instead: the abstract methods of `limits.storage.Storage`, which is all `FixedWindowRateLimiter`
    calls. Each call holds the storage's own lock; a window is dropped when it is read after its
    expiry, and every expired one, at most once per `SWEEP_EVERY` seconds, by the increment that
    comes due. `clock` is the wall clock (`get_expiry` answers a time stamp, as limits' storages do).
    """

    SWEEP_EVERY = 1.0

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._clock = clock
        self._lock = threading.Lock()
        self.windows: dict[str, _Window] = {}
        self._next_sweep = clock() + self.SWEEP_EVERY

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ()  # nothing here fails as a store can: no error to wrap in StorageError

    def _live(self, key: str, now: float) -> _Window | None:
        window = self.windows.get(key)
        if window is not None and window.expiry <= now:
            del self.windows[key]
            return None
        return window

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.SWEEP_EVERY
        for key in [key for key, window in self.windows.items() if window.expiry <= now]:
            del self.windows[key]

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add `amount` to the key's window, opening one of `expiry` seconds if none is open."""
        with self._lock:
            now = self._clock()
            self._sweep(now)
            window = self._live(key, now)
            if window is None:
                window = self.windows[key] = _Window(now + expiry)
            window.count += amount
            return window.count

    def get(self, key: str) -> int:
        with self._lock:
            window = self._live(key, self._clock())
            return 0 if window is None else window.count

    def get_expiry(self, key: str) -> float:
        """When the key's window closes (now when none is open)."""
        with self._lock:
            now = self._clock()
            window = self._live(key, now)
            return now if window is None else window.expiry

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self._lock:
            count = len(self.windows)
            self.windows.clear()
            return count

    def clear(self, key: str) -> None:
        with self._lock:
            self.windows.pop(key, None)


class RateLimiter:
    """The process's limiter over one store. Fixed windows, deliberately.

    A fixed window is one counter per (limit, key): one increment per check (in Redis, one Lua call
    that increments and sets the expiry) and constant memory. A moving window keeps a timestamp per
    admitted request, hundreds of entries per key at these rates, per client address, in Redis; what
    it buys is smoothing at window boundaries, where a fixed window lets a burst of up to twice the
    limit through within a short time. Against floods that bound is enough, and the window's reset
    time gives an exact Retry-After.
    """

    def __init__(
        self, settings: RateLimits, *, storage: Storage | None, address_secret: bytes, body_limits: Limits
    ) -> None:
        self.settings = settings
        self.body_limits = body_limits
        self._scopes = frozenset(Scope(scope) for scope in settings.scopes)
        self._storage = storage
        self._shared = isinstance(storage, RedisStorage)
        self._limiter = FixedWindowRateLimiter(storage) if storage is not None else None
        self._address_key = hmac.new(address_secret, b"tactful rate limit addresses", "sha256").digest()
        self._per_address = self._item(settings.per_key_and_address)
        self._per_key = self._item(settings.per_key)
        self._per_filing = (
            RateLimitItemPerSecond(settings.privacy_filings, settings.privacy_filing_window_seconds)
            if settings.privacy_filings > 0
            else None
        )
        self._count_lock = threading.Lock()
        self._refused: Counter[Limit] = Counter()
        self._store_unavailable = 0
        self._down_until = 0.0

    def _item(self, amount: int) -> RateLimitItem | None:
        return RateLimitItemPerSecond(amount, self.settings.window_seconds) if amount > 0 else None

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        """Memory storage in one process; Redis storage (under the deployment's key prefix) when
        `redis_url` is set, so that every process counts against the same windows."""
        rate = settings.rate_limits
        storage: Storage | None = None
        if rate.enabled and settings.redis_url:
            storage = RedisStorage(
                settings.redis_url,
                key_prefix=f"{settings.redis_prefix}ratelimit",
                wrap_exceptions=True,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
            )
        elif rate.enabled:
            storage = SweptMemoryStorage()
        secret = settings.secret_key.get_secret_value().encode()
        return cls(rate, storage=storage, address_secret=secret, body_limits=settings.limits)

    @property
    def enabled(self) -> bool:
        return self._limiter is not None

    @property
    def shared(self) -> bool:
        """Whether the windows live in Redis (a check is then a network round trip)."""
        return self._shared

    def limits(self, scope: Scope) -> bool:
        """Whether keys of `scope` are limited."""
        return self.enabled and scope in self._scopes

    def counts(self) -> Counts:
        with self._count_lock:
            return Counts(refused=dict(self._refused), store_unavailable=self._store_unavailable)

    def _address(self, host: str) -> str:
        return hmac.new(self._address_key, host.encode("utf-8", "surrogatepass"), "sha256").hexdigest()[:32]

    def check(self, caller: Caller | None, *, host: str) -> None:
        """Count one request of `caller` from `host`; RateLimited when a window is full. Blocking:
        with Redis, call it from a worker thread (`acheck`)."""
        limiter = self._limiter
        if caller is None or limiter is None or caller.scope not in self._scopes:
            return
        if self._shared and time.monotonic() < self._down_until:
            self._count_unavailable()
            return
        windows = (
            (Limit.KEY_AND_ADDRESS, self._per_address, ("address", caller.key_id, self._address(host))),
            (Limit.KEY, self._per_key, ("key", caller.key_id)),
        )
        try:
            for limit, item, identifiers in windows:
                if item is not None and not limiter.hit(item, *identifiers):
                    self._refuse(limit, item, identifiers)
        except StorageError as error:
            self._store_failed(error)

    def check_filing(self, caller: Caller | None, *, host: str) -> None:
        """Count one privacy request filed by `caller` from `host`, in a window of its own: a filing
        can start an export or an erasure, so far fewer are admitted than other requests."""
        limiter, item = self._limiter, self._per_filing
        if caller is None or limiter is None or item is None or caller.scope not in self._scopes:
            return
        if self._shared and time.monotonic() < self._down_until:
            self._count_unavailable()
            return
        identifiers = ("privacy", caller.key_id, self._address(host))
        try:
            if not limiter.hit(item, *identifiers):
                self._refuse(Limit.PRIVACY_FILING, item, identifiers)
        except StorageError as error:
            self._store_failed(error)

    async def acheck(self, caller: Caller | None, *, host: str) -> None:
        """`check` from the event loop: inline in memory (no thread hop), in a worker with Redis."""
        if caller is None or not self.limits(caller.scope):
            return
        if self._shared:
            await run_in_threadpool(self.check, caller, host=host)
        else:
            self.check(caller, host=host)

    def _refuse(self, limit: Limit, item: RateLimitItem, identifiers: tuple[str, ...]) -> None:
        assert self._limiter is not None
        with self._count_lock:
            self._refused[limit] += 1
        window = item.get_expiry()
        try:
            reset = self._limiter.get_window_stats(item, *identifiers).reset_time
            retry_after = min(window, max(1, math.ceil(reset - time.time())))
        except StorageError:
            retry_after = window
        whose = {
            Limit.KEY_AND_ADDRESS: "this key from this address",
            Limit.KEY: "this key",
            Limit.PRIVACY_FILING: "privacy requests filed with this key from this address",
        }[limit]
        raise RateLimited(
            f"too many requests for {whose}: at most {item.amount} every {window} s; "
            f"retry after {retry_after} s",
            limit=limit,
            retry_after=retry_after,
        )

    def _count_unavailable(self) -> None:
        with self._count_lock:
            self._store_unavailable += 1

    def _store_failed(self, error: StorageError) -> None:
        # Only the error's type: its message names the store's address, and no request data.
        self._count_unavailable()
        retry = self.settings.store_retry_seconds
        self._down_until = time.monotonic() + retry
        log.warning(
            "rate limit store unreachable (%s); admitting requests without rate limits for %.0f s",
            type(error.storage_error).__name__,
            retry,
        )


# -- from a request ----------------------------------------------------------------------------


def limiter_of(request: Request) -> RateLimiter | None:
    """The app's limiter (`create_app` builds it), or None for an app built without one."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    return limiter


def client_host(request: Request) -> str:
    # The peer as the server reports it (uvicorn's `--forwarded-allow-ips` decides which proxies may
    # name the client): a client cannot pick its own bucket through a header we would trust.
    return request.client.host if request.client is not None else "unknown"


def admit(request: Request, token: str | None) -> None:
    """For routes whose key is in the headers, from a worker thread (sync dependencies)."""
    limiter = limiter_of(request)
    if limiter is not None:
        limiter.check(caller_of(token), host=client_host(request))


def admit_filing(request: Request, caller: Caller) -> None:
    """For a privacy request being filed by an authenticated key (sync routes: a worker thread)."""
    limiter = limiter_of(request)
    if limiter is not None:
        limiter.check_filing(caller, host=client_host(request))


async def admit_collection(request: Request, token: str | None) -> None:
    """For routes that may find the key in the body (collection): reads it from there when the
    headers carry none."""
    limiter = limiter_of(request)
    if limiter is None or not limiter.enabled:
        return
    if token is None:
        token = await body_write_key(request, limiter.body_limits)
    await limiter.acheck(caller_of(token), host=client_host(request))


# -- the key in a collection body ---------------------------------------------------------------


def write_key_in(body: object) -> str | None:
    """The `writeKey` that `collect.message.unpack` takes from a parsed body: the top-level one, else,
    for a batch (an object with a `batch` array, or a bare array), the first message's. Keep the
    two in step: were they to differ, a body could be counted under one key and authenticated as
    another. A single-message route takes only the top-level key, so where this finds one in the
    messages and that route does not, the route answers 401 and nothing is admitted on it."""

    def key(value: object) -> str | None:
        return value if isinstance(value, str) and value else None

    if isinstance(body, dict) and (top := key(body.get("writeKey"))) is not None:
        return top
    items = body if isinstance(body, list) else body.get("batch") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return None
    return next((k for item in items if isinstance(item, dict) and (k := key(item.get("writeKey")))), None)


def held_body(request: Request) -> bytes | None:
    """The raw body `body_write_key` already read from this request, if it did."""
    held = getattr(request.state, "collected_body", None)
    return held if isinstance(held, bytes) else None


async def body_write_key(request: Request, limits: Limits) -> str | None:
    """The body's `writeKey`, read under collection's own bounds; the raw body stays on the request
    for the handler, which reads and judges it again. A body too large is refused here as the
    handler would (413 needs no key); any other flaw is left for the handler to word."""
    length = request.headers.get("content-length")
    try:
        check_content_length(length, limit=limits.max_request_bytes)
        reader: BodyReader | None = BodyReader(
            limit=limits.max_request_bytes, content_encoding=request.headers.get("content-encoding")
        )
    except PayloadTooLarge:
        raise
    except InvalidInput:
        return None  # nothing read: the handler reads the body and refuses it
    chunks: list[bytes] = []
    wire = 0
    async for chunk in request.stream():
        wire += len(chunk)
        if wire > limits.max_request_bytes:
            raise too_large(limits.max_request_bytes)
        chunks.append(chunk)
        if reader is not None:
            try:
                reader.feed(chunk)
            except PayloadTooLarge:
                raise
            except InvalidInput:
                reader = None  # keep reading, so that the handler gets the whole body to refuse
    # Handed on through the request's public state: the handler reads it there (`held_body`).
    request.state.collected_body = b"".join(chunks)
    if reader is None:
        return None
    try:
        return write_key_in(parse_json(reader.finish(), limits=limits))
    except InvalidInput:
        return None
