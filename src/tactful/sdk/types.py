"""What the server answers, as plain frozen values (read from its JSON, unknown fields ignored, so a
newer server does not break an older client)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LEVELS = ("1:all", "1:many", "1:some", "1:few", "1:1")
"""The pyramid's levels, lowest first, as the server writes them."""


@dataclass(frozen=True)
class EventOutcome:
    """What became of one collected message, as the key's scope may see it. With a server or admin
    key: `stored`, `duplicate`, `quarantined`, `suppressed` or `dropped`, with the reason, and what
    the message could not do without proof (`refused`). With a write key, what the message alone
    decides: `accepted`, `quarantined` (a fault of the message) or `dropped` (an undeclared event),
    and of the refusals only `subject_token_invalid`."""

    message_id: str | None
    status: str
    reason: str | None = None
    detail: str | None = None
    refused: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> EventOutcome:
        return cls(
            message_id=raw.get("messageId"),
            status=str(raw["status"]),
            reason=raw.get("reason"),
            detail=raw.get("detail"),
            refused=tuple(raw.get("refused") or ()),
        )


@dataclass(frozen=True)
class ConsentAck:
    """The answer to a consent call: the choices recorded and refused (with their codes), whether
    the request carried GPC, and the subject's state (only for a server-scope key). A write key's
    answer lists grants for an anonymous id as `unconfirmed`: a page is not told whether the id
    speaks for an identified person."""

    recorded: tuple[Mapping[str, Any], ...]
    refused: tuple[Mapping[str, Any], ...]
    gpc: bool
    state: Mapping[str, Any] | None = None
    unconfirmed: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ConsentAck:
        return cls(
            recorded=tuple(raw.get("recorded") or ()),
            refused=tuple(raw.get("refused") or ()),
            gpc=bool(raw.get("gpc", False)),
            state=raw.get("state"),
            unconfirmed=tuple(raw.get("unconfirmed") or ()),
        )


@dataclass(frozen=True)
class Decision:
    """The answer for one placement: the content to show, the level it reached, how it was chosen,
    and the id the visitor can use to ask why (`Client.explanation`)."""

    placement: str
    decision_id: str
    variation: str
    content: Any
    level: str
    strategy: str
    propensity: float
    experience: str | None = None
    explanation: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Decision:
        return cls(
            placement=str(raw["placement"]),
            decision_id=str(raw["decision_id"]),
            variation=str(raw["variation"]),
            content=raw.get("content"),
            level=str(raw["level"]),
            strategy=str(raw["strategy"]),
            propensity=float(raw["propensity"]),
            experience=raw.get("experience"),
            explanation=raw.get("explanation") or {},
        )
