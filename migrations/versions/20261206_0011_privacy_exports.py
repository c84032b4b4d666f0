"""privacy exports: sealed access and portability packages, their download tokens (hashed) and uses

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tactful.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    when = tactful.db.UTCDateTime(timezone=True)
    op.create_table(
        "privacy_exports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("key_enc", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("expires_at", when, nullable=False),
        sa.Column("downloads", sa.Integer(), nullable=False),
        sa.Column("max_downloads", sa.Integer(), nullable=False),
        sa.Column("last_download_at", when, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_exports")),
        sa.UniqueConstraint("request_id", name=op.f("uq_privacy_exports_request_id")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_privacy_exports_token_digest")),
    )
    op.create_index("ix_privacy_exports_subject_id", "privacy_exports", ["subject_id"])
    op.create_index("ix_privacy_exports_expires_at", "privacy_exports", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_privacy_exports_expires_at", table_name="privacy_exports")
    op.drop_index("ix_privacy_exports_subject_id", table_name="privacy_exports")
    op.drop_table("privacy_exports")
