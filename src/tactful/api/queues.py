"""The cursors of the admin queues (privacy requests, reviews of decisions).

A queue lists overdue items first, then by due date; a page's position is (rank, due date, public
id). The cursor also carries the first page's moment, so that "overdue" means the same on every
page. It is opaque to the caller and checked on the way back: anything this module did not make is
refused as `invalid_cursor`.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from tactful.errors import InvalidInput

QueuePosition = tuple[int, datetime, str]


def queue_cursor(position: QueuePosition, at: datetime) -> str:
    """The cursor of the page after `position`, listed as of `at`."""
    rank, due, public_id = position
    text = f"{at.isoformat()}|{rank}|{due.isoformat()}|{public_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def read_queue_cursor(cursor: str | None) -> tuple[datetime, QueuePosition] | None:
    """The moment and position a cursor carries; None for the first page."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, rank, due, public_id = text.split("|")
        found = (datetime.fromisoformat(at), (int(rank), datetime.fromisoformat(due), public_id))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        found = None
    if found is None or found[0].tzinfo is None or found[1][1].tzinfo is None:
        raise InvalidInput("this is not a cursor given by this route", code="invalid_cursor", field="cursor")
    return found
