"""decision reviews: requests for human review of, and contests against, significant decisions

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tactful.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    when = tactful.db.UTCDateTime(timezone=True)
    op.create_table(
        "decision_reviews",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("decision_id", sa.String(length=48), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("placement", sa.String(length=64), nullable=False),
        sa.Column("experience", sa.String(length=64), nullable=False),
        sa.Column("experience_version", sa.Integer(), nullable=False),
        sa.Column("variation", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("decided_at", when, nullable=False),
        sa.Column("explanation", tactful.db.JSONType, nullable=False),
        sa.Column("statement_enc", sa.LargeBinary(), nullable=True),
        sa.Column("statement_removed", tactful.db.JSONType, nullable=False),
        sa.Column("filed_by", sa.String(length=16), nullable=False),
        sa.Column("filed_key_id", sa.Uuid(), nullable=False),
        sa.Column("filed_at", when, nullable=False),
        sa.Column("due_at", when, nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("reason_enc", sa.LargeBinary(), nullable=True),
        sa.Column("replacement", tactful.db.JSONType, nullable=True),
        sa.Column("answered_key_id", sa.Uuid(), nullable=True),
        sa.Column("answered_at", when, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_reviews")),
        sa.UniqueConstraint("public_id", name=op.f("uq_decision_reviews_public_id")),
        sa.UniqueConstraint("decision_id", "kind", name="uq_decision_reviews_decision_id_kind"),
    )
    op.create_index("ix_decision_reviews_subject_id", "decision_reviews", ["subject_id"])
    op.create_index("ix_decision_reviews_status_due_at", "decision_reviews", ["status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_decision_reviews_status_due_at", table_name="decision_reviews")
    op.drop_index("ix_decision_reviews_subject_id", table_name="decision_reviews")
    op.drop_table("decision_reviews")
