"""recipient notices: one tracked task per privacy request and recipient to be told (Art. 19)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tactful.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    when = tactful.db.UTCDateTime(timezone=True)
    op.create_table(
        "recipient_notices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipient_notices")),
        sa.UniqueConstraint("request_id", "recipient", name=op.f("uq_recipient_notices_request_id")),
    )
    op.create_index("ix_recipient_notices_request_id", "recipient_notices", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_recipient_notices_request_id", table_name="recipient_notices")
    op.drop_table("recipient_notices")
