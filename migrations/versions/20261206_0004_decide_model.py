"""the decision model: placements, audiences, experiences, variations and their versions

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 05:07:17.401552

None of these tables holds personal data: they describe what may be shown, not who saw it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tactful.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audiences",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("condition", tactful.db.JSONType, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", tactful.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tactful.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audiences")),
        sa.UniqueConstraint("key", name=op.f("uq_audiences_key")),
    )
    op.create_table(
        "decide_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("snapshot", tactful.db.JSONType, nullable=False),
        sa.Column("actor_key_id", sa.Uuid(), nullable=True),
        sa.Column("at", tactful.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('placement', 'audience', 'experience')", name=op.f("ck_decide_versions_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decide_versions")),
        sa.UniqueConstraint("kind", "key", "version", name="uq_decide_versions_kind_key_version"),
    )
    op.create_table(
        "placements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("default_content", tactful.db.JSONType, nullable=False),
        sa.Column("default_templates", tactful.db.JSONType, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", tactful.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tactful.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("channel IN ('web', 'app', 'email')", name=op.f("ck_placements_channel")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placements")),
        sa.UniqueConstraint("key", name=op.f("uq_placements_key")),
    )
    op.create_table(
        "experiences",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("placement_key", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("starts_at", tactful.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ends_at", tactful.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("holdout", sa.Float(), nullable=False),
        sa.Column("strategy", sa.String(length=8), nullable=False),
        sa.Column("significant_effect", sa.Boolean(), nullable=False),
        sa.Column("namespace", sa.String(length=64), nullable=True),
        sa.Column("audience_key", sa.String(length=64), nullable=True),
        sa.Column("seed", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("published_version", sa.Integer(), nullable=True),
        sa.Column("created_at", tactful.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tactful.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('draft', 'live', 'paused')", name=op.f("ck_experiences_status")),
        sa.CheckConstraint("strategy IN ('rule', 'split', 'bandit')", name=op.f("ck_experiences_strategy")),
        sa.CheckConstraint("holdout >= 0 AND holdout < 1", name=op.f("ck_experiences_holdout")),
        sa.ForeignKeyConstraint(
            ["audience_key"], ["audiences.key"], name=op.f("fk_experiences_audience_key_audiences")
        ),
        sa.ForeignKeyConstraint(
            ["placement_key"], ["placements.key"], name=op.f("fk_experiences_placement_key_placements")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiences")),
        sa.UniqueConstraint("key", name=op.f("uq_experiences_key")),
    )
    with op.batch_alter_table("experiences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_experiences_audience_key"), ["audience_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_experiences_placement_key"), ["placement_key"], unique=False)

    op.create_table(
        "variations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("experience_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("content", tactful.db.JSONType, nullable=False),
        sa.Column("templates", tactful.db.JSONType, nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.CheckConstraint("weight > 0", name=op.f("ck_variations_weight")),
        sa.ForeignKeyConstraint(
            ["experience_id"],
            ["experiences.id"],
            name=op.f("fk_variations_experience_id_experiences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_variations")),
        sa.UniqueConstraint("experience_id", "key", name="uq_variations_experience_key"),
    )


def downgrade() -> None:
    op.drop_table("variations")
    with op.batch_alter_table("experiences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiences_placement_key"))
        batch_op.drop_index(batch_op.f("ix_experiences_audience_key"))

    op.drop_table("experiences")
    op.drop_table("placements")
    op.drop_table("decide_versions")
    op.drop_table("audiences")
