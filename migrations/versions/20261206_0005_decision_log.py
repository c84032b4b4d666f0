"""decision log: one row per served decision, and how far each serving process has written

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tactful.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    when = tactful.db.UTCDateTime(timezone=True)
    op.create_table(
        "decision_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("decision_id", sa.String(length=48), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("process", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("placement", sa.String(length=64), nullable=False),
        sa.Column("experience", sa.String(length=64), nullable=True),
        sa.Column("experience_version", sa.Integer(), nullable=True),
        sa.Column("variation", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("strategy", sa.String(length=8), nullable=False),
        sa.Column("propensity", sa.Float(), nullable=False),
        sa.Column("atoms_read", tactful.db.JSONType, nullable=False),
        sa.Column("purposes", tactful.db.JSONType, nullable=False),
        sa.Column("legal_basis", tactful.db.JSONType, nullable=False),
        sa.Column("explanation", tactful.db.JSONType, nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("decided_at", when, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_log")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_decision_log_decision_id")),
        sa.UniqueConstraint("process", "sequence", name="uq_decision_log_process_sequence"),
    )
    op.create_index("ix_decision_log_subject_id_decided_at", "decision_log", ["subject_id", "decided_at"])
    op.create_index("ix_decision_log_decided_at", "decision_log", ["decided_at"])
    op.create_table(
        "decision_log_processes",
        sa.Column("process", sa.Uuid(), nullable=False),
        sa.Column("started_at", when, nullable=False),
        sa.Column("written_through", sa.Integer(), nullable=False),
        sa.Column("written_at", when, nullable=False),
        sa.Column("stopped_at", when, nullable=True),
        sa.PrimaryKeyConstraint("process", name=op.f("pk_decision_log_processes")),
    )


def downgrade() -> None:
    op.drop_table("decision_log_processes")
    op.drop_index("ix_decision_log_decided_at", table_name="decision_log")
    op.drop_index("ix_decision_log_subject_id_decided_at", table_name="decision_log")
    op.drop_table("decision_log")
