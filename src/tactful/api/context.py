"""What every request handler may reach: settings, the databases, the keystore, the catalog, Redis.

`main.create_app` builds one `AppContext` per process and keeps it on `app.state`; handlers receive it
through the `get_context` dependency, never from a global.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from redis import Redis
from sqlalchemy.orm import Session

from tactful.catalog.model import Catalog
from tactful.config import Settings
from tactful.consent.gatekeeper import PolicyContext, WithdrawalHook, keep_records
from tactful.consent.regimes import configured_regimes
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.policy import Regime


@dataclass
class AppContext:
    settings: Settings
    db: Database
    keystore: Keystore
    catalog: Catalog
    redis: Redis | None = None
    regimes: tuple[Regime, ...] = ()
    extras: dict[str, object] = field(default_factory=dict)
    on_withdrawal: WithdrawalHook = keep_records
    """What a consent refusal does to collection's stored events; `main.build_context` wires it."""

    def __post_init__(self) -> None:
        # Built once per process from the settings; a bad regime refuses to start.
        if not self.regimes:
            self.regimes = configured_regimes(self.settings.policy)

    def policy_context(self) -> PolicyContext:
        """The gate's inputs for this process, with its withdrawal hook."""
        return PolicyContext(self.catalog, self.settings.policy, self.regimes, self.on_withdrawal)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends normally, before any response is sent."""
        with self.db.session() as session:
            yield session


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(get_context)]
