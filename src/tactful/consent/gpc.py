"""Global Privacy Control: the browser's `Sec-GPC: 1` (or an event's `context.gpc`) recorded as an
opt-out of `sale_or_share`, with source `gpc`, before the response is sent (DESIGN invariant 4).

    request with the signal ──gpc_signal()──▶ service.record_gpc() ──▶ ledger (once, until lifted)
                                               └─ gpc_in_force(): already recorded and not lifted?
    request without it      ──────────────▶ nothing: the absence of the signal is never an opt-in

What the signal does beyond the law (capping the subject at `1:many`) is the policy gate's, read
from the ledger's first GPC event.
"""

from __future__ import annotations

from collections.abc import Sequence

from tactful.consent.fold import ConsentAction
from tactful.consent.schemas import LedgerEntry, TargetKind
from tactful.policy.state import EXPLICIT_SOURCES, ConsentSource
from tactful.types import Purpose

GPC_PROOF_KEY = "gpc"
"""Proof entry ("1") on choices received with a Global Privacy Control signal."""


def gpc_signal(value: object) -> bool:
    """Whether a `Sec-GPC` header value (or an event's `context.gpc`) carries the signal. Only "1"
    (or true) does: the specification defines no other value, and anything else is no signal."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip() == "1"
    return isinstance(value, int) and value == 1


def gpc_in_force(entries: Sequence[LedgerEntry]) -> bool:
    """Whether a recorded GPC opt-out still stands: nothing lifts it but an explicit grant of
    `sale_or_share` (API or banner) received after it."""
    sale = [e for e in entries if e.kind is TargetKind.PURPOSE and e.target == Purpose.SALE_OR_SHARE.value]
    signals = [e for e in sale if e.source is ConsentSource.GPC]
    if not signals:
        return False
    last = max(signals, key=lambda e: (e.at, e.sequence))
    lifts = [
        e
        for e in sale
        if e.action is ConsentAction.GRANTED
        and e.source in EXPLICIT_SOURCES
        and (e.at, e.sequence) > (last.at, last.sequence)
    ]
    if not lifts:
        return True
    # A grant made while the browser sent the signal is the person's informed choice over it: a later
    # signal does not undo it. A grant made without the signal is overridden by the next signal.
    newest = max(lifts, key=lambda e: (e.at, e.sequence))
    return newest.proof.get(GPC_PROOF_KEY) == "1"
