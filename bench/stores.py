"""Fresh durable databases, demo events and keys for the benchmarks.

Every database is a new SQLite file opened through `tactful.db.make_engine`, so it runs as the app
configures it: WAL journal, `synchronous=FULL`, `BEGIN IMMEDIATE`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tactful.crypto import Keystore
from tactful.db import Base, Database, migrate, schema_status
from tactful.demo.generate import DemoConfig, DemoShop, Message
from tactful.tables import import_all_models

SECRET = "bench-only-secret-key-of-sufficient-length-0000"  # noqa: S105 - throwaway files


@dataclass(frozen=True)
class Stores:
    """A main database and its keystore, both fresh files in one directory."""

    url: str
    keystore_url: str

    def open(self) -> tuple[Database, Keystore]:
        keystore = Keystore(self.keystore_url, secret_key=SECRET)
        keystore.create_schema()
        return Database(self.url), keystore


def fresh_stores(directory: Path, *, schema: bool = True) -> Stores:
    """New database files under `directory`, with the app's schema unless told otherwise."""
    tag = uuid.uuid4().hex[:8]
    stores = Stores(
        url=f"sqlite:///{directory / f'main-{tag}.db'}",
        keystore_url=f"sqlite:///{directory / f'keys-{tag}.db'}",
    )
    if schema:
        create_schema(stores.url)
    return stores


def create_schema(url: str) -> None:
    """Migrate when migrations exist; until then, create the tables from the models."""
    db = Database(url)
    try:
        _, head = schema_status(db.engine)
        if head is not None:
            migrate(url)
        else:
            import_all_models()
            Base.metadata.create_all(db.engine)
    finally:
        db.dispose()


def demo_messages(count: int, *, now: datetime, customers: int) -> list[Message]:
    """The first `count` messages of a demo shop of `customers` customers (realistic mix and order)."""
    shop = DemoShop(DemoConfig(seed=2026, customers=customers, days=14), now=now)
    messages: list[Message] = []
    for message in shop.messages():
        messages.append(message)
        if len(messages) == count:
            return messages
    raise ValueError(f"a shop of {customers} customers has fewer than {count} messages")


def renamed(message: Message, *, cycle: int) -> Message:
    """The message under a new `messageId` and, from the second pass over a pool on, new identities.

    A server that already saw the pool then meets new visitors as often as a fresh database does,
    so HTTP runs do the same work as in-process runs (identity resolution, new data keys).
    """
    copy = {**message, "messageId": str(uuid.uuid4())}
    if cycle:
        for name in ("anonymousId", "userId", "previousId"):
            if name in copy:
                copy[name] = f"{copy[name]}-{cycle}"
    return copy
