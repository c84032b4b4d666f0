"""privacy requests: one row per request, its legal due dates, its job's lease and step results

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tactful.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    when = tactful.db.UTCDateTime(timezone=True)
    op.create_table(
        "privacy_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("regime", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("identity_kind", sa.String(length=16), nullable=False),
        sa.Column("identity_digest", sa.String(length=96), nullable=False),
        sa.Column("verified_by", sa.String(length=16), nullable=True),
        sa.Column("actor_key_id", sa.Uuid(), nullable=True),
        sa.Column("received_at", when, nullable=False),
        sa.Column("due_at", when, nullable=False),
        sa.Column("confirm_by", when, nullable=True),
        sa.Column("extended_due_at", when, nullable=True),
        sa.Column("extension_reason", sa.String(length=1000), nullable=True),
        sa.Column("extension_noticed_at", when, nullable=True),
        sa.Column("flags", tactful.db.JSONType, nullable=False),
        sa.Column("changes_enc", sa.LargeBinary(), nullable=True),
        sa.Column("steps", tactful.db.JSONType, nullable=False),
        sa.Column("receipt", tactful.db.JSONType, nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", when, nullable=True),
        sa.Column("updated_at", when, nullable=False),
        sa.Column("closed_at", when, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_requests")),
        sa.UniqueConstraint("public_id", name=op.f("uq_privacy_requests_public_id")),
    )
    op.create_index("ix_privacy_requests_subject_id", "privacy_requests", ["subject_id"])
    op.create_index("ix_privacy_requests_identity_digest", "privacy_requests", ["identity_digest"])
    op.create_index("ix_privacy_requests_status_due_at", "privacy_requests", ["status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_privacy_requests_status_due_at", table_name="privacy_requests")
    op.drop_index("ix_privacy_requests_identity_digest", table_name="privacy_requests")
    op.drop_index("ix_privacy_requests_subject_id", table_name="privacy_requests")
    op.drop_table("privacy_requests")
