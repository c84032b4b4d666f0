"""audience sketches: one HyperLogLog per audience and day, for the k-anonymity threshold

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audience_sketches",
        sa.Column("sketch_key", sa.String(length=81), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("registers", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sketch_key", "day", name=op.f("pk_audience_sketches")),
    )


def downgrade() -> None:
    op.drop_table("audience_sketches")
