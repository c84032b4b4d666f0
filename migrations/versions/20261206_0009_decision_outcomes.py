"""decision outcomes: track events linked to the decisions they follow, and their running counts

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tactful.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    when = tactful.db.UTCDateTime(timezone=True)
    op.create_table(
        "decision_outcomes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("decision_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("occurred_at", when, nullable=False),
        sa.Column("received_at", when, nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("may_learn", sa.Boolean(), nullable=False),
        sa.Column("learn_ceiling", sa.String(length=8), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=True),
        sa.Column("learnable", sa.Boolean(), nullable=True),
        sa.Column("linked_at", when, nullable=True),
        sa.CheckConstraint("status IN ('linked', 'pending')", name=op.f("ck_decision_outcomes_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_outcomes")),
    )
    op.create_index("ix_decision_outcomes_subject_id", "decision_outcomes", ["subject_id"])
    op.create_index("ix_decision_outcomes_decision_id", "decision_outcomes", ["decision_id"])
    op.create_index("ix_decision_outcomes_status_received_at", "decision_outcomes", ["status", "received_at"])
    op.create_table(
        "outcome_counters",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", "shard", name=op.f("pk_outcome_counters")),
    )


def downgrade() -> None:
    op.drop_table("outcome_counters")
    op.drop_index("ix_decision_outcomes_status_received_at", table_name="decision_outcomes")
    op.drop_index("ix_decision_outcomes_decision_id", table_name="decision_outcomes")
    op.drop_index("ix_decision_outcomes_subject_id", table_name="decision_outcomes")
    op.drop_table("decision_outcomes")
