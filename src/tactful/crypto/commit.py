"""The keystore's writes tied to the commit of a main-database session: a request's new subject
keys and index entries are held by its keystore view, written just before the session commits,
and dropped if it rolls back (the two databases as one unit of work).

    view.write_before_commit(session) ── hold_until_commit ──▶ session.info, and this session's hooks
    session commits ──▶ before_commit: each holding view writes (one keystore transaction)
    session rolls back ──▶ after_transaction_end: each holding view drops what it held

The hooks are registered on the sessions that hold writes, never on SQLAlchemy's Session class: no
other session of the process pays for them, and none can be affected by them.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

_HELD = "tactful.keystore.held"  # session.info entry: the views whose writes wait for its commit
_LISTENING = "tactful.keystore.listening"  # session.info entry: the hooks below are on this session


class HoldingView(Protocol):
    """A keystore view with writes held for a session's commit."""

    def write_held(self) -> None: ...

    def drop_held(self) -> None: ...


def hold_until_commit(session: Session, view: HoldingView) -> None:
    """Have `view` write what it holds just before `session` commits (or drop it on rollback)."""
    if not session.info.get(_LISTENING):
        event.listen(session, "before_commit", write_held_before_commit)
        event.listen(session, "after_transaction_end", drop_held_after_rollback)
        session.info[_LISTENING] = True
    held: list[HoldingView] = session.info.setdefault(_HELD, [])
    if not any(other is view for other in held):
        held.append(view)


def write_held_before_commit(session: Session) -> None:
    # A savepoint's release is not the commit: held writes wait for the outermost transaction.
    if session.in_nested_transaction():
        return
    for view in session.info.pop(_HELD, ()):
        view.write_held()


def drop_held_after_rollback(session: Session, transaction: SessionTransaction) -> None:
    # Still registered once the outermost transaction ends: it rolled back, and so did every row
    # sealed with a held key.
    if transaction.parent is None:
        for view in session.info.pop(_HELD, ()):
            view.drop_held()
