"""pending links: anonymous ids claimed for a user id without proof

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 02:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tactful.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_links",
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("anonymous_digest", sa.String(length=96), nullable=False),
        sa.Column("created_at", tactful.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", tactful.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "anonymous_digest", name=op.f("pk_pending_links")),
    )
    op.create_index("ix_pending_links_anonymous_digest", "pending_links", ["anonymous_digest"])
    op.create_index("ix_pending_links_expires_at", "pending_links", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_pending_links_expires_at", table_name="pending_links")
    op.drop_index("ix_pending_links_anonymous_digest", table_name="pending_links")
    op.drop_table("pending_links")
