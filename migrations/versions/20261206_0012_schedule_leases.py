"""schedule leases: one row per scheduled server task (the retention sweep), so one process runs it

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tactful.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    when = tactful.db.UTCDateTime(timezone=True)
    op.create_table(
        "schedule_leases",
        sa.Column("task", sa.String(length=32), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", when, nullable=True),
        sa.Column("last_run_at", when, nullable=True),
        sa.PrimaryKeyConstraint("task", name=op.f("pk_schedule_leases")),
    )


def downgrade() -> None:
    op.drop_table("schedule_leases")
