"""A reply address may name the comment its notification was about, so that a partner's
emailed answer joins that comment's thread (decision 69).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reply_tokens") as table:
        table.add_column(sa.Column("comment_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reply_tokens") as table:
        table.drop_column("comment_id")
