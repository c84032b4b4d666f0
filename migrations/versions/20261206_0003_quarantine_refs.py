"""quarantine rows name subjects by keyed digests

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 02:20:00.000000

Quarantined payloads are sealed from now on and the identifiers they name are kept as keyed
digests, so that a subject's export and erasure find the rows. Rows written before keep their
columns as they are and expire with the quarantine's retention.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REFS = ("user_ref", "anonymous_ref", "email_ref")


def upgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        for name in _REFS:
            batch_op.add_column(sa.Column(name, sa.String(length=96), nullable=True))
            batch_op.create_index(batch_op.f(f"ix_quarantine_{name}"), [name], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        for name in reversed(_REFS):
            batch_op.drop_index(batch_op.f(f"ix_quarantine_{name}"))
            batch_op.drop_column(name)
